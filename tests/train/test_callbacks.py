"""Tests of rewardgen.train.callbacks on real SB3 models and real MuJoCo envs."""

from __future__ import annotations

from pathlib import Path

import pytest
from stable_baselines3 import PPO

from rewardgen.results import CandidateJob
from rewardgen.tasks import load_task
from rewardgen.train.callbacks import EpisodeStatsCallback, FitnessEvalCallback
from rewardgen.train.sb3 import build_model, make_env, make_vec_env, reward_fn_for
from tests.train.helpers import HOPPER_PROGRAM, TINY_PPO


def _job(tmp_path: Path) -> CandidateJob:
    return CandidateJob(
        task="hopper",
        out_dir=str(tmp_path),
        reward_source=HOPPER_PROGRAM,
        rl=TINY_PPO,
        max_episode_steps=30,
    )


def test_episode_stats_and_eval_schedule(tmp_path: Path) -> None:
    task, job = load_task("hopper"), _job(tmp_path)
    venv = make_vec_env(task, job, n_envs=2, seed=0)
    eval_env = make_env(task, job, reward_fn_for(task, job))
    model = build_model(job, venv, tb_dir=None)
    stats = EpisodeStatsCallback()
    evals = FitnessEvalCallback(eval_env, eval_freq=100, n_episodes=2, seed=5)
    model.learn(200, callback=[stats, evals])
    venv.close()
    # num_timesteps counts both envs; learn(200) runs whole rollouts (2 x 64) up to 256 steps.
    assert [e["timesteps"] for e in evals.evaluations] == [100, 200, 256]
    n = len(stats.returns)
    assert n >= 2 * 128 // 30  # every episode is capped at 30 steps
    assert len(stats.native_returns) == len(stats.lengths) == len(stats.fitness) == n
    assert all(1 <= length <= 30 for length in stats.lengths)
    assert set(stats.components[0]) == {"forward", "upright"}
    entry = evals.evaluations[-1]
    assert set(entry) == {
        "timesteps", "fitness", "success_rate", "return", "native_return", "length", "components",
    }  # fmt: skip
    assert set(entry["components"]) == {"forward", "upright"}
    assert entry["success_rate"] in (0.0, 0.5, 1.0)  # hopper has a success threshold
    # The components sum to the generated return (the program returns their sum).
    assert sum(entry["components"].values()) == pytest.approx(entry["return"])


def test_evaluations_are_deterministic_and_final_only_when_freq_is_zero(tmp_path: Path) -> None:
    task, job = load_task("hopper"), _job(tmp_path)
    venv = make_vec_env(task, job, n_envs=1, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8]})
    eval_env = make_env(task, job, reward_fn_for(task, job))
    callback = FitnessEvalCallback(eval_env, eval_freq=0, n_episodes=2, seed=1)
    model.learn(32, callback=[callback])
    venv.close()
    assert [e["timesteps"] for e in callback.evaluations] == [32]  # only the final one
    again = callback.evaluate()
    assert again["fitness"] == callback.evaluations[0]["fitness"]
    assert again["length"] == callback.evaluations[0]["length"]
    with pytest.raises(ValueError, match="n_episodes must be at least 1, got 0"):
        FitnessEvalCallback(eval_env, eval_freq=10, n_episodes=0, seed=0)
