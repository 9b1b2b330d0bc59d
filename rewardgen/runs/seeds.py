"""Evaluation seeds: drawn on the trusted side, from a secret source, after the weights are fixed.

A training worker may run arbitrary code (DESIGN.md, Isolation), so anything it can read or
compute, its job's ``seed`` included, must not tell it where the trusted measurement starts:
a trainer that knows the evaluation episodes can write weights that answer exactly those.
The parent (or, for a following evaluator, the evaluator itself, once it has read the
checkpoint it scores) therefore draws the episodes' reset seeds here, from the operating
system's secret random source (:mod:`secrets`), never from the run's seed, and hands them only
to trusted workers. Every seed drawn is recorded where it was used (the evaluation entry,
``judge.json``), so a reviewer can reset the same episodes again.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

SEED_LIMIT = 2**31  # seeds are in [0, 2**31): every gymnasium / numpy seeding accepts them


def draw_seeds(count: int) -> list[int]:
    """``count`` distinct seeds from the OS's secret random source, one per episode.

    Example:
        >>> seeds = draw_seeds(3)
        >>> len(set(seeds)), all(0 <= s < SEED_LIMIT for s in seeds), draw_seeds(0)
        (3, True, [])

    Raises:
        ValueError: ``count`` is negative.
    """
    if count < 0:
        raise ValueError(f"cannot draw {count} seeds; ask for 0 or more")
    seeds: list[int] = []
    while len(seeds) < count:
        seed = secrets.randbelow(SEED_LIMIT)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def check_seeds(seeds: Sequence[int], count: int) -> list[int]:
    """``seeds`` as a list of ``count`` distinct seeds in [0, 2**31) (a trusted job's own).

    Raises:
        ValueError: a wrong number of seeds, a repeated one, or one that is not such an int.
    """
    out = list(seeds)
    if len(out) != count:
        raise ValueError(f"{len(out)} evaluation seeds for {count} episodes; give one per episode")
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT for s in out):
        raise ValueError(f"evaluation seeds {out} must be ints in [0, {SEED_LIMIT})")
    if len(set(out)) != len(out):
        raise ValueError(f"evaluation seeds {out} repeat a seed; each episode needs its own")
    return out


__all__ = ["SEED_LIMIT", "check_seeds", "draw_seeds"]
