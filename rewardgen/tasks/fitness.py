"""Trusted task fitness: the ground-truth score of an episode, used for selection.

A task names an expression over the State view and how to aggregate it over an episode. The
expression comes from the task file (trusted), never from the LLM. It may also read ``info``, the
env's step info, for a success flag only the env computes (MetaWorld's ``info["success"]``,
Fetch's ``info["is_success"]``): ``max`` of that flag over an episode, averaged over evaluation
episodes, is the success rate. Where no step info exists (the first State, a rendered rollout)
``info`` is empty, so such expressions read it with ``info.get("success", 0.0)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import TaskError

AGGREGATES = ("mean", "sum", "final", "delta", "max", "min", "duration")
NO_INFO: Mapping[str, Any] = {}  # ``info`` where no env step gave one (export vendors this file)


@dataclass(frozen=True)
class FitnessSpec:
    """How an episode is scored.

    Attributes:
        expr: Python expression over ``state`` (and ``np``, ``math``, the step's ``info``), e.g.
            ``state.x_velocity`` or ``float(info.get("success", 0.0))``.
        aggregate: one of ``mean``, ``sum``, ``final``, ``delta`` (final minus initial), ``max``,
            ``min``, ``duration`` (seconds the episode lasted; ``expr`` is ignored).
        unit: unit of the resulting score, for tables.
        doc: one sentence saying what the score means.
    """

    expr: str
    aggregate: str = "mean"
    unit: str = ""
    doc: str = ""

    @property
    def formula(self) -> str:
        """What the score aggregates, as a reader says it (``duration`` ignores ``expr``).

        Example:
            >>> FitnessSpec("0.0", "duration").formula, FitnessSpec("state.x", "mean").formula
            ('duration of the episode', 'mean of state.x')
        """
        if self.aggregate == "duration":
            return "duration of the episode"
        return f"{self.aggregate} of {self.expr}"

    def compile(self) -> Callable[..., float]:
        """The expression as a function ``(state, info=NO_INFO)`` (raises TaskError when malformed).
        """
        if self.aggregate not in AGGREGATES:
            raise TaskError(f"fitness aggregate {self.aggregate!r} is not one of {AGGREGATES}")
        try:
            fn = eval(  # trusted spec
                f"lambda state, info=_NO_INFO: ({self.expr})",
                {"np": np, "math": math, "_NO_INFO": NO_INFO},
            )
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

    def update(self, state: Any, info: Mapping[str, Any] | None = None) -> None:
        """Account for the State reached by one more env step (and that step's ``info``)."""
        self._steps += 1
        if self._needs_value:
            value = float(self._fn(state) if info is None else self._fn(state, info))
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
