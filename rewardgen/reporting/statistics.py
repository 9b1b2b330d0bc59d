"""Seed statistics for the final comparison and the sweep table, as RL papers now report them.

A bare mean over three seeds hides how much it would move with three other seeds. Following
Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice", the ``rliable`` library)
every final comparison reports, per reward:

* the **interquartile mean** (IQM: the mean of the middle 50% of the per-seed scores, robust to
  one lucky or broken seed; with fewer than 4 seeds nothing is trimmed and it is the mean),
* its **95% stratified bootstrap confidence interval** over seeds (percentile method,
  :data:`BOOTSTRAP_REPS` resamples, numpy seed :data:`BOOTSTRAP_SEED`, so the same scores always
  give the same interval); with fewer than :data:`MIN_SEEDS_FOR_CI` seeds no interval is
  reported, with the reason (see below),
* the **probability of improvement** P(generated > native): the chance that a training of the
  generated reward on a random seed beats one of the native reward on a random seed (the
  Mann-Whitney U statistic, ties counting half), with its own bootstrap interval.

It also holds Eureka's human-normalised score, (generated - sparse) / |native - sparse|, which is
only reported where its denominator is more than noise (see :func:`human_normalised`).

Why no interval below 5 seeds (:data:`MIN_SEEDS_FOR_CI`): a percentile bootstrap over n seeds
resamples the n numbers themselves. With n <= 3 a resample made of one seed repeated n times has
probability n**(1 - n) >= 11%, above the 2.5% tail, so the "interval" is the lowest and highest
seed (with 2 seeds: the two values); with 4 it is still 1.6%. Simulated on normal seeds (1000
trials, 2000 resamples), the nominal 95% interval of the mean covers the true mean 48% of the time
with 2 seeds, 74% with 3, 78% with 4, 84% with 5 and 90% with 8. Five is where the interval stops
being the sample's range (n**(1 - n) = 0.16%) and is the number of seeds Eureka's final
evaluation uses, the default ``final.n_seeds``; even there, read it as a rough 85% interval.
P(generated > native) takes the same rule on the smaller side: with 2 seeds a side it can only be
0, 1/4, 1/2, 3/4 or 1, and ``1 [1, 1]`` would read as certainty.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000  # ~0.3 s per interval on one CPU core (the intervals, not the run, cost)
BOOTSTRAP_SEED = 0
MIN_SEEDS_FOR_CI = 5  # below it the percentile interval is the seeds' range (module docstring)
METHOD = (f"IQM over seeds with a {CONFIDENCE:.0%} percentile interval from {BOOTSTRAP_REPS} "
          f"stratified bootstrap resamples of the seeds (rliable, numpy seed {BOOTSTRAP_SEED}); "
          f"P(generated > native) is the Mann-Whitney probability of improvement over seeds; "
          f"no interval with fewer than {MIN_SEEDS_FOR_CI} seeds")


def describe() -> dict[str, Any]:
    """How the numbers were made, stored next to them (summary.json, sweep_summary.json)."""
    return {"method": METHOD, "confidence": CONFIDENCE, "bootstrap_reps": BOOTSTRAP_REPS,
            "bootstrap_seed": BOOTSTRAP_SEED, "min_seeds_for_ci": MIN_SEEDS_FOR_CI}


def no_ci_reason(n: int, what: str = "seeds") -> str | None:
    """Why ``n`` seeds get no 95% interval (None: they get one).

    Example:
        >>> no_ci_reason(2)
        'no 95% CI with 2 seeds: needs at least 5'
        >>> no_ci_reason(5) is None
        True
    """
    if n == 0:
        return "no successful seed"
    if n < MIN_SEEDS_FOR_CI:
        return f"no 95% CI with {n} {what}: needs at least {MIN_SEEDS_FOR_CI}"
    return None


def _column(values: Sequence[float]) -> np.ndarray:
    """rliable's layout: (runs, tasks); here the runs are seeds of one task."""
    return np.asarray([float(v) for v in values], dtype=np.float64).reshape(-1, 1)


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    """rliable 1.2 resamples with numpy's global generator; seed it, then put it back as it was."""
    state = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        yield
    finally:
        np.random.set_state(state)


def _interval(scores: np.ndarray | list[np.ndarray], func: Any) -> list[float]:
    from rliable import library

    with _seeded():
        _, intervals = library.get_interval_estimates(
            {"x": scores}, func, reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
    low, high = np.asarray(intervals["x"], dtype=np.float64).reshape(2)
    return [float(low), float(high)]


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's ``probability_of_improvement`` for one task, vectorised: the mean over all
    pairs of [x > y] + [x == y] / 2 (its Mann-Whitney U / (nx ny)), 15x faster in the bootstrap."""
    a, b = x[:, 0][:, None], y[:, 0][None, :]
    return np.array([np.mean((a > b) + 0.5 * (a == b))])


def iqm(values: Sequence[float]) -> float | None:
    """Interquartile mean (25% trimmed from each end, rliable's ``aggregate_iqm``); None if empty.

    Example:
        >>> iqm([1.0, 2.0, 3.0, 4.0, 100.0])  # the 100 is trimmed, as is the 1
        3.0
    """
    if not values:
        return None
    from rliable import metrics

    return float(metrics.aggregate_iqm(_column(values)))


def iqm_interval(values: Sequence[float]) -> dict[str, Any]:
    """IQM of per-seed scores with its bootstrap interval.

    Returns:
        ``{"iqm", "ci": [low, high] | None, "ci_reason": str | None, "n"}``; ``ci_reason`` says
        why there is no interval (fewer than :data:`MIN_SEEDS_FOR_CI` successful seeds).
    """
    n = len(values)
    point = iqm(values)
    reason = no_ci_reason(n, "seed" if n == 1 else "seeds")
    if reason is not None:
        return {"iqm": point, "ci": None, "n": n, "ci_reason": reason}
    from rliable import metrics

    ci = _interval(_column(values), lambda s: np.array([metrics.aggregate_iqm(s)]))
    return {"iqm": point, "ci": ci, "ci_reason": None, "n": n}


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """P(X > Y) over seeds (ties count half) with its bootstrap interval, X and Y resampled apart.

    Example:
        >>> probability_of_improvement([3.0, 4.0], [1.0, 5.0])["value"]  # 2 of 4 pairs
        0.5

    Returns:
        ``{"value": float | None, "ci": [low, high] | None, "ci_reason": str | None, "n": [nx, ny]}``.
    """
    n = [len(x), len(y)]
    if min(n) == 0:
        return {"value": None, "ci": None, "n": n,
                "ci_reason": "no successful seed on one side"}
    from rliable import metrics

    pair = [_column(x), _column(y)]
    value = float(metrics.probability_of_improvement(*pair))
    if min(n) < MIN_SEEDS_FOR_CI:
        return {"value": value, "ci": None, "n": n,
                "ci_reason": f"no 95% CI with {min(n)} seed{'s' if min(n) > 1 else ''} on one "
                             f"side: needs at least {MIN_SEEDS_FOR_CI}"}
    ci = _interval(pair, _improvement)
    return {"value": value, "ci": ci, "ci_reason": None, "n": n}


def human_normalised(generated: float | None, native: float | None, sparse: float | None, *,
                     native_std: float = 0.0, sparse_std: float = 0.0,
                     ) -> tuple[float | None, str | None]:
    """Eureka's human-normalised score (generated - sparse) / |native - sparse| of seed means.

    The rule: the score is **undefined** (None, with the reason) when the native and sparse
    means are within their spread over seeds, ``|native - sparse| <= max(native_std,
    sparse_std)`` (population std over seeds, the ± of the final table). Dividing by a gap
    smaller than the seed noise turns noise into a large score (a 100k-step hopper run showed
    10.4 from native 0.04 ± 0.08 against sparse 0.12 ± 0.17). With one seed per baseline the
    spreads are 0 and only equal means are undefined.

    Returns:
        ``(score, None)``, or ``(None, reason)``.

    Example:
        >>> human_normalised(3.0, 2.0, 0.0, native_std=0.5, sparse_std=0.25)
        (1.5, None)
        >>> human_normalised(0.5, 0.04, 0.12, native_std=0.08, sparse_std=0.17)[0] is None
        True
    """
    for name, value in (("generated", generated), ("native", native), ("sparse", sparse)):
        if value is None or not math.isfinite(value):
            return None, f"no {name} fitness (that variant is missing or failed on every seed)"
    assert generated is not None and native is not None and sparse is not None
    gap, spread = abs(native - sparse), max(native_std, sparse_std)
    if gap <= spread:
        return None, (f"native and sparse are within their spread over seeds: "
                      f"|{native:.4g} - {sparse:.4g}| = {gap:.4g} <= {spread:.4g} (larger std)")
    return (generated - sparse) / gap, None


def format_interval(point: float | None, ci: Sequence[float] | None, reason: str | None = None,
                    digits: int = 3) -> str:
    """``"1.23 [0.98, 1.5]"``; ``"1.23 (no 95% CI with 2 seeds: needs at least 5)"`` without
    an interval (the whole reason: its figures are what a reader needs); ``"-"`` without a value."""
    if point is None:
        return "-"
    if ci is None:
        return f"{point:.{digits}g} ({reason or 'no interval'})"
    return f"{point:.{digits}g} [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"


def comparison_lines(final: dict[str, Any]) -> list[str]:
    """Plain-text lines under the final table: the human-normalised score (or why it is
    undefined) and P(generated > native), with the budget and seeds they rest on."""
    seeds = final.get("seeds") or []
    budget = ("MPC episodes" if final.get("planner") == "mpc" else
              f"{int(final.get('timesteps') or 0):,} steps")
    basis = f"{budget} x {len(seeds)} seeds {seeds}"
    score = final.get("human_normalised_score")
    if score is not None:
        lines = [f"human-normalised score: {score:.3f}  ((generated - sparse) / |native - sparse| "
                 f"of seed means; {basis})"]
    else:
        reason = final.get("human_normalised_reason") or "no reason recorded"
        lines = [f"human-normalised score: undefined ({reason})"]
    poi = (final.get("probability_of_improvement") or {}).get("generated_over_native")
    if poi:
        lines.append(f"P(generated > native): "
                     f"{format_interval(poi.get('value'), poi.get('ci'), poi.get('ci_reason'), 2)}"
                     f"  (95% bootstrap CI over seeds; {basis})")
    return lines


def headline(final: dict[str, Any] | None, search_fitness: float | None,
             selection: str | None = None, unit: str = "") -> dict[str, Any]:
    """The one number a run is summed up by, and how the search's own number is labelled.

    The search's best fitness is a peak: the maximum over candidates of one training each on the
    search seed (under ``loop.selection=max``, itself the peak evaluation of that training), so it
    is biased upwards (the winner's curse: the same reward retrained on fresh seeds scored 2.02
    where its search peak was 3.41). Where a final phase ran, its IQM over the fresh seeds is the
    headline; the search number is shown beside it, labelled as what it is.

    Returns:
        ``{"fitness", "ci", "ci_reason", "text", "source", "search_peak", "search_text"}``:
        ``text`` is the headline as shown (``"2.02 [1.49, 2.56] (IQM over 5 fresh seeds, 300,000
        steps each)"``), ``source`` ``"final"`` or ``"search"``.

    Example:
        >>> headline(None, 3.408, "max")["text"]
        '3.408 (search peak, 1 seed, loop.selection=max)'
    """
    u = f" {unit}" if unit else ""
    how = f", loop.selection={selection}" if selection else ""
    peak = None if search_fitness is None else f"{search_fitness:.3f}{u} (search peak, 1 seed{how})"
    generated = ((final or {}).get("variants") or {}).get("generated") or {}
    point = generated.get("fitness_iqm")
    if point is None:
        return {"fitness": search_fitness, "ci": None, "ci_reason": None, "text": peak or "-",
                "source": "search", "search_peak": search_fitness, "search_text": peak}
    assert final is not None
    n = int(generated.get("n_ok") or 0)
    budget = ("one MPC episode each" if final.get("planner") == "mpc" else
              f"{int(final.get('timesteps') or 0):,} steps each")
    ci, reason = generated.get("fitness_iqm_ci"), generated.get("fitness_iqm_ci_reason")
    shown = (f"{point:.3g}{u} [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else
             f"{point:.3g}{u} ({reason or 'no interval'})")
    text = f"{shown} (IQM over {n} fresh seed{'s' if n != 1 else ''}, {budget})"
    return {"fitness": point, "ci": ci, "ci_reason": reason, "text": text, "source": "final",
            "search_peak": search_fitness, "search_text": peak}
