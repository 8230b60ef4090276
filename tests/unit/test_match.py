"""Calibrated thresholds and the open-set decision rule, on hand-made numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facegate.errors import ConfigError
from facegate.eval.calibration import impostor_top_scores, thresholds, wilson_interval
from facegate.match import Calibration, Candidate, best_per_person, decide, shipped_calibration, verify

pytestmark = pytest.mark.unit

TABLE = {
    "space": "test",
    "points": [
        {"fmr": 1e-2, "threshold": 0.80, "impostor_pairs": 10**6, "fmr_ci95": [0, 1]},
        {"fmr": 1e-3, "threshold": 0.85, "impostor_pairs": 10**6, "fmr_ci95": [0, 1]},
        {"fmr": 1e-4, "threshold": 0.90, "impostor_pairs": 10**6, "fmr_ci95": [0, 1]},
    ],
}


def test_threshold_at_table_points_and_between_them() -> None:
    cal = Calibration.from_dict(TABLE)
    assert cal.threshold(1e-3) == pytest.approx(0.85)
    # log-linear: sqrt(1e-3 * 1e-4) is halfway between the 1e-3 and 1e-4 rows
    assert cal.threshold(math.sqrt(1e-7)) == pytest.approx(0.875)
    assert cal.threshold(0.5) == pytest.approx(0.80)
    assert cal.fmr_at(0.875) == pytest.approx(math.sqrt(1e-7))


def test_threshold_below_the_supported_rate_is_refused() -> None:
    cal = Calibration.from_dict(TABLE)
    with pytest.raises(ConfigError, match="lowest rate"):
        cal.threshold(1e-6)


@pytest.mark.parametrize("space", ["dlib_resnet_v1", "dlib_resnet_v1_flip"])
def test_shipped_calibration_is_monotonic(space: str) -> None:
    cal = shipped_calibration(space)
    assert cal.space == space
    ts = [p.threshold for p in cal.points]
    fmrs = [p.fmr for p in cal.points]
    assert fmrs == sorted(fmrs, reverse=True)
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert cal.min_fmr <= 1e-5


def test_verify_decision() -> None:
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([0.9, math.sqrt(1 - 0.81)], np.float32)
    assert verify(a, b, 0.85, 1e-3).same_person
    assert not verify(a, b, 0.95, 1e-3).same_person
    assert verify(a, b, 0.85, 1e-3).score == pytest.approx(0.9, abs=1e-6)


def _c(pid: str, score: float) -> Candidate:
    return Candidate(pid, pid.title(), score, 1)


def test_open_set_rule() -> None:
    assert decide([], 0.8, 0.02).reason == "empty_gallery"
    low = decide([_c("ann", 0.7)], 0.8, 0.02)
    assert low.decision == "unknown" and low.reason == "below_threshold"
    ok = decide([_c("ann", 0.9), _c("bob", 0.85)], 0.8, 0.02)
    assert ok.decision == "match" and ok.person is not None and ok.person.person_id == "ann"
    close = decide([_c("ann", 0.9), _c("bob", 0.89)], 0.8, 0.02)
    assert close.decision == "unknown" and close.reason == "ambiguous"
    # A close second below the threshold is no rival.
    clear = decide([_c("ann", 0.81), _c("bob", 0.795)], 0.8, 0.02)
    assert clear.decision == "match"


def test_best_per_person_collapses_templates() -> None:
    scores = np.array([0.95, 0.94, 0.9, 0.5, -np.inf])
    ids = np.array([10, 11, 20, 30, -1])
    owner = {10: "ann", 11: "ann", 20: "bob", 30: "cid"}
    out = best_per_person(scores, ids, owner, {"ann": "Ann", "bob": "Bob"}, k=2)
    assert [(c.person_id, c.score, c.template_id) for c in out] == [("ann", 0.95, 10), ("bob", 0.9, 20)]
    # Templates of people without valid consent are absent from `owner` and never returned.
    assert [c.person_id for c in best_per_person(scores, ids, {20: "bob"}, {}, k=3)] == ["bob"]


def test_impostor_scores_and_thresholds_by_hand() -> None:
    # 4 unit vectors in 2-D; identities a, a, b, c -> impostor pairs (0,2) (0,3) (1,2) (1,3) (2,3)
    ang = np.array([0.0, 0.1, 0.5, 1.2])
    emb = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    top, n = impostor_top_scores(emb, ["a", "a", "b", "c"], keep=10, block=2)
    expected = sorted([math.cos(x) for x in (0.5, 1.2, 0.4, 1.1, 0.7)], reverse=True)
    assert n == 5
    assert np.allclose(top, expected, atol=1e-6)
    pts = thresholds(top, n, targets=[0.2, 0.4])
    # FMR 0.4 of 5 impostors: 2 may pass; the threshold sits just above the third highest
    by = {p["fmr"]: p for p in pts}
    assert by[0.4]["false_matches"] == 2 and by[0.4]["threshold"] > expected[2]
    assert by[0.2]["false_matches"] == 1 and expected[1] < by[0.2]["threshold"] <= expected[0]


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(10, 1000)
    assert lo < 0.01 < hi and lo > 0.005 and hi < 0.02
    assert wilson_interval(0, 100)[0] == 0.0


def test_a_broken_calibration_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "cal.json"
    for text in ("not json", '{"space": "x"}', '{"space": "x", "points": [{"fmr": 0.1}]}'):
        bad.write_text(text)
        with pytest.raises(ConfigError):
            Calibration.load(bad)


def test_shipped_calibration_tables_are_pinned_by_sha256() -> None:
    """A shipped table is checked like a model file: an edited table is refused, not trusted."""
    import hashlib
    from importlib import resources

    from facegate.errors import ModelIntegrityError
    from facegate.match import SHIPPED_CALIBRATIONS, check_pinned, shipped_table

    for space, sha in SHIPPED_CALIBRATIONS.items():
        data = resources.files("facegate.data").joinpath(f"calibration_{space}.json").read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha
        assert json.loads(shipped_table(space))["space"] == space
        edited = data.replace(b'"threshold": 0.', b'"threshold": 1.', 1)
        assert edited != data
        with pytest.raises(ModelIntegrityError, match="SHA-256"):
            check_pinned(edited, sha, f"calibration_{space}.json")
    with pytest.raises(ConfigError, match="eval calibrate"):
        shipped_table("someone_elses_model")


def test_a_calibration_table_of_another_embedding_space_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Thresholds fitted on one model's scores say nothing about another's (a table made before
    flip fusion was switched on would let through several times the false matches it promises)."""
    from facegate.match import calibration_for

    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({**TABLE, "space": "dlib_resnet_v1"}))
    assert calibration_for(path, "dlib_resnet_v1").space == "dlib_resnet_v1"
    with pytest.raises(ConfigError, match="eval calibrate"):
        calibration_for(path, "dlib_resnet_v1_flip")
