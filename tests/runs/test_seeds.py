"""Evaluation seeds: distinct, in range, from a secret source (two draws never agree)."""

from __future__ import annotations

import pytest

from rewardgen.runs.seeds import SEED_LIMIT, check_seeds, draw_seeds


def test_a_draw_gives_distinct_plain_ints_in_range() -> None:
    seeds = draw_seeds(64)
    assert len(seeds) == 64 == len(set(seeds))
    assert all(type(s) is int and 0 <= s < SEED_LIMIT for s in seeds)
    assert draw_seeds(0) == []


def test_draws_are_fresh_each_time() -> None:
    """Nothing seeds the source: the same call twice (same process, same moment) differs."""
    draws = [tuple(draw_seeds(5)) for _ in range(20)]
    assert len(set(draws)) == 20
    assert len({s for d in draws for s in d}) > 90  # 100 draws out of 2**31: no pattern


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot draw -1 seeds"):
        draw_seeds(-1)


def test_check_seeds_accepts_one_distinct_seed_per_episode() -> None:
    assert check_seeds((7, 9), 2) == [7, 9]
    with pytest.raises(ValueError, match="1 evaluation seeds for 2 episodes"):
        check_seeds([7], 2)
    with pytest.raises(ValueError, match="repeat a seed"):
        check_seeds([7, 7], 2)
    for bad in ([-1], [SEED_LIMIT], [1.5], [True]):
        with pytest.raises(ValueError, match="must be ints in"):
            check_seeds(bad, 1)  # type: ignore[arg-type]
