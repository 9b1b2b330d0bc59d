"""Tests of rewardgen.train.sb3: devices, hyperparameters, env stack, model, tracebacks."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from stable_baselines3 import PPO, SAC

from rewardgen.config import RLConfig
from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.resources import resource_dir
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox.contract import program_traceback
from rewardgen.tasks.spec import load_task
from rewardgen.train.sb3 import (
    SparseReward,
    build_model,
    hyperparams_for,
    make_env,
    make_vec_env,
    resolve_device,
    reward_fn_for,
)
from tests.train.helpers import GENERIC_PROGRAM, TINY_PPO

ZOO_TASKS = {
    "hopper", "half_cheetah", "walker2d", "ant", "humanoid", "humanoid_standup", "swimmer",
    "reacher", "pusher", "inverted_pendulum", "inverted_double_pendulum",
}  # fmt: skip


def _job(tmp_path: Path, **kw: Any) -> CandidateJob:
    base: dict[str, Any] = {
        "task": "hopper",
        "out_dir": str(tmp_path / "cand"),
        "reward_source": GENERIC_PROGRAM,
        "rl": TINY_PPO,
        "max_episode_steps": 50,
    }
    return CandidateJob(**{**base, **kw})


def test_resolve_device() -> None:
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match="device 'tpu'"):
        resolve_device("tpu")


def test_resolve_device_auto_is_cpu_without_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert resolve_device("auto") == "cpu"


def test_hyperparams_for_merges_per_task_overrides() -> None:
    rl = {
        "common": {"gamma": 0.99, "n_steps": 2048, "policy_kwargs": {"net_arch": [64, 64]}},
        "per_task": {"hopper": {"gamma": 0.999, "policy_kwargs": {"log_std_init": -2}}},
    }
    assert hyperparams_for(rl, "hopper") == {
        "gamma": 0.999,
        "n_steps": 2048,
        "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -2},
    }
    assert hyperparams_for(rl, "ant") == rl["common"]
    assert rl["common"]["gamma"] == 0.99  # the input is not modified
    assert hyperparams_for({}, "hopper") == {}


def test_user_hyperparams_override_per_task_values() -> None:
    rl = {
        "common": {"n_steps": 2048},
        "per_task": {"hopper": {"n_steps": 512, "gamma": 0.999}},
        "hyperparams": {"n_steps": 64, "policy_kwargs": {"net_arch": [8]}},
    }
    assert hyperparams_for(rl, "hopper") == {
        "n_steps": 64, "gamma": 0.999, "policy_kwargs": {"net_arch": [8]},
    }


def test_hyperparams_for_rejects_non_mapping_override() -> None:
    with pytest.raises(ConfigError, match=r"rl.per_task.hopper must be a mapping"):
        hyperparams_for({"per_task": {"hopper": [1, 2]}}, "hopper")


@pytest.mark.parametrize(("name", "algo"), [("ppo", PPO), ("sac", SAC)])
def test_rl_yaml_fits_schema_and_algorithm(name: str, algo: type) -> None:
    path = resource_dir("conf") / "rl" / f"{name}.yaml"
    cfg = OmegaConf.merge(OmegaConf.structured(RLConfig), OmegaConf.load(path))
    rl = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(rl, dict)
    assert rl["algo"] == name
    assert set(rl["per_task"]) == ZOO_TASKS
    accepted = set(inspect.signature(algo.__init__).parameters)
    for task in ZOO_TASKS:
        unknown = set(hyperparams_for(rl, task)) - accepted
        assert not unknown, f"{name}.yaml {task}: {unknown} are not {algo.__name__} arguments"


def test_ppo_yaml_has_tuned_hopper() -> None:
    rl = OmegaConf.to_container(OmegaConf.load(resource_dir("conf") / "rl" / "ppo.yaml"))
    assert isinstance(rl, dict)
    hopper = hyperparams_for(rl, "hopper")
    assert hopper["gamma"] == 0.999 and hopper["n_steps"] == 512
    assert hopper["policy_kwargs"]["activation_fn"] == "relu"
    assert hyperparams_for(rl, "swimmer")["gamma"] == 0.9999


def test_make_vec_env_applies_program_and_is_seeded(tmp_path: Path) -> None:
    task = load_task("hopper")
    job = _job(tmp_path)
    first = make_vec_env(task, job, n_envs=2, seed=3)
    second = make_vec_env(task, job, n_envs=2, seed=3)
    try:
        obs_a, obs_b = first.reset(), second.reset()
        np.testing.assert_array_equal(obs_a, obs_b)
        assert not np.array_equal(obs_a[0], obs_a[1])  # members get seed + i
        actions = np.zeros((2, *first.action_space.shape), dtype=np.float32)
        _, rewards, _, infos = first.step(actions)
        np.testing.assert_allclose(rewards, [1.0, 1.0])
        assert infos[0][INFO_KEY]["components"] == {"alive": 1.0, "effort": 0.0}
    finally:
        first.close()
        second.close()


def test_make_vec_env_rejects_bad_settings(tmp_path: Path) -> None:
    task, job = load_task("hopper"), _job(tmp_path)
    with pytest.raises(ConfigError, match="rl.vec_env 'threads'"):
        make_vec_env(task, job, n_envs=1, seed=0, vec_env="threads")
    with pytest.raises(ConfigError, match="rl.n_envs must be at least 1, got 0"):
        make_vec_env(task, job, n_envs=0, seed=0)


def test_reward_fn_for_kinds(tmp_path: Path) -> None:
    task = load_task("hopper")
    assert reward_fn_for(task, _job(tmp_path, reward_kind="native")) is None
    sparse = reward_fn_for(task, _job(tmp_path, reward_kind="sparse", reward_source=None))
    assert isinstance(sparse, SparseReward)
    env = make_env(task, _job(tmp_path), None)
    env.reset(seed=0)
    state = env.current_state()
    env.close()
    assert sparse(state, np.zeros(3), state) == (0.0, {"sparse": 0.0})
    moved = state._replace(x_position=6.0)
    assert sparse(moved, np.zeros(3), state) == (1.0, {"sparse": 1.0})
    # method=motif: its intrinsic reward is added to the sparse reward, or to the native one
    motif = _job(tmp_path, reward_kind="motif", reward_source=None,
                 reward_options={"env_reward": "sparse"})
    assert isinstance(reward_fn_for(task, motif), SparseReward)
    native = dataclasses.replace(motif, reward_options={"env_reward": "native"})
    assert reward_fn_for(task, native) is None


def test_reward_fn_for_errors(tmp_path: Path) -> None:
    task = load_task("hopper")
    no_sparse = dataclasses.replace(task, sparse_reward=None)
    with pytest.raises(ConfigError, match="task 'hopper' has no sparse_reward"):
        reward_fn_for(no_sparse, _job(tmp_path, reward_kind="sparse"))
    with pytest.raises(ConfigError, match="reward_kind 'dense'"):
        reward_fn_for(task, _job(tmp_path, reward_kind="dense"))
    with pytest.raises(ConfigError, match="needs reward_source"):
        reward_fn_for(task, _job(tmp_path, reward_source=None))
    unsafe = "import os\ndef compute_reward(s, a, p):\n    return 0.0, {}\n"
    with pytest.raises(RewardCodeError, match="import of 'os'"):
        reward_fn_for(task, _job(tmp_path, reward_source=unsafe))


def test_build_model_maps_settings(tmp_path: Path) -> None:
    task = load_task("hopper")
    rl = {**TINY_PPO, "per_task": {"hopper": {"policy_kwargs": {"activation_fn": "relu"}}}}
    job = _job(tmp_path, rl=rl, seed=7)
    env = make_vec_env(task, job, n_envs=2, seed=7)
    try:
        model = build_model(job, env, tb_dir=None)
    finally:
        env.close()
    assert isinstance(model, PPO)
    assert model.n_steps == 64 and model.seed == 7
    assert model.device.type == resolve_device("auto").split(":")[0]
    assert model.policy.activation_fn is torch.nn.ReLU
    assert model.policy.net_arch == [8]


def test_build_model_errors(tmp_path: Path) -> None:
    task = load_task("hopper")
    job = _job(tmp_path)
    env = make_vec_env(task, job, n_envs=1, seed=0)
    try:
        with pytest.raises(ConfigError, match="rl.algo 'td3'"):
            build_model(_job(tmp_path, rl={**TINY_PPO, "algo": "td3"}), env, None)
        bad = {**TINY_PPO, "hyperparams": {"n_stepz": 64}}
        with pytest.raises(ConfigError, match="do not fit PPO"):
            build_model(_job(tmp_path, rl=bad), env, None)
        act = {**TINY_PPO, "hyperparams": {"policy_kwargs": {"activation_fn": "swish2"}}}
        with pytest.raises(ConfigError, match="activation_fn 'swish2'"):
            build_model(_job(tmp_path, rl=act), env, None)
    finally:
        env.close()


def test_program_traceback_keeps_program_frames(tmp_path: Path) -> None:
    source = (
        "def helper(x):\n"
        "    return 1.0 / x\n"
        "\n"
        "def compute_reward(state, action, prev_state):\n"
        "    return helper(0.0), {}\n"
    )
    task = load_task("hopper")
    env = make_env(task, _job(tmp_path), reward_fn_for(task, _job(tmp_path, reward_source=source)))
    env.reset(seed=0)
    with pytest.raises(RewardCodeError, match="compute_reward raised ZeroDivisionError") as info:
        env.step(np.zeros(3))
    env.close()
    text = program_traceback(info.value, source)
    assert "line 5, in compute_reward\n    return helper(0.0), {}" in text
    assert "line 2, in helper\n    return 1.0 / x" in text
    assert text.splitlines()[-1].startswith("ZeroDivisionError")
    assert "stable_baselines3" not in text and "wrappers.py" not in text
    assert program_traceback(RewardCodeError("total reward is not finite (nan)"), source) == ""
