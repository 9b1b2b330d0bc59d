"""Tests of rewardgen.train.callbacks on real SB3 models and real MuJoCo envs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from rewardgen.train.callbacks import CheckpointCallback, EpisodeStatsCallback
from rewardgen.train.checkpoints import checkpoint_path, list_checkpoints, load_weights
from rewardgen.train.sb3 import build_model, make_vec_env
from tests.train.helpers import HOPPER_PROGRAM, TINY_PPO


def _job(tmp_path: Path) -> CandidateJob:
    return CandidateJob(
        task="hopper",
        out_dir=str(tmp_path),
        reward_source=HOPPER_PROGRAM,
        rl=TINY_PPO,
        max_episode_steps=30,
    )


def test_episode_stats_and_checkpoint_schedule(tmp_path: Path) -> None:
    task, job = load_task("hopper"), _job(tmp_path)
    venv = make_vec_env(task, job, n_envs=2, seed=0)
    model = build_model(job, venv, tb_dir=None)
    stats = EpisodeStatsCallback()
    checkpoints = CheckpointCallback(tmp_path / "checkpoints", eval_freq=100, stats=stats)
    model.learn(200, callback=[stats, checkpoints])
    venv.close()
    # num_timesteps counts both envs; learn(200) runs whole rollouts (2 x 64) up to 256 steps.
    assert checkpoints.saved == [100, 200, 256]
    assert [p for _, p in list_checkpoints(tmp_path / "checkpoints")] == [
        checkpoint_path(tmp_path / "checkpoints", n) for n in (100, 200, 256)
    ]
    n = len(stats.returns)
    assert n >= 2 * 128 // 30  # every episode is capped at 30 steps
    assert len(stats.native_returns) == len(stats.lengths) == len(stats.fitness) == n
    assert all(1 <= length <= 30 for length in stats.lengths)
    assert set(stats.components[0]) == {"forward", "upright"}
    assert checkpoints.episodes_at[-1] == n
    series = checkpoints.component_stats()
    assert set(series) == {"forward", "upright"} and all(len(v) == 3 for v in series.values())
    first = stats.components[: checkpoints.episodes_at[0]]
    assert series["forward"][0] == pytest.approx(np.mean([c["forward"] for c in first]))


def test_checkpoint_only_at_the_end_when_freq_is_zero_and_weights_round_trip(tmp_path: Path) -> None:
    task, job = load_task("hopper"), _job(tmp_path)
    venv = make_vec_env(task, job, n_envs=1, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8]})
    stats = EpisodeStatsCallback()
    callback = CheckpointCallback(tmp_path / "ck", eval_freq=0, stats=stats)
    model.learn(32, callback=[stats, callback])
    assert callback.saved == [32]  # only the final one
    other = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8]},
                seed=123)
    venv.close()
    load_weights(other.policy, checkpoint_path(tmp_path / "ck", 32))
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(tensor, other.policy.state_dict()[name])
