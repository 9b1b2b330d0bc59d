"""IQM, bootstrap intervals, probability of improvement and the human-normalised score, checked on
hand-made per-seed values whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rewardgen.reporting.statistics import (
    BOOTSTRAP_REPS,
    describe,
    format_interval,
    human_normalised,
    iqm,
    iqm_interval,
    probability_of_improvement,
)


@pytest.mark.parametrize(("values", "expected"), [
    ([1.0, 2.0, 3.0, 4.0, 100.0], 3.0),  # 5 seeds: one trimmed at each end -> mean(2, 3, 4)
    ([float(v) for v in range(1, 9)], 4.5),  # 8 seeds: two trimmed at each end -> mean(3..6)
    ([1.0, 2.0, 3.0, 100.0], 2.5),  # 4 seeds: mean(2, 3); the mean would be 26.5
    ([2.0, 4.0], 3.0),  # fewer than 4 seeds: nothing trimmed, the mean
    ([7.0], 7.0),
])
def test_iqm_on_known_values(values, expected):
    assert iqm(values) == pytest.approx(expected)
    assert iqm([]) is None


def test_bootstrap_interval_is_reproducible_and_brackets_the_iqm():
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    state = np.random.get_state()
    first = iqm_interval(values)
    assert first["iqm"] == pytest.approx(3.0) and first["n"] == 5 and first["ci_reason"] is None
    low, high = first["ci"]
    assert 1.0 <= low <= 3.0 <= high <= 100.0 and low < high
    assert iqm_interval(values) == first  # fixed bootstrap seed: the same scores, the same CI
    after = np.random.get_state()  # the global generator rliable uses is put back as it was
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    # Identical seeds: no spread, a point interval.
    assert iqm_interval([2.0, 2.0, 2.0])["ci"] == pytest.approx([2.0, 2.0])


def test_interval_is_undefined_with_fewer_than_two_seeds():
    one = iqm_interval([5.0])
    assert one["iqm"] == 5.0 and one["ci"] is None and "1 seed" in one["ci_reason"]
    none = iqm_interval([])
    assert none["iqm"] is None and none["ci"] is None and "no successful seed" in none["ci_reason"]
    assert format_interval(one["iqm"], one["ci"], one["ci_reason"]) == "5 [no CI: 1 seed]"
    assert format_interval(None, None) == "-"
    assert format_interval(2.5, [1.25, 3.0]) == "2.5 [1.25, 3]"


@pytest.mark.parametrize(("x", "y", "expected"), [
    ([3.0, 4.0], [1.0, 5.0], 2 / 4),  # 3>1, 4>1 win; 3<5, 4<5 lose
    ([2.0, 3.0], [2.0, 1.0], 3.5 / 4),  # the tie (2, 2) counts half
    ([1.0, 2.0], [1.0, 2.0], 0.5),  # the same scores: a coin flip
    ([1.0, 2.0, 3.0, 100.0], [1.0, 1.2, 0.8, 1.0], 14 / 16),
])
def test_probability_of_improvement_on_known_values(x, y, expected):
    result = probability_of_improvement(x, y)
    assert result["value"] == pytest.approx(expected)
    assert result["n"] == [len(x), len(y)] and result["ci_reason"] is None
    low, high = result["ci"]
    assert 0.0 <= low <= high <= 1.0


def test_probability_of_improvement_edges():
    # Every generated seed beats every native seed, in every resample too.
    assert probability_of_improvement([5.0, 6.0, 7.0], [1.0, 2.0, 3.0])["ci"] == [1.0, 1.0]
    one = probability_of_improvement([5.0], [1.0, 2.0])
    assert one["value"] == 1.0 and one["ci"] is None and "1 seed" in one["ci_reason"]
    empty = probability_of_improvement([], [1.0])
    assert empty["value"] is None and "no successful seed" in empty["ci_reason"]


def test_human_normalised_is_undefined_when_native_and_sparse_are_within_their_spread():
    # The 100k-step hopper run of the issue: native 0.04 ± 0.08, sparse 0.12 ± 0.17 gave 10.4.
    score, reason = human_normalised(0.875, 0.04, 0.12, native_std=0.08, sparse_std=0.17)
    assert score is None
    assert "within their spread" in reason and "0.08 <= 0.17" in reason
    # The gap equal to the larger spread is still noise; equal means with no spread too.
    assert human_normalised(1.0, 1.0, 0.0, native_std=1.0, sparse_std=0.2)[0] is None
    assert human_normalised(1.0, 0.5, 0.5)[0] is None
    # A missing variant is named.
    assert human_normalised(1.0, 2.0, None)[1].startswith("no sparse fitness")
    assert human_normalised(None, 2.0, 0.0)[1].startswith("no generated fitness")


@pytest.mark.parametrize(("generated", "native", "sparse", "stds", "expected"), [
    (3.0, 2.0, 0.0, (0.5, 0.25), 1.5),  # (3 - 0) / |2 - 0|
    (-1.0, 2.0, 0.0, (0.0, 0.0), -0.5),  # worse than sparse: negative
    (1.0, -1.0, 3.0, (1.0, 2.0), -0.5),  # (1 - 3) / |-1 - 3|: native below sparse
    (2.0, 1.0, 0.0, (0.0, 0.0), 2.0),  # one seed each: no spread, defined
])
def test_human_normalised_when_defined(generated, native, sparse, stds, expected):
    score, reason = human_normalised(generated, native, sparse, native_std=stds[0],
                                     sparse_std=stds[1])
    assert score == pytest.approx(expected) and reason is None


def test_describe_names_the_method():
    info = describe()
    assert info["bootstrap_reps"] == BOOTSTRAP_REPS >= 1000 and info["confidence"] == 0.95
    assert "IQM" in info["method"] and "bootstrap" in info["method"]


def test_vectorised_improvement_equals_rliables_metric():
    from rliable import metrics

    from rewardgen.reporting.statistics import _improvement

    rng = np.random.default_rng(0)
    for nx, ny in [(2, 3), (5, 5), (7, 4)]:
        x = rng.integers(0, 4, size=(nx, 1)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, size=(ny, 1)).astype(float)
        assert _improvement(x, y)[0] == pytest.approx(metrics.probability_of_improvement(x, y))
