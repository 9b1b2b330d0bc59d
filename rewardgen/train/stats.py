"""Pure numbers over one candidate's training: fitness selection and reward/fitness agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError

SELECTIONS = ("final", "last_k", "max")


def aggregate_fitness(
    evaluations: Sequence[dict[str, Any]], selection: str, last_k: int = 3
) -> tuple[float | None, float | None]:
    """Reduce a training's evaluations to the (fitness, success_rate) used for selection.

    ``final`` takes the last evaluation; ``last_k`` the mean over the last ``last_k`` (less noisy
    than one point, and still rewards a policy that ends well); ``max`` the best evaluation. The
    success rate comes from the same evaluation(s); it is None when any of them has none.

    Example:
        >>> evals = [{"fitness": 1.0, "success_rate": 0.0}, {"fitness": 3.0, "success_rate": 1.0}]
        >>> aggregate_fitness(evals, "last_k", 2)
        (2.0, 0.5)
    """
    if selection not in SELECTIONS:
        raise ConfigError(f"selection {selection!r} is not one of {SELECTIONS}")
    if not evaluations:
        return None, None
    if selection == "final":
        used = [evaluations[-1]]
    elif selection == "max":
        used = [max(evaluations, key=lambda e: float(e["fitness"]))]
    else:
        if last_k < 1:
            raise ConfigError(f"last_k must be at least 1, got {last_k}")
        used = list(evaluations[-last_k:])
    fitness = float(np.mean([float(e["fitness"]) for e in used]))
    rates = [e.get("success_rate") for e in used]
    known = [float(r) for r in rates if r is not None]
    success = float(np.mean(known)) if len(known) == len(rates) else None
    return fitness, success


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson r of two equally long series; None below 3 points or with zero variance.

    Used to report how well a generated reward tracks the trusted fitness over training episodes.
    """
    if len(xs) != len(ys):
        raise ValueError(f"series differ in length: {len(xs)} vs {len(ys)}")
    if len(xs) < 3:
        return None
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denom == 0.0 or not math.isfinite(denom):
        return None
    return float(np.dot(dx, dy) / denom)


def mean_components(episodes: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean episode sum of each component over episodes (a missing component counts as 0)."""
    names = sorted({name for ep in episodes for name in ep})
    if not episodes:
        return {}
    return {name: float(np.mean([ep.get(name, 0.0) for ep in episodes])) for name in names}
