"""Open-set thresholds from a target FPIR, on hand-computed numbers."""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources

import numpy as np
import pytest

from facegate.errors import ConfigError, ModelIntegrityError
from facegate.gallery.cohort import Cohort, load_cohort, shipped_cohort
from facegate.gallery.search import SearchIndex
from facegate.gallery.thresholds import RateTable, gallery_moments, gallery_scores, person_thresholds
from facegate.match import Candidate, decide

pytestmark = pytest.mark.unit

TAIL = RateTable((1e-2, 1e-3), (2.0, 3.0))
SCORES = RateTable((1e-2, 1e-3), (0.90, 0.93))


def unit(deg: float) -> np.ndarray:
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)], np.float32)


def test_tail_table_interpolates_log_linearly_and_extends_the_last_slope() -> None:
    assert TAIL.value_at(1e-2) == pytest.approx(2.0)
    assert TAIL.value_at(math.sqrt(1e-5)) == pytest.approx(2.5)  # halfway in log rate
    assert TAIL.value_at(1e-4) == pytest.approx(4.0)  # one decade past the last row: one more unit
    assert TAIL.value_at(0.5) == pytest.approx(2.0)  # above the first row: the first row holds
    with pytest.raises(ConfigError):
        TAIL.value_at(0.0)
    with pytest.raises(ConfigError, match="fall"):
        RateTable((1e-3, 1e-2), (2.0, 3.0))


def test_rate_at_inverts_value_at() -> None:
    assert TAIL.rate_at(np.array([2.0, 2.5, 3.0, 4.0])) == pytest.approx([1e-2, math.sqrt(1e-5), 1e-3, 1e-4])
    assert TAIL.rate_at(np.array([-50.0]))[0] == 1.0  # never more than everyone


def test_gallery_scores_score_each_persons_best_template_against_the_others() -> None:
    # Person 0 has templates at 0 and 90 degrees, person 1 one at 45, person 2 one at 180.
    tpl = np.stack([unit(0), unit(90), unit(45), unit(180)])
    owners = np.array([0, 0, 1, 2])
    s = gallery_scores(tpl, owners, 3)
    c45 = math.cos(math.radians(45))
    nan = float("nan")
    expected = [
        [nan, nan, c45, 0.0],  # vs 45: max(cos 45, cos 45); vs 180: max(cos 180, cos 90) = 0
        [1.0 * c45, c45, nan, -c45],  # 45 against 0 and 90; against 180
        [-1.0, 0.0, -c45, nan],
    ]
    assert s == pytest.approx(np.array(expected), abs=1e-6, nan_ok=True)
    for block in (1, 2, 1024):  # the same moments, however the templates are blocked
        mean, std = gallery_moments(tpl, owners, 3, block)
        assert mean[0] == pytest.approx(c45 / 2) and std[0] == pytest.approx(c45 / 2)
        assert mean[1] == pytest.approx(c45 / 3)
        assert mean == pytest.approx(np.nanmean(s, axis=1))
        assert std == pytest.approx(np.nanstd(s, axis=1))
    assert gallery_moments(tpl[:1], owners[:1], 1)[1] == pytest.approx([1.0])  # alone: nothing to learn from


def test_person_thresholds_divide_the_target_among_the_people() -> None:
    mean, std = np.array([0.5, 0.6]), np.array([0.1, 0.05])
    # Only the cohort (w = 0): the cohort's score at target / N.
    assert person_thresholds(mean, std, SCORES, TAIL, 2e-2, 0.0) == pytest.approx([0.90, 0.90])
    assert person_thresholds(mean, std, SCORES, TAIL, 2e-3, 0.0) == pytest.approx([0.93, 0.93])
    # Only the gallery (w = 1): m + z(target / N) * s, here z(1e-2) = 2.
    assert person_thresholds(mean, std, SCORES, TAIL, 2e-2, 1.0) == pytest.approx([0.70, 0.70])
    # Half and half: at 0.93 the cohort gives 1e-3 and (0.93 - 0.63) / 0.1 = 3 gives 1e-3 too.
    t = person_thresholds(np.array([0.63, 0.63]), np.array([0.1, 0.1]), SCORES, TAIL, 2e-3, 0.5)
    assert t == pytest.approx([0.93, 0.93], abs=1e-6)
    # A person alone has no gallery to learn from: the cohort decides, whatever the weight.
    assert person_thresholds(mean[:1], std[:1], SCORES, TAIL, 1e-2, 1.0) == pytest.approx([0.90])
    assert len(person_thresholds(np.zeros(0), np.zeros(0), SCORES, TAIL, 0.01, 0.2)) == 0
    with pytest.raises(ConfigError):
        person_thresholds(mean, std, SCORES, TAIL, 1.5, 0.2)


def test_a_crowded_gallery_raises_its_thresholds() -> None:
    # The same cohort; people who score 0.9 +- 0.02 against each other need a higher bar.
    spread = person_thresholds(np.full(10, 0.80), np.full(10, 0.05), SCORES, TAIL, 0.01, 0.2)
    crowded = person_thresholds(np.full(10, 0.90), np.full(10, 0.02), SCORES, TAIL, 0.01, 0.2)
    assert np.all(crowded > spread)


def test_decide_holds_each_person_to_their_own_threshold() -> None:
    c = [Candidate("a", "A", 0.90, 1), Candidate("b", "B", 0.89, 2)]
    # a clears their 0.85; b is below their own 0.95 but clears the 0.5 floor and is within the
    # margin: the face could be b's, so the answer is ambiguous, whatever b's own threshold.
    assert decide(c, 0.5, 0.02, {"a": 0.85, "b": 0.95}).reason == "ambiguous"
    assert decide(c, 0.5, 0.02, {"a": 0.85, "b": 0.80}).reason == "ambiguous"
    # b further than the margin: a, at a's own threshold.
    d = decide([c[0], Candidate("b", "B", 0.87, 2)], 0.5, 0.02, {"a": 0.85, "b": 0.95})
    assert d.decision == "match" and d.person is not None and d.person.person_id == "a"
    assert d.threshold == 0.85
    # b within the margin but below the floor: nothing ambiguous.
    assert decide([Candidate("a", "A", 0.60, 1), Candidate("b", "B", 0.59, 2)], 0.595, 0.02).reason == "match"
    # a misses their own 0.92, though the fallback threshold would pass them.
    assert decide(c, 0.5, 0.02, {"a": 0.92}).reason == "below_threshold"
    assert decide(c, 0.5, 0.02, {"b": 0.92}).threshold == 0.5  # a has none of their own
    # Without per-person thresholds: the old rule.
    assert decide(c, 0.95, 0.02).reason == "below_threshold"
    # `threshold` is the floor under everyone's own (a door's target FMR, the 1:1 threshold).
    floored = decide(c, 0.95, 0.02, {"a": 0.85})
    assert floored.reason == "below_threshold" and floored.threshold == 0.95


def _expected(vecs: np.ndarray, owners: list[int], cohort: Cohort) -> list[float]:
    mean, std = gallery_moments(vecs, np.array(owners), max(owners) + 1)
    return list(person_thresholds(mean, std, cohort.scores, cohort.tail, 0.02, 0.5))


def test_search_index_thresholds_follow_enrolment_and_erasure() -> None:
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(5, 128)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cohort = Cohort("test", TAIL, RateTable((1e-2, 1e-3), (0.1, 0.3)), {})
    index = SearchIndex()
    index.added("p", [1, 2], vecs[:2])
    index.added("q", [3], vecs[2:3])
    first = index.person_thresholds(cohort, 0.02, 0.5)
    assert [first["p"], first["q"]] == pytest.approx(_expected(vecs[:3], [0, 0, 1], cohort))
    assert index.person_thresholds(cohort, 0.02, 0.5) is first  # cached
    index.added("r", [4, 5], vecs[3:5])
    second = index.person_thresholds(cohort, 0.02, 0.5)
    assert [second[k] for k in "pqr"] == pytest.approx(_expected(vecs, [0, 0, 1, 2, 2], cohort))
    index.removed("p", [1, 2])
    third = index.person_thresholds(cohort, 0.02, 0.5)
    assert set(third) == {"q", "r"}
    assert [third["q"], third["r"]] == pytest.approx(_expected(vecs[2:], [0, 1, 1], cohort))


@pytest.mark.parametrize("space", ["dlib_resnet_v1", "dlib_resnet_v1_flip"])
def test_shipped_cohort_is_checked_and_usable(space: str) -> None:
    cohort = shipped_cohort(space)
    assert cohort is not None and cohort.space == space
    assert "1500 identities" in cohort.meta["source"].replace(",", "")
    assert cohort.tail.value_at(1e-3) > cohort.tail.value_at(1e-2) > 0
    assert 0.9 < cohort.scores.value_at(1e-3) < 0.95
    assert shipped_cohort("no-such-space") is None


def test_a_replaced_cohort_file_is_refused() -> None:
    data = b"not a cohort"
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_cohort(data, hashlib.sha256(b"the real one").hexdigest(), "cohort.json")


@pytest.mark.parametrize("space", ["dlib_resnet_v1", "dlib_resnet_v1_flip"])
def test_the_shipped_cohort_holds_statistics_not_faces(space: str) -> None:
    """No template of anyone who never enrolled ships: only two short score tables."""
    data = json.loads(resources.files("facegate.data").joinpath(f"cohort_{space}.json").read_text())
    assert set(data) == {"meta", "tail", "scores"}
    numbers = [x for part in ("tail", "scores") for values in data[part].values() for x in values]
    assert len(numbers) < 100  # a 128-D embedding alone would be 128 numbers


def test_a_threshold_never_exceeds_the_highest_possible_score() -> None:
    """A person whose impostor scores spread far up (the same face enrolled again under another
    name, among strangers): the rule would ask for more than any score can reach."""
    cohort = shipped_cohort("dlib_resnet_v1")
    assert cohort is not None
    mean, std = np.array([0.85, 0.80]), np.array([0.1, 0.05])
    t = person_thresholds(mean, std, cohort.scores, cohort.tail, 0.01, 0.2)
    assert t[0] == 1.0 and 0.9 < t[1] < 1.0
    # unclamped, the first would be above 1: the tail of its scores still exceeds the rate there
    rate = 0.8 * cohort.scores.rate_at(np.array([1.0])) + 0.2 * cohort.tail.rate_at(np.array([1.5]))
    assert rate[0] > 0.01 / 2
