"""Trusted fitness: every aggregate on a hand-made episode, and malformed specs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rewardgen.errors import TaskError
from rewardgen.tasks.fitness import AGGREGATES, FitnessSpec, FitnessTracker

INITIAL = 10.0
VALUES = [12.0, 9.0, 15.0, 11.0]
DT = 0.05
EXPECTED = {
    "mean": sum(VALUES) / len(VALUES),
    "sum": sum(VALUES),
    "final": VALUES[-1],
    "delta": VALUES[-1] - INITIAL,
    "max": max(VALUES),
    "min": min(VALUES),
    "duration": len(VALUES) * DT,
}


def _episode(aggregate: str, expr: str = "state.x") -> FitnessTracker:
    tracker = FitnessTracker(FitnessSpec(expr=expr, aggregate=aggregate), dt=DT)
    tracker.reset(SimpleNamespace(x=INITIAL))
    for value in VALUES:
        tracker.update(SimpleNamespace(x=value))
    return tracker


def test_every_aggregate_is_covered() -> None:
    assert set(EXPECTED) == set(AGGREGATES)


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_aggregates_on_a_hand_made_episode(aggregate: str) -> None:
    tracker = _episode(aggregate)
    assert tracker.value == pytest.approx(EXPECTED[aggregate])
    assert tracker.steps == len(VALUES)


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_reset_starts_a_fresh_episode(aggregate: str) -> None:
    tracker = _episode(aggregate)
    tracker.reset(SimpleNamespace(x=0.0))
    assert tracker.value == 0.0 and tracker.steps == 0
    tracker.update(SimpleNamespace(x=2.0))
    expected = {"duration": DT}.get(aggregate, 2.0)
    assert tracker.value == pytest.approx(expected)


def test_expression_may_use_numpy_and_math() -> None:
    tracker = _episode("mean", expr="-float(np.hypot(state.x, 0.0)) + math.pi")
    assert tracker.value == pytest.approx(-EXPECTED["mean"] + 3.141592653589793)


def test_duration_ignores_the_expression() -> None:
    tracker = FitnessTracker(FitnessSpec(expr="state.missing", aggregate="duration"), dt=DT)
    tracker.reset(None)
    for _ in range(3):
        tracker.update(object())
    assert tracker.value == pytest.approx(3 * DT)


def test_unknown_aggregate() -> None:
    with pytest.raises(TaskError, match="aggregate 'average' is not one of"):
        FitnessSpec(expr="state.x", aggregate="average").compile()


def test_expression_syntax_error() -> None:
    with pytest.raises(TaskError, match=r"fitness expression 'state\.x \+' is not valid Python"):
        FitnessSpec(expr="state.x +", aggregate="mean").compile()
