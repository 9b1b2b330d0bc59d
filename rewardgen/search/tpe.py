"""CARD's Trajectory Preference Evaluation: the statistics a screening decides by (parent side).

Pure functions of what the sandboxed scorer reported (returns, lengths) and the trusted fitness
of the stored episodes; :mod:`rewardgen.search.screening` runs the scorer and the loop's step.
``card`` is CARD's own test (code_generation/self_reflection/utils.py:289-304): the share of
successful episodes whose mean reward per step beats the best failed episode's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rewardgen.runs.trajectories import Trajectory

# CARD's best-failure test | (success, failure) pairs won | our all-pairs test
SCREENING_TESTS = ("card", "card_pairs", "pairwise")
_TIE = 1e-9


def success_labels(fitness: Sequence[float], success_threshold: float | None) -> list[bool]:
    """Which episodes succeeded: fitness at the task's success threshold or above.

    A task without a threshold splits at the middle of the stored fitness range (all failed
    when every episode has the same fitness: nothing to compare).
    """
    if success_threshold is not None:
        return [f >= success_threshold for f in fitness]
    if not fitness or max(fitness) - min(fitness) <= _TIE:
        return [False] * len(fitness)
    middle = (max(fitness) + min(fitness)) / 2
    return [f > middle for f in fitness]


def beats(a: float, b: float) -> bool:
    """``a`` above ``b`` by more than float noise (a tie is no win)."""
    return a - b > _TIE * max(1.0, abs(a), abs(b))


def _per_step(returns: Sequence[float], lengths: Sequence[int]) -> list[float]:
    return [r / max(int(n), 1) for r, n in zip(returns, lengths, strict=True)]


def card_accuracy(
    returns: Sequence[float], lengths: Sequence[int], success: Sequence[bool]
) -> tuple[float, int]:
    """CARD's test: the share of successful episodes whose mean reward per step beats that of
    the *best* failed episode, and the number of successful episodes judged (CARD's
    ``trajectories_return_check``, self_reflection/utils.py:295-302). NaN and 0 without a
    success or without a failure (CARD passes those).

    Mean per step, not total return: a long failed episode must not win by lasting longer (nor a
    short success lose by finishing early). A tie is not a win.

    Example:
        >>> card_accuracy([40.0, 10.0], [40, 10], [True, False])  # an alive bonus: a tie
        (0.0, 1)
        >>> card_accuracy([20.0, 30.0], [10, 40], [True, False])  # 2.0 vs 0.75 per step
        (1.0, 1)
        >>> card_accuracy([3.0, 3.0, 1.0, 2.5], [1, 1, 1, 1], [True, True, False, False])
        (1.0, 2)
    """
    means = _per_step(returns, lengths)
    failed = [m for m, won in zip(means, success, strict=True) if not won]
    wins = [m for m, won in zip(means, success, strict=True) if won]
    if not failed or not wins:
        return math.nan, 0
    best_failure = max(failed)
    return sum(beats(m, best_failure) for m in wins) / len(wins), len(wins)


def card_pair_accuracy(
    returns: Sequence[float], lengths: Sequence[int], success: Sequence[bool]
) -> tuple[float, int]:
    """Our earlier reading of CARD (``loop.screening_test=card_pairs``): the share of
    (success, failure) pairs where the success earns the higher mean reward per step, and the
    number of pairs. More lenient than :func:`card_accuracy`.

    Example:
        >>> card_pair_accuracy([3.0, 3.0, 1.0, 3.5], [1, 1, 1, 1], [True, True, False, False])
        (0.5, 4)
    """
    means = _per_step(returns, lengths)
    wins = pairs = 0
    for i, won in enumerate(success):
        for j, lost in enumerate(success):
            if won and not lost:
                pairs += 1
                wins += beats(means[i], means[j])
    return (wins / pairs if pairs else math.nan), pairs


def preference_accuracy(returns: Sequence[float], fitness: Sequence[float]) -> tuple[float, int]:
    """Our pairwise test: share of trajectory pairs whose total-return order matches their fitness
    order, and the pairs. Pairs with equal fitness say nothing and are skipped; equal returns
    count half.
    """
    agree, pairs = 0.0, 0
    for i in range(len(returns)):
        for j in range(i + 1, len(returns)):
            df = fitness[i] - fitness[j]
            if abs(df) <= _TIE:
                continue
            pairs += 1
            dr = returns[i] - returns[j]
            if abs(dr) <= _TIE * max(1.0, abs(returns[i]), abs(returns[j])):
                agree += 0.5
            elif (dr > 0) == (df > 0):
                agree += 1.0
    return (agree / pairs if pairs else math.nan), pairs


def informative(
    trajectories: Sequence[Trajectory], test: str, success_threshold: float | None
) -> bool:
    """Whether ``test`` can judge anything on these episodes: a success and a failure (card),
    or two different fitness values (pairwise)."""
    fitness = [t.fitness for t in trajectories]
    if test in ("card", "card_pairs"):
        labels = success_labels(fitness, success_threshold)
        return any(labels) and not all(labels)
    return len({round(f, 9) for f in fitness}) >= 2


@dataclass(frozen=True)
class ScreeningOutcome:
    """What screening decided about one candidate, and what a screened-out one teaches."""

    passed: bool
    accuracy: float | None
    pairs: int  # comparisons behind the accuracy: successes judged (card), pairs (the others)
    reason: str = ""
    feedback: str = ""


def judge_returns(
    returns: Sequence[float],
    trajectories: Sequence[Trajectory],
    test: str,
    threshold: float,
    success_threshold: float | None,
) -> ScreeningOutcome:
    """Pass or reject on the reported returns against the trusted fitness (no pair: pass)."""
    fitness = [t.fitness for t in trajectories]
    if test in ("card", "card_pairs"):
        labels = success_labels(fitness, success_threshold)
        judge = card_accuracy if test == "card" else card_pair_accuracy
        accuracy, pairs = judge(returns, [t.length for t in trajectories], labels)
    else:
        accuracy, pairs = preference_accuracy(returns, fitness)
    if pairs == 0 or math.isnan(accuracy):
        return ScreeningOutcome(True, None, 0)
    if accuracy < threshold:
        return ScreeningOutcome(
            False,
            accuracy,
            pairs,
            f"trajectory preference accuracy {accuracy:.2f} < {threshold:.2f}",
        )
    return ScreeningOutcome(True, accuracy, pairs)


__all__ = [
    "SCREENING_TESTS",
    "ScreeningOutcome",
    "beats",
    "card_accuracy",
    "card_pair_accuracy",
    "informative",
    "judge_returns",
    "preference_accuracy",
    "success_labels",
]
