"""Trusted task fitness: the ground-truth score of an episode, used for selection.

A task names an expression over the State view and how to aggregate it over an episode. The
expression comes from the task file (trusted), never from the LLM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import TaskError

AGGREGATES = ("mean", "sum", "final", "delta", "max", "min", "duration")


@dataclass(frozen=True)
class FitnessSpec:
    """How an episode is scored.

    Attributes:
        expr: Python expression over ``state`` (and ``np``, ``math``), e.g. ``state.x_velocity``.
        aggregate: one of ``mean``, ``sum``, ``final``, ``delta`` (final minus initial), ``max``,
            ``min``, ``duration`` (seconds the episode lasted; ``expr`` is ignored).
        unit: unit of the resulting score, for tables.
        doc: one sentence saying what the score means.
    """

    expr: str
    aggregate: str = "mean"
    unit: str = ""
    doc: str = ""

    def compile(self) -> Callable[[Any], float]:
        """The expression as a function of one State (raises TaskError when malformed)."""
        if self.aggregate not in AGGREGATES:
            raise TaskError(f"fitness aggregate {self.aggregate!r} is not one of {AGGREGATES}")
        try:
            fn = eval(f"lambda state: ({self.expr})", {"np": np, "math": math})  # trusted spec
        except SyntaxError as e:
            raise TaskError(f"fitness expression {self.expr!r} is not valid Python: {e.msg}") from e
        return fn  # type: ignore[no-any-return]


class FitnessTracker:
    """Accumulates one episode's fitness step by step (cheap enough for every env step).

    Args:
        spec: what to score and how to aggregate it.
        dt: seconds per env step, for the ``duration`` aggregate.
    """

    def __init__(self, spec: FitnessSpec, dt: float) -> None:
        self._fn = spec.compile()
        self._aggregate = spec.aggregate
        self._dt = dt
        self._needs_value = spec.aggregate != "duration"
        self._extreme = max if spec.aggregate == "max" else min if spec.aggregate == "min" else None
        self.reset(None)

    def reset(self, state: Any) -> None:
        """Start a new episode; ``state`` is its first State (the ``delta`` baseline)."""
        self._initial = self._fn(state) if state is not None and self._aggregate == "delta" else 0.0
        self._total = 0.0
        self._last = 0.0
        self._best = -math.inf if self._aggregate == "max" else math.inf
        self._steps = 0

    def update(self, state: Any) -> None:
        """Account for the State reached by one more env step."""
        self._steps += 1
        if self._needs_value:
            value = float(self._fn(state))
            self._total += value
            self._last = value
            if self._extreme is not None:
                self._best = self._extreme(self._best, value)

    @property
    def steps(self) -> int:
        """Env steps accounted for in this episode."""
        return self._steps

    @property
    def value(self) -> float:
        """The episode's score so far (0.0 before the first step, except ``duration``)."""
        agg = self._aggregate
        if agg == "duration":
            return self._steps * self._dt
        if self._steps == 0:
            return 0.0
        if agg == "mean":
            return self._total / self._steps
        if agg == "sum":
            return self._total
        if agg == "final":
            return self._last
        if agg == "delta":
            return self._last - float(self._initial)
        return self._best
