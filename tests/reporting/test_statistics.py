"""IQM, bootstrap intervals, probability of improvement and the human-normalised score, checked on
hand-made per-seed values whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rewardgen.reporting.statistics import (
    BOOTSTRAP_REPS,
    MIN_SEEDS_FOR_CI,
    describe,
    format_interval,
    headline,
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
    assert iqm_interval([2.0] * 5)["ci"] == pytest.approx([2.0, 2.0])


def test_two_seeds_give_no_interval_that_is_only_the_two_values():
    """Issue 26: with 2 final seeds the "95% CI" was the two values (2.02 [1.49, 2.56]) and
    P(generated > native) read 1 [1, 1]; below MIN_SEEDS_FOR_CI there is none, with the reason."""
    assert MIN_SEEDS_FOR_CI == 5
    for n in (2, 3, 4):
        got = iqm_interval([1.49, 2.56, 2.2, 1.8][:n])
        assert got["ci"] is None
        assert got["ci_reason"] == f"no 95% CI with {n} seeds: needs at least 5"
    assert iqm_interval([1.49, 2.56, 2.2, 1.8, 2.0])["ci"] is not None
    poi = probability_of_improvement([2.02, 2.5], [1.0, 1.2])
    assert poi["value"] == 1.0 and poi["ci"] is None
    assert poi["ci_reason"] == "no 95% CI with 2 seeds on one side: needs at least 5"
    assert (format_interval(poi["value"], poi["ci"], poi["ci_reason"], 2)
            == "1 (no 95% CI with 2 seeds on one side: needs at least 5)")
    assert describe()["min_seeds_for_ci"] == 5


def test_headline_is_the_fresh_seed_final_and_labels_the_search_peak():
    final = {"timesteps": 300_000, "variants": {"generated": {
        "fitness_iqm": 2.02, "fitness_iqm_ci": None, "n_ok": 2,
        "fitness_iqm_ci_reason": "no 95% CI with 2 seeds: needs at least 5"}}}
    head = headline(final, 3.408, "max", "s")
    assert head["source"] == "final" and head["fitness"] == 2.02
    assert head["text"] == ("2.02 s (no 95% CI with 2 seeds: needs at least 5) "
                            "(IQM over 2 fresh seeds, 300,000 steps each)")
    assert head["search_text"] == "3.408 s (search peak, 1 seed, loop.selection=max)"
    alone = headline(None, 3.408, "max")
    assert alone["source"] == "search" and alone["fitness"] == 3.408
    assert "search peak, 1 seed" in alone["text"]


def test_interval_is_undefined_below_the_minimum_seeds():
    one = iqm_interval([5.0])
    assert one["iqm"] == 5.0 and one["ci"] is None and "1 seed" in one["ci_reason"]
    none = iqm_interval([])
    assert none["iqm"] is None and none["ci"] is None and "no successful seed" in none["ci_reason"]
    assert (format_interval(one["iqm"], one["ci"], one["ci_reason"])
            == "5 (no 95% CI with 1 seed: needs at least 5)")
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
    assert result["n"] == [len(x), len(y)]
    assert (result["ci"] is None) == (min(len(x), len(y)) < MIN_SEEDS_FOR_CI)
    wide = probability_of_improvement(x * 3, y * 3)  # the same pairs, enough seeds for a CI
    assert wide["value"] == pytest.approx(expected) and wide["ci_reason"] is None
    low, high = wide["ci"]
    assert 0.0 <= low <= high <= 1.0


def test_probability_of_improvement_edges():
    # Every generated seed beats every native seed, in every resample too.
    assert probability_of_improvement([5.0, 6.0, 7.0, 8.0, 9.0],
                                      [1.0, 2.0, 3.0, 0.0, 4.0])["ci"] == [1.0, 1.0]
    one = probability_of_improvement([5.0], [1.0, 2.0, 3.0, 4.0, 0.0])
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
