"""Evaluation metrics against small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.errors import ConfigError
from facegate.eval import identification as ident
from facegate.eval.calibration import worst_group_thresholds
from facegate.eval.door_rate import DoorRates, door_protocol
from facegate.eval.groups import group_rates
from facegate.eval.verification import best_threshold, eer, kfold_accuracy, roc, tar_at_far, tar_table

pytestmark = pytest.mark.unit

# 4 genuine pairs and 4 impostor pairs
SCORES = np.array([0.9, 0.8, 0.7, 0.4, 0.75, 0.5, 0.3, 0.2])
SAME = np.array([1, 1, 1, 1, 0, 0, 0, 0])


def test_roc_points() -> None:
    ts, fmr, fnmr = roc(SCORES, SAME)
    at = {round(float(t), 2): (f, n) for t, f, n in zip(ts, fmr, fnmr, strict=True)}
    # threshold 0.7: impostors >= 0.7: {0.75} -> 1/4; genuine < 0.7: {0.4} -> 1/4
    assert at[0.7] == (0.25, 0.25)
    # threshold 0.8: impostors none; genuine below: 0.7, 0.4 -> 2/4
    assert at[0.8] == (0.0, 0.5)
    # the lowest threshold accepts everything
    assert at[0.2] == (1.0, 0.0)


def test_eer_and_tar_at_far() -> None:
    assert eer(SCORES, SAME) == pytest.approx(0.25)
    tar, t, allowed = tar_at_far(SCORES, SAME, 0.25)  # one of four impostors may pass
    assert allowed == 1 and 0.5 < t <= 0.75 and tar == pytest.approx(0.75)
    tar, t, allowed = tar_at_far(SCORES, SAME, 0.1)  # none may pass
    assert allowed == 0 and t > 0.75 and tar == pytest.approx(0.5)
    # FARs below 1/impostors are not reported at all
    assert [r["far"] for r in tar_table(SCORES, SAME, (0.5, 0.25, 0.1))] == [0.5, 0.25]


def test_best_threshold_and_kfold() -> None:
    t = best_threshold(SCORES, SAME)
    best = max(((c <= SCORES) == SAME.astype(bool)).mean() for c in [*SCORES, 1.0])
    assert best == pytest.approx(0.75)  # by hand: every threshold makes at least two errors
    assert ((t <= SCORES) == SAME.astype(bool)).mean() == pytest.approx(best)
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    kf = kfold_accuracy(SCORES, SAME, folds)
    assert len(kf.fold_accuracies) == 2 and 0 <= kf.accuracy <= 1


def test_open_set_metrics_by_hand() -> None:
    # gallery: identities a, b (b has two templates); unit vectors in 2-D at angles
    ang = {"a": 0.0, "b1": 1.0, "b2": 1.2}
    gallery = np.array([[np.cos(v), np.sin(v)] for v in ang.values()])
    g_ids = np.array(["a", "b", "b"])
    # probes: a near a (mated), b near b2 (mated), x unknown at angle 0.5, y unknown at 2.5
    p_ang = [0.05, 1.25, 0.5, 2.5]
    probes = np.array([[np.cos(v), np.sin(v)] for v in p_ang])
    p_ids = np.array(["a", "b", "x", "y"])
    mated = np.array([True, True, False, False])
    res = ident.search(gallery, g_ids, probes, p_ids, mated)
    assert res.mated_rank.tolist() == [0, 0]
    assert res.mated_score == pytest.approx([np.cos(0.05), np.cos(0.05)])
    assert res.non_mated_top_score == pytest.approx([np.cos(0.5), np.cos(1.3)])
    t = np.cos(0.4)  # above x's best (cos 0.5) and below both mates
    assert ident.fpir(res, t) == 0.0 and ident.fnir(res, t) == 0.0
    t = np.cos(0.6)  # x now returns someone: one of two non-mated searches
    assert ident.fpir(res, t) == 0.5
    assert ident.fnir(res, 0.9999) == 1.0  # a threshold above every mate misses both
    assert ident.cmc(res, 1) == 1.0
    assert ident.threshold_at_fpir(res, 0.5) > np.cos(1.3)


def test_group_rates_separate_groups() -> None:
    rng = np.random.default_rng(0)

    # group "tight": people far apart; group "crowded": people close together (more false matches)
    def people(n: int, spread: float) -> tuple[np.ndarray, list[str]]:
        centre = rng.normal(size=16)
        vecs, ids = [], []
        for i in range(n):
            p = centre * (1 - spread) + spread * rng.normal(size=16)
            for _ in range(3):
                v = p + 0.05 * rng.normal(size=16)
                vecs.append(v / np.linalg.norm(v))
                ids.append(f"{spread}-{i}")
        return np.array(vecs), ids

    v1, i1 = people(20, 1.0)
    v2, i2 = people(20, 0.1)
    vecs = np.concatenate([v1, v2]).astype(np.float32)
    rates = group_rates(vecs, i1 + i2, ["tight"] * len(i1) + ["crowded"] * len(i2), 0.9, 0.01)
    by = {r.group: r for r in rates}
    assert by["crowded"].fmr > by["tight"].fmr
    assert by["crowded"].threshold_for_target > by["tight"].threshold_for_target
    assert by["tight"].impostor_pairs == 60 * 59 // 2 - 20 * 3


def test_a_group_of_one_identity_has_no_false_match_rate() -> None:
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(6, 8))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    rates = group_rates(vecs, ["a", "a", "a", "b", "c", "d"], ["solo"] * 3 + ["many"] * 3, 0.5, 0.1)
    by = {r.group: r for r in rates}
    assert (
        by["solo"].impostor_pairs == 0
        and np.isnan(by["solo"].fmr)
        and np.isnan(by["solo"].threshold_for_target)
    )
    assert by["many"].impostor_pairs == 3 and by["many"].genuine_pairs == 0


def test_fnir_at_fpir_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    res = ident.SearchResults(
        mated_top_score=rng.uniform(0.85, 1.0, 200),
        mated_rank=np.where(rng.uniform(size=200) < 0.9, 0, 1),
        mated_score=rng.uniform(0.85, 1.0, 200),
        non_mated_top_score=rng.uniform(0.7, 0.95, 300),
    )
    (row,) = ident.fnir_at_fpir(res, (0.1, 1e-3))  # 1e-3 of 300 searches: no threshold, left out
    lo, hi = row["fnir_ci95"]
    assert row["fpir"] == 0.1 and lo <= row["fnir"] <= hi and hi - lo > 0.01
    # every search decided the same way in every resample: no uncertainty left
    same = ident.SearchResults(np.ones(5), np.zeros(5, int), np.ones(5), np.full(20, 0.5))
    (row,) = ident.fnir_at_fpir(same, (0.1,))
    assert row["fnir"] == 0.0 and row["fnir_ci95"] == [0.0, 0.0]


def test_unenrolled_share_draws_strangers_from_any_identity() -> None:
    from facegate.eval.runs import identification_protocol

    folders = {f"p{i}": [f"p{i}/{j}.jpg" for j in range(3)] for i in range(8)}
    mated, distractors, outsiders = identification_protocol(folders, seed=0, unenrolled=0.25)
    assert len(outsiders) == 2 and distractors == []
    assert sorted(mated + outsiders) == sorted(folders) and not set(mated) & set(outsiders)
    # no single-photo identity at all: a quarter are drawn by default instead of refusing the folder
    assert len(identification_protocol(folders, seed=0)[2]) == 2
    # LFW-like folders keep the published protocol: half the single-photo identities
    folders |= {f"s{i}": [f"s{i}/0.jpg"] for i in range(6)}
    mated, distractors, outsiders = identification_protocol(folders, seed=0)
    assert len(mated) == 8 and len(distractors) == 3 and len(outsiders) == 3
    with pytest.raises(ConfigError):
        identification_protocol(folders, seed=0, unenrolled=1.0)


def test_door_protocol_and_rates_by_hand() -> None:
    # 5 people with 3 photos, 3 with one: strangers are the single-photo people first
    folders = {f"m{i}": [f"m{i}/{j}.jpg" for j in range(3)] for i in range(5)}
    folders |= {f"s{i}": [f"s{i}/0.jpg"] for i in range(3)}
    proto = door_protocol(folders, enrolled=4, strangers=4, enrol_photos=2, seed=0)
    assert len(proto.enrol) == 4 and all(len(p) == 2 for p in proto.enrol.values())
    assert all(len(proto.searches[i]) == 1 for i in proto.enrol)
    assert {i for i in proto.strangers if i.startswith("s")} == {"s0", "s1", "s2"}
    assert len(proto.strangers) == 4 and not set(proto.strangers) & set(proto.enrol)
    with pytest.raises(ConfigError):
        door_protocol({"a": ["a/0.jpg"], "b": ["b/0.jpg"]}, 10, 1, 1, 0)
    rates = DoorRates(
        gallery_size=4,
        stranger_searches=10,
        strangers_accepted=1,
        strangers=4,
        strangers_with_any_accepted=1,
        mated_searches=8,
        recognised=6,
        wrong_person=1,
        reasons={"below_threshold": 1, "wrong_person": 1},
    ).row()
    assert rates["FPIR"] == 0.1 and rates["strangers accepted (people)"] == 0.25
    assert rates["FNIR"] == 0.25 and rates["wrong-person rate"] == 0.125
    lo, hi = rates["FPIR 95% CI"]
    assert lo == pytest.approx(0.0179, abs=1e-3) and hi == pytest.approx(0.4042, abs=1e-3)  # Wilson, by hand


def _at(*degrees: float) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def test_worst_group_thresholds_take_the_group_that_needs_the_highest_threshold() -> None:
    """Hand-computed: six people, one photo each, on the unit circle. Group A at 0, 10, 30 degrees
    (scores cos 10 = .98481, cos 20 = .93969, cos 30 = .86603), group B at 120, 180, 240 (.5, .5,
    -.5); the 15 impostor scores in all, from the top: .98481, .93969, .86603, .5, .5, 0, -.342,
    -.5, ..."""
    emb = _at(0, 10, 30, 120, 180, 240)
    ids = ["a1", "a2", "a3", "b1", "b2", "b3"]
    groups = ["A", "A", "A", "B", "B", "B"]
    half, fifth = worst_group_thresholds(emb, ids, groups, (0.5, 0.2), min_false_matches=1)
    # FMR 0.5: 7 of 15 may pass overall -> just above the 8th score, -.5; A: 1 of its 3 pairs may
    # pass -> just above .93969 (one false match: .98481); B: just above .5, but no pair is
    # strictly above it (a tie), so B cannot place the rate and sets nothing.
    assert half["all_pairs_threshold"] == pytest.approx(-0.499999, abs=1e-6)
    assert half["threshold"] == pytest.approx(0.939693, abs=1e-6) and half["binding"] == "A"
    assert half["false_matches"] == 1
    groups = half["groups"]
    assert isinstance(groups, dict) and groups["B"]["threshold"] is None and "too few" in groups["B"]["why"]
    # FMR 0.2: 3 of 15 overall -> just above .5; A has no pair to spare at 0.2 of 3 pairs, so it
    # keeps its offset from FMR 0.5 (.939693 + .499999 = 1.439692) above the overall threshold:
    # 1.939693, more than any score, held at 1 (nothing matches there).
    assert fifth["all_pairs_threshold"] == pytest.approx(0.500001, abs=1e-6)
    assert fifth["threshold"] == 1.0
    assert fifth["groups"]["A"] == {"threshold": 1.0, "impostor_pairs": 3, "carried": True}  # type: ignore[index]
    # A group of one person has no impostor pair of its own, and says so.
    [one] = worst_group_thresholds(emb, ids, ["A", "A", "A", "C", "", ""], (0.5,), min_false_matches=1)
    assert one["groups"]["C"] == {"threshold": None, "why": "one identity: no impostor pair"}  # type: ignore[index]
    # Unlabelled photos count overall only; without groups the table is the all-pairs one.
    [plain] = worst_group_thresholds(emb, ids, [""] * 6, (0.5,), min_false_matches=1)
    assert plain["threshold"] == plain["all_pairs_threshold"] and plain["binding"] == "all pairs"
