"""Motif's reward model: fit to episode-pair labels, saved, reloaded, normalised, thresholded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.errors import ConfigError
from rewardgen.jobs import training_job
from rewardgen.rewards.motif import IntrinsicReward, MotifVecEnv, fit_intrinsic
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.tasks.spec import load_task
from rewardgen.train.sb3 import EnvFactory
from rewardgen.train.vision import STATE_KEY
from tests.helpers import tiny_config

SETTINGS = {"ensemble": 2, "lr": 3e-3, "accuracy_threshold": 0.95, "max_epochs": 20,
            "states_per_pair": 4, "threshold_percentile": 50.0}


def _episodes(n: int = 6) -> tuple[list[np.ndarray], list[tuple[int, int, int]]]:
    """Episode k's States have their first feature near k: the labels prefer the higher k."""
    rng = np.random.default_rng(0)
    episodes = [np.c_[k + 0.1 * rng.standard_normal(20), rng.standard_normal((20, 2))]
                .astype(np.float32) for k in range(n)]
    pairs = [(i, j, 0 if i > j else 1) for i in range(n) for j in range(n) if i != j]
    return episodes, pairs


def test_fit_save_reload_and_threshold(tmp_path: Path) -> None:
    episodes, pairs = _episodes()
    meta = fit_intrinsic(episodes, pairs, SETTINGS, 0, tmp_path)
    assert meta["episode_pair_accuracy"] >= 0.9 and meta["dim"] == 3
    assert json.loads((tmp_path / "reward_model.json").read_text())["threshold"] == meta["threshold"]
    reward = IntrinsicReward(tmp_path)
    low, high = reward(episodes[0]), reward(episodes[-1])
    assert high.mean() > low.mean()
    everything = reward(np.concatenate(episodes))
    assert np.all((everything == 0) | (everything >= meta["threshold"]))  # 1[r >= eps] * r
    assert 0.3 < float(np.mean(everything == 0)) < 0.7  # the 50th percentile of the dataset
    with pytest.raises(ConfigError, match="no preference was kept"):
        fit_intrinsic(episodes, [], SETTINGS, 0, tmp_path / "none")
    with pytest.raises(ConfigError, match="cannot read the reward model"):
        IntrinsicReward(tmp_path / "missing")


def test_motif_vec_env_adds_the_weighted_intrinsic_reward(tmp_path: Path) -> None:
    task = load_task("inverted_pendulum")
    cfg = tiny_config("method=motif")
    job = training_job(cfg, str(tmp_path), None, "motif")
    venv = DummyVecEnv([EnvFactory(task, job, 0, 0)])
    probe = venv.reset()
    _, _, _, infos = venv.step(np.zeros((1, 1)))
    dim = len(infos[0][STATE_KEY])
    episodes = [np.random.default_rng(k).standard_normal((10, dim)).astype(np.float32) + k
                for k in range(4)]
    fit_intrinsic(episodes, [(1, 0, 0), (2, 1, 0), (3, 2, 0)], SETTINGS, 0, tmp_path / "m")
    intrinsic = IntrinsicReward(tmp_path / "m")
    wrapped = MotifVecEnv(venv, intrinsic, STATE_KEY, coefficient=0.5, env_coefficient=2.0)
    assert probe is not None and wrapped.reset() is not None
    total = {"env": 0.0, "intrinsic": 0.0}
    for _ in range(200):
        _, reward, done, infos = wrapped.step(np.zeros((1, 1)))
        extra = infos[0][INFO_KEY]
        r_int = intrinsic(infos[0][STATE_KEY][None])[0]
        assert extra["intrinsic_reward"] == pytest.approx(r_int)
        assert reward[0] == pytest.approx(2.0 * extra["native_reward"] + 0.5 * r_int, rel=1e-5)
        total["env"] += 2.0 * extra["native_reward"]
        total["intrinsic"] += 0.5 * r_int
        if done[0]:
            assert extra["episode"]["components"] == pytest.approx(total, rel=1e-4)
            break
    else:
        pytest.fail("the episode never ended")
    wrapped.close()
