"""Open-set thresholds from a target FPIR, on hand-computed numbers."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from facegate.errors import ConfigError, ModelIntegrityError
from facegate.gallery.cohort import load_cohort, shipped_cohort
from facegate.gallery.search import SearchIndex
from facegate.gallery.thresholds import (
    TailTable,
    cohort_moments,
    combine,
    gallery_scores,
    impostor_stats,
    person_thresholds,
)
from facegate.match import Candidate, decide

pytestmark = pytest.mark.unit

TAIL = TailTable((1e-2, 1e-3), (2.0, 3.0))


def unit(deg: float) -> np.ndarray:
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)], np.float32)


def test_tail_table_interpolates_log_linearly_and_extends_the_last_slope() -> None:
    assert TAIL.z_at(1e-2) == pytest.approx(2.0)
    assert TAIL.z_at(math.sqrt(1e-5)) == pytest.approx(2.5)  # halfway in log rate
    assert TAIL.z_at(1e-4) == pytest.approx(4.0)  # one decade past the last row: one more unit
    assert TAIL.z_at(0.5) == pytest.approx(2.0)  # above the first row: the first row holds
    with pytest.raises(ConfigError):
        TAIL.z_at(0.0)
    with pytest.raises(ConfigError, match="fall"):
        TailTable((1e-3, 1e-2), (2.0, 3.0))


def test_cohort_moments_take_each_persons_best_template() -> None:
    # Person 0 has templates at 0 and 90 degrees, person 1 one at 45; cohort faces at 0 and 60.
    tpl = np.stack([unit(0), unit(90), unit(45)])
    owners = np.array([0, 0, 1])
    cohort = np.stack([unit(0), unit(60)])
    mean, sq = cohort_moments(tpl, owners, 2, cohort)
    # person 0: max(cos 0, cos 90) = 1 against face 0; max(cos 60, cos 30) = cos 30 against face 1
    p0 = [1.0, math.cos(math.radians(30))]
    p1 = [math.cos(math.radians(45)), math.cos(math.radians(15))]
    assert mean == pytest.approx([np.mean(p0), np.mean(p1)], abs=1e-6)
    assert sq == pytest.approx([np.mean(np.square(p0)), np.mean(np.square(p1))], abs=1e-6)


def test_gallery_scores_pair_people_at_their_closest_templates() -> None:
    tpl = np.stack([unit(0), unit(90), unit(45), unit(180)])
    owners = np.array([0, 0, 1, 2])
    pair = gallery_scores(tpl, owners, 3)
    c45 = math.cos(math.radians(45))
    expected = [[0, c45, 0.0], [c45, 0, -c45], [0.0, -c45, 0]]  # 0 vs 2: max(cos 180, cos 90) = 0
    assert pair == pytest.approx(np.array(expected), abs=1e-6)


def test_combine_weights_the_gallery_against_the_cohort() -> None:
    c_mean, c_sq = np.array([0.5, 0.5]), np.array([0.26, 0.26])  # sd 0.1 each
    pair = np.array([[0.0, 0.9], [0.9, 0.0]])
    mean, std = combine(c_mean, c_sq, pair, 0.5)
    # 0.5 * 0.5 + 0.5 * 0.9 = 0.7; mean square 0.5 * 0.26 + 0.5 * 0.81 = 0.535; sd sqrt(0.535 - 0.49)
    assert mean == pytest.approx([0.7, 0.7])
    assert std == pytest.approx([math.sqrt(0.045)] * 2)
    mean0, std0 = combine(c_mean, c_sq, pair, 0.0)
    assert mean0 == pytest.approx([0.5, 0.5]) and std0 == pytest.approx([0.1, 0.1])
    alone, _ = combine(c_mean[:1], c_sq[:1], None, 0.5)
    assert alone == pytest.approx([0.5])


def test_person_thresholds_divide_the_target_among_the_people() -> None:
    mean, std = np.array([0.5, 0.6]), np.array([0.1, 0.05])
    # Two people, target 2e-2: each at 1e-2, where z = 2.
    assert person_thresholds(mean, std, TAIL, 2e-2) == pytest.approx([0.7, 0.7])
    # Twenty people at 2e-2: each at 1e-3, where z = 3.
    t = person_thresholds(np.full(20, 0.5), np.full(20, 0.1), TAIL, 2e-2)
    assert t == pytest.approx(np.full(20, 0.8))
    assert len(person_thresholds(np.zeros(0), np.zeros(0), TAIL, 0.01)) == 0


def test_decide_holds_each_person_to_their_own_threshold() -> None:
    c = [Candidate("a", "A", 0.90, 1), Candidate("b", "B", 0.89, 2)]
    # a clears their 0.85; b is below their 0.95, so b's closeness makes nothing ambiguous.
    d = decide(c, 0.5, 0.02, {"a": 0.85, "b": 0.95})
    assert d.decision == "match" and d.person is not None and d.person.person_id == "a"
    # b clears their own 0.80 too and is within the margin: ambiguous.
    assert decide(c, 0.5, 0.02, {"a": 0.85, "b": 0.80}).reason == "ambiguous"
    # a misses their own 0.92, though the fallback threshold would pass them.
    assert decide(c, 0.5, 0.02, {"a": 0.92}).reason == "below_threshold"
    # Without per-person thresholds: the old rule.
    assert decide(c, 0.95, 0.02).reason == "below_threshold"


def test_search_index_thresholds_follow_enrolment_and_erasure() -> None:
    rng = np.random.default_rng(1)
    cohort_emb = rng.normal(size=(50, 128)).astype(np.float32)
    cohort_emb /= np.linalg.norm(cohort_emb, axis=1, keepdims=True)
    vecs = rng.normal(size=(5, 128)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    from facegate.gallery.cohort import Cohort

    cohort = Cohort("test", cohort_emb, TAIL, {})
    index = SearchIndex()
    index.added("p", [1, 2], vecs[:2])
    index.added("q", [3], vecs[2:3])
    first = index.person_thresholds(cohort, 0.02, 0.5)
    mean, std = impostor_stats(vecs[:3], np.array([0, 0, 1]), 2, cohort_emb, 0.5)
    assert [first["p"], first["q"]] == pytest.approx(list(person_thresholds(mean, std, TAIL, 0.02)))
    index.added("r", [4, 5], vecs[3:5])
    second = index.person_thresholds(cohort, 0.02, 0.5)
    mean, std = impostor_stats(vecs, np.array([0, 0, 1, 2, 2]), 3, cohort_emb, 0.5)
    assert [second[k] for k in "pqr"] == pytest.approx(list(person_thresholds(mean, std, TAIL, 0.02)))
    index.removed("p", [1, 2])
    third = index.person_thresholds(cohort, 0.02, 0.5)
    mean, std = impostor_stats(vecs[2:], np.array([0, 1, 1]), 2, cohort_emb, 0.5)
    assert set(third) == {"q", "r"}
    assert [third["q"], third["r"]] == pytest.approx(list(person_thresholds(mean, std, TAIL, 0.02)))


def test_shipped_cohort_is_checked_and_usable() -> None:
    cohort = shipped_cohort("dlib_resnet_v1")
    assert cohort is not None
    assert cohort.embeddings.shape[1] == 128 and len(cohort.embeddings) >= 1000
    assert np.linalg.norm(cohort.embeddings, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert cohort.tail.z_at(1e-3) > cohort.tail.z_at(1e-2) > 0
    assert shipped_cohort("no-such-space") is None


def test_a_replaced_cohort_file_is_refused() -> None:
    data = b"not a cohort"
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_cohort(data, hashlib.sha256(b"the real one").hexdigest(), "cohort.npz")
