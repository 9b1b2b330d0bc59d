"""Motif's reward model: fit, saved, reloaded, normalised, thresholded; the count term."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.errors import ConfigError
from rewardgen.jobs import training_job
from rewardgen.rewards.motif import (
    COUNT_KEY,
    IntrinsicReward,
    MotifVecEnv,
    fit_intrinsic,
    input_index,
    message_fn,
)
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.tasks.spec import load_task
from rewardgen.train.sb3 import EnvFactory
from rewardgen.train.vision import STATE_KEY
from tests.helpers import tiny_config

SETTINGS = {
    "ensemble": 1,
    "lr": 3e-3,
    "max_epochs": 30,
    "batch_pairs": 8,
    "states_per_episode": 8,
    "validation_share": 0.0,
    "patience": 5,
    "threshold_percentile": 50.0,
}


def _episodes(n: int = 6) -> tuple[list[np.ndarray], list[tuple[int, int, float]]]:
    """Episode k's States have their first feature near k: the labels prefer the higher k."""
    rng = np.random.default_rng(0)
    episodes = [
        np.c_[k + 0.1 * rng.standard_normal(20), rng.standard_normal((20, 2))].astype(np.float32)
        for k in range(n)
    ]
    pairs = [(i, j, 0.0 if i > j else 1.0) for i in range(n) for j in range(n) if i != j]
    return episodes, pairs


def test_fit_save_reload_and_threshold(tmp_path: Path) -> None:
    episodes, pairs = _episodes()
    meta = fit_intrinsic(episodes, pairs, SETTINGS, 0, tmp_path, index=[0, 1])
    assert meta["episode_pair_accuracy"] >= 0.9 and meta["dim"] == 2
    saved = json.loads((tmp_path / "reward_model.json").read_text())
    assert saved["threshold"] == meta["threshold"] and saved["input_index"] == [0, 1]
    assert saved["output"] == "linear" and len(saved["history"]) == meta["epochs"]
    reward = IntrinsicReward(tmp_path)
    low, high = reward(episodes[0]), reward(episodes[-1])  # full States: it picks its columns
    assert high.mean() > low.mean()
    everything = reward(np.concatenate(episodes))
    assert np.all((everything == 0) | (everything > meta["threshold"]))  # 1[r > eps] * r
    assert 0.3 < float(np.mean(everything == 0)) < 0.7  # the 50th percentile of the dataset
    with pytest.raises(ConfigError, match="no preference was kept"):
        fit_intrinsic(episodes, [], SETTINGS, 0, tmp_path / "none")
    with pytest.raises(ConfigError, match="the captions read no State field"):
        fit_intrinsic(episodes, pairs, SETTINGS, 0, tmp_path / "none", index=[])
    with pytest.raises(ConfigError, match="cannot read the reward model"):
        IntrinsicReward(tmp_path / "missing")


def test_input_index_follows_the_flattened_state() -> None:
    task = load_task("hopper")
    env = task.make_env()
    env.reset(seed=0)
    state = task.state_builder(env).build()
    env.close()
    index = input_index(state, ["torso_height", "foot_position"])
    flat = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in state])
    assert flat[index[0]] == state.torso_height and list(flat[index[1:]]) == list(
        state.foot_position
    )


def _motif_env(tmp_path: Path, *overrides: str) -> tuple[DummyVecEnv, IntrinsicReward, dict]:
    task = load_task("hopper")
    cfg = tiny_config("method=motif", "task=hopper", *overrides)
    options = {"env_reward": str(cfg.method.env_reward), "message_resolution": 0.1}
    job = training_job(cfg, str(tmp_path), None, "motif")
    job = dataclasses.replace(job, reward_options=options)
    venv = DummyVecEnv([EnvFactory(task, job, 0, 0)])
    venv.reset()
    _, _, _, infos = venv.step(np.zeros((1, 3)))
    dim = len(infos[0][STATE_KEY])
    episodes = [
        np.random.default_rng(k).standard_normal((10, dim)).astype(np.float32) + k for k in range(4)
    ]
    fit_intrinsic(
        episodes,
        [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)],
        {**SETTINGS, "threshold_percentile": 0.0},
        0,
        tmp_path / "m",
    )
    return venv, IntrinsicReward(tmp_path / "m"), options


def test_the_bonus_is_divided_by_the_message_count_cubed(tmp_path: Path) -> None:
    venv, intrinsic, _ = _motif_env(tmp_path)
    wrapped = MotifVecEnv(
        venv, intrinsic, STATE_KEY, coefficient=0.5, env_coefficient=2.0, count_exponent=3.0
    )
    wrapped.reset()
    total, counts = {"env": 0.0, "intrinsic": 0.0}, []
    for _ in range(300):
        _, reward, done, infos = wrapped.step(np.zeros((1, 3)))  # standing still: the same
        extra, n = infos[0][INFO_KEY], infos[0][COUNT_KEY]  # message again and again
        counts.append(n)
        r_int = intrinsic(infos[0][STATE_KEY][None])[0] / n**3
        assert extra["intrinsic_reward"] == pytest.approx(r_int, rel=1e-5)
        env_reward = extra["components"]["sparse"]  # Motif's env reward: the sparse one
        assert reward[0] == pytest.approx(2.0 * env_reward + 0.5 * r_int, rel=1e-5, abs=1e-7)
        total["env"] += 2.0 * env_reward
        total["intrinsic"] += 0.5 * r_int
        if done[0]:
            assert extra["episode"]["components"] == pytest.approx(total, rel=1e-4, abs=1e-7)
            break
    else:
        pytest.fail("the episode never ended")
    assert max(counts) >= 3  # a message repeats within the episode: its bonus fades as 1/N^3
    _, _, _, infos = wrapped.step(np.zeros((1, 3)))  # a new episode counts afresh
    assert infos[0][COUNT_KEY] <= 2
    wrapped.close()


def test_the_native_env_reward_stays_an_option(tmp_path: Path) -> None:
    venv, intrinsic, _ = _motif_env(tmp_path, "method.env_reward=native")
    wrapped = MotifVecEnv(venv, intrinsic, STATE_KEY, 0.1, 0.01)
    wrapped.reset()
    _, reward, _, infos = wrapped.step(np.zeros((1, 3)))
    extra = infos[0][INFO_KEY]
    assert "sparse" not in extra.get("components", {})
    assert reward[0] == pytest.approx(
        0.01 * extra["native_reward"] + 0.1 * extra["intrinsic_reward"], rel=1e-5
    )
    wrapped.close()


def test_the_threshold_is_a_percentile_over_unique_messages(tmp_path: Path) -> None:
    episodes, pairs = _episodes()
    states = np.concatenate(episodes)
    messages = [(int(s[0] > 4.5),) for s in states]  # two messages: episodes 0-4, episode 5
    meta = fit_intrinsic(episodes, pairs, SETTINGS, 0, tmp_path, messages=messages)
    assert meta["threshold_over"] == "unique messages"
    reward = IntrinsicReward(tmp_path)
    normalised = (reward.model(states) - meta["mean"]) / meta["std"]
    means = [normalised[[m == (k,) for m in messages]].mean() for k in (0, 1)]
    assert meta["threshold"] == pytest.approx(float(np.percentile(means, 50.0)), abs=1e-5)
    assert abs(meta["threshold"] - float(np.percentile(normalised, 50.0))) > 0.1  # not per State
    with pytest.raises(ConfigError, match="2 messages for 120 States"):
        fit_intrinsic(episodes, pairs, SETTINGS, 0, tmp_path / "x", messages=messages[:2])


def test_the_message_is_the_caption_on_progress_s_grid() -> None:
    from rewardgen.rewards.progress import grid_key
    from rewardgen.tasks.captions import step_values

    task = load_task("hopper")
    env = task.make_env()
    env.reset(seed=0)
    state = task.state_builder(env).build()
    env.close()
    message = message_fn(task, 0.1)
    assert message(state) == grid_key(step_values(task)(state), 0.1)
    assert message(state._replace(x_position=9.0)) == message(state)  # not the fitness
    assert message(state._replace(torso_height=state.torso_height + 0.5)) != message(state)
    with pytest.raises(ConfigError, match="method.message_resolution=0.0 must be greater"):
        message_fn(task, 0.0)
