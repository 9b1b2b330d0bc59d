"""The memory estimate's parts against what SB3 and the vision callbacks really allocate."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.tasks.spec import load_task
from rewardgen.train import memory
from rewardgen.train.replay import CompactReplayBuffer
from rewardgen.train.vision import ReplayInputs


def test_task_spaces_read_the_env_once() -> None:
    memory.task_spaces.cache_clear()
    assert memory.task_spaces("humanoid") == memory.Spaces(obs=348, action=17)
    assert memory.task_spaces("hopper") == memory.Spaces(obs=11, action=3)
    memory.task_spaces("humanoid")
    assert memory.task_spaces.cache_info().hits == 1


@pytest.mark.parametrize("optimize", [True, False])
def test_replay_part_is_the_buffer_sb3_allocates(optimize: bool) -> None:
    env = load_task("humanoid").make_env()
    buffer = CompactReplayBuffer(
        3000,
        env.observation_space,
        env.action_space,
        "cpu",
        n_envs=3,
        optimize_memory_usage=optimize,
    )
    spaces = memory.task_spaces("humanoid")
    expected = memory.replay_buffer_mb(1000, 3, spaces, optimize)
    assert buffer.nbytes / memory.MB == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("algo", "arch"), [("sac", [256, 256]), ("ppo", {"pi": [64], "vf": [32]})])
def test_model_part_counts_the_policys_parameters(algo: str, arch: object) -> None:
    venv = DummyVecEnv([load_task("hopper").make_env])
    kwargs = {"buffer_size": 1} if algo == "sac" else {"n_steps": 8, "batch_size": 8}
    cls = SAC if algo == "sac" else PPO
    model = cls("MlpPolicy", venv, policy_kwargs={"net_arch": arch}, device="cpu", **kwargs)
    params = sum(p.numel() for p in model.policy.parameters())  # SAC: actor, critic, target
    est = memory.model_mb(algo, {"policy_kwargs": {"net_arch": arch}}, memory.task_spaces("hopper"))
    assert est == pytest.approx(params * 4 * memory.PARAM_COPIES / memory.MB, rel=0.02)


def test_frame_store_part_matches_replay_inputs() -> None:
    store = ReplayInputs(block=memory.INPUT_BLOCK)
    frames = np.zeros((2, 48, 48, 3), dtype=np.uint8)
    for pos in range(1500):
        store.put(pos, frames)
    held = sum(b.nbytes for b in store.blocks.values()) / memory.MB
    parts = memory.frame_store_mb(
        {"preference": {"image_size": 48, "capacity": 100}, "render": {"width": 64, "height": 32}},
        5000,
        2,
        1500,
        None,
    )
    assert parts["frame store (relabelling)"] == pytest.approx(held)
    assert parts["frame store (query pool)"] == pytest.approx(100 * 64 * 32 * 3 / memory.MB)


def test_estimate_adds_rendering_and_caps_the_buffer_at_the_budget() -> None:
    spaces = memory.task_spaces("humanoid")
    hp = {"buffer_size": 1_000_000, "optimize_memory_usage": True}
    small = memory.estimate(
        algo="sac", hyperparams=hp, timesteps=2048, n_envs=1, vec_env="dummy", spaces=spaces
    )
    assert small.parts["replay buffer"] == pytest.approx(
        memory.replay_buffer_mb(2048, 1, spaces, True)
    )
    assert small.total < 4096 - 400  # the rewardgen-eval command
    seen = memory.estimate(
        algo="sac",
        hyperparams=hp,
        timesteps=2048,
        n_envs=1,
        vec_env="dummy",
        spaces=spaces,
        reward_kind="vlm_preference",
    )
    assert seen.parts["rendering (EGL)"] == memory.RENDER_MB
    assert "replay buffer" in small.describe() and "MB" in small.describe()
