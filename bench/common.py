"""Shared helpers for the benchmarks: interleaved repeats and robust summaries.

Timings on a shared machine drift (other processes, CPU frequency), so every benchmark measures
its variants in turn inside each repeat, counts this process's CPU time (time another process
holds the core is not charged to the variant that happened to run) and reports the median, which
one noisy repeat cannot move far.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def interleaved_rates(
    variants: dict[str, Callable[[], int]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each variant in turn ``repeats`` times; return its work units per second per repeat.

    Args:
        variants: name -> function doing a fixed amount of work and returning how many units
            (env steps) it did.
        repeats: measured rounds; each round runs every variant once, in the given order.
        warmup: unmeasured rounds first (imports, caches, lazy allocations).
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.process_time()
            units = fn()
            rates[name].append(units / max(time.process_time() - start, 1e-9))
    return rates


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float]) -> float:
    """Relative half-range of the middle half (interquartile range / 2 / median)."""
    if len(values) < 4:
        return (max(values) - min(values)) / 2 / statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / 2 / statistics.median(values)


def timed_generation(bench: str, executor: Any, jobs: Sequence[Any]) -> float:
    """Wall seconds of ``executor.run(jobs)``; a failed candidate voids the timing (exit)."""
    start = time.monotonic()
    results = executor.run(jobs)
    wall = time.monotonic() - start
    bad = [f"{r.status}: {r.reason}" for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{bench}: candidates failed ({bad[0]}); the timing is void")
    return wall
