"""Unit tests of rewardgen.train.stats: fitness selection and reward/fitness correlation."""

from __future__ import annotations

import pytest

from rewardgen.errors import ConfigError
from rewardgen.train.stats import aggregate_fitness, mean_components, pearson

EVALS = [
    {"fitness": 1.0, "success_rate": 0.0},
    {"fitness": 5.0, "success_rate": 1.0},
    {"fitness": 2.0, "success_rate": 0.5},
    {"fitness": 3.0, "success_rate": 0.5},
]


@pytest.mark.parametrize(
    ("selection", "last_k", "expected"),
    [
        ("final", 3, (3.0, 0.5)),
        ("last_k", 3, ((5.0 + 2.0 + 3.0) / 3, (1.0 + 0.5 + 0.5) / 3)),
        ("last_k", 2, (2.5, 0.5)),
        ("last_k", 10, (11.0 / 4, 2.0 / 4)),
        ("max", 3, (5.0, 1.0)),
    ],
)
def test_aggregate_fitness(selection: str, last_k: int, expected: tuple[float, float]) -> None:
    fitness, success = aggregate_fitness(EVALS, selection, last_k)
    assert fitness == pytest.approx(expected[0])
    assert success == pytest.approx(expected[1])


def test_aggregate_fitness_without_success_threshold() -> None:
    evals = [{"fitness": 1.0, "success_rate": None}, {"fitness": 2.0, "success_rate": None}]
    assert aggregate_fitness(evals, "last_k", 3) == (1.5, None)


def test_aggregate_fitness_of_nothing_is_none() -> None:
    assert aggregate_fitness([], "final") == (None, None)


def test_aggregate_fitness_rejects_unknown_selection() -> None:
    with pytest.raises(ConfigError, match="selection 'best'"):
        aggregate_fitness(EVALS, "best")


def test_aggregate_fitness_rejects_bad_last_k() -> None:
    with pytest.raises(ConfigError, match="last_k must be at least 1, got 0"):
        aggregate_fitness(EVALS, "last_k", 0)


def test_pearson() -> None:
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_pearson_is_none_when_undefined() -> None:
    assert pearson([1, 2], [1, 2]) is None
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def test_pearson_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="3 vs 2"):
        pearson([1, 2, 3], [1, 2])


def test_mean_components_fills_missing_with_zero() -> None:
    out = mean_components([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    assert out == {"a": 2.0, "b": 1.0}
    assert mean_components([]) == {}
