"""CompactReplayBuffer: the same transitions as SB3's ReplayBuffer, in float32 and stored once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from rewardgen.train.memory import buffer_size_for
from rewardgen.train.replay import CompactReplayBuffer, storage_space

OBS = spaces.Box(-np.inf, np.inf, (5,), np.float64)
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _episodes(n_envs: int, steps: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """Vector steps as SAC stores them: episodes of random lengths that end terminated or
    truncated, the terminal observation in ``next_obs`` and the reset one in the next ``obs``."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n_envs, 5))
    out = []
    for _ in range(steps):
        nxt = rng.normal(size=(n_envs, 5))
        done = rng.random(n_envs) < 0.2
        truncated = done & (rng.random(n_envs) < 0.5)
        next_obs = nxt.copy()
        next_obs[done] = rng.normal(size=(int(done.sum()), 5)) + 100.0  # terminal observations
        infos = [{"TimeLimit.truncated": bool(t)} for t in truncated]
        out.append(
            (
                obs.copy(),
                next_obs,
                rng.uniform(-1, 1, (n_envs, 2)).astype(np.float32),
                rng.normal(size=n_envs).astype(np.float32),
                done.astype(np.float32),
                infos,
            )
        )
        obs = nxt  # the VecEnv's new obs: the reset observation where done
    return out


def _fill(buffer: ReplayBuffer, steps: list[tuple[Any, ...]]) -> None:
    for step in steps:
        buffer.add(*step)


def _valid_rows(buffer: ReplayBuffer) -> np.ndarray:
    rows = np.arange(buffer.buffer_size if buffer.full else buffer.pos)
    if buffer.optimize_memory_usage and buffer.full:
        rows = rows[rows != buffer.pos]  # overwritten by the newest next observation
    return rows


@pytest.mark.parametrize(("n_envs", "steps", "size"), [(1, 30, 100), (3, 70, 60), (2, 41, 40)])
def test_optimised_buffer_samples_what_sb3s_plain_buffer_holds(
    n_envs: int, steps: int, size: int
) -> None:
    """Every valid row, sampled from the single-copy buffer with timeouts handled, equals SB3's
    two-copy buffer's row (float32-rounded), wrapped or not: truncated transitions keep their
    own next observation, terminated ones are masked by their done flag."""
    data = _episodes(n_envs, steps)
    plain = ReplayBuffer(size, OBS, ACT, "cpu", n_envs=n_envs)
    compact = CompactReplayBuffer(size, OBS, ACT, "cpu", n_envs=n_envs, optimize_memory_usage=True)
    _fill(plain, data)
    _fill(compact, data)
    assert compact.observations.dtype == np.float32 and not hasattr(compact, "next_observations")
    rows = _valid_rows(compact)
    np.random.seed(0)
    ours = compact._get_samples(rows)
    np.random.seed(0)  # the same env index per row
    theirs = plain._get_samples(rows)
    for name in ("observations", "actions", "rewards", "dones"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name).float())
    live = theirs.dones.squeeze(-1) == 0  # a terminated transition's next obs is never read
    torch.testing.assert_close(ours.next_observations[live], theirs.next_observations[live].float())
    truncated = compact.timeouts[rows, 0] > 0 if n_envs == 1 else None
    if truncated is not None:
        assert truncated.any()  # the case SB3 refuses, exercised


def test_unoptimised_buffer_stores_float32_twice() -> None:
    buffer = CompactReplayBuffer(10, OBS, ACT, "cpu")
    assert buffer.observations.dtype == buffer.next_observations.dtype == np.float32
    assert buffer.nbytes == 10 * (5 * 4 * 2 + 2 * 4 + 3 * 4 + 1)
    assert storage_space(ACT) is ACT  # float32 and other spaces keep their dtype


def test_buffer_size_is_capped_at_the_budget() -> None:
    assert buffer_size_for(1_000_000, 2048, 1) == 2048
    assert buffer_size_for(1_000_000, 2050, 8) == 2056  # whole rows per env
    assert buffer_size_for(50_000, 300_000, 4) == 50_000
    assert buffer_size_for(1, 100, 1) == 1  # the trusted evaluator's one-transition buffer
