"""RewardProgramWrapper on real MuJoCo envs: native and program rewards, episode info, bad output."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rewardgen.errors import RewardCodeError
from rewardgen.rewards.wrappers import INFO_KEY, RewardProgramWrapper
from rewardgen.sandbox.program import load_program
from rewardgen.tasks.spec import load_task

PROGRAM = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward = (state.x_position - prev_state.x_position) / state.dt
    ctrl_cost = 0.01 * np.sum(np.square(action))
    alive = 1.0 if state.torso_height > 0.7 else 0.0
    return forward - ctrl_cost + alive, {"forward": forward, "ctrl_cost": -ctrl_cost, "alive": alive}
"""


def _actions(env: gym.Env, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    space = env.action_space
    return [rng.uniform(space.low, space.high).astype(np.float32) for _ in range(n)]  # type: ignore[attr-defined]


def _wrapped(reward_fn: Any = None, steps: int = 30, task: str = "hopper") -> RewardProgramWrapper:
    spec = load_task(task)
    env = RewardProgramWrapper(spec.make_env(max_episode_steps=steps), spec, reward_fn)
    env.reset(seed=0)
    return env


def test_native_reward_is_kept_without_a_program() -> None:
    env = _wrapped()
    native = load_task("hopper").make_env(max_episode_steps=30)
    native.reset(seed=0)
    for action in _actions(env, 10):
        _, reward, *_, info = env.step(action)
        _, expected, *_ = native.step(action)
        assert reward == pytest.approx(float(expected))
        assert info[INFO_KEY]["native_reward"] == reward
        assert info[INFO_KEY]["components"] == {}
    env.close()
    native.close()


def test_program_reward_replaces_the_native_one() -> None:
    env = _wrapped(load_program(PROGRAM).fn)
    prev = env.current_state()
    for action in _actions(env, 5):
        _, reward, *_, info = env.step(action)
        state = env.current_state()
        forward = (state.x_position - prev.x_position) / state.dt
        components = info[INFO_KEY]["components"]
        assert components["forward"] == pytest.approx(forward)
        assert reward == pytest.approx(sum(components.values()))
        assert reward != pytest.approx(info[INFO_KEY]["native_reward"])
        assert all(type(v) is float for v in components.values())
        prev = state
    env.close()


def test_episode_summary_at_the_end() -> None:
    env = _wrapped(load_program(PROGRAM).fn, steps=25)
    first = env.current_state()
    rewards, natives, sums = [], [], {"forward": 0.0, "ctrl_cost": 0.0, "alive": 0.0}
    episode = None
    for action in _actions(env, 25):
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        natives.append(info[INFO_KEY]["native_reward"])
        for key, value in info[INFO_KEY]["components"].items():
            sums[key] += value
        if terminated or truncated:
            episode = info[INFO_KEY]["episode"]
            break
        assert "episode" not in info[INFO_KEY]
    assert episode is not None
    assert episode["length"] == len(rewards)
    assert episode["return"] == pytest.approx(sum(rewards))
    assert episode["native_return"] == pytest.approx(sum(natives))
    assert episode["components"] == pytest.approx(sums)
    moved = env.current_state().x_position - first.x_position
    assert episode["fitness"] == pytest.approx(moved)
    assert episode["success"] is (moved >= 5.0)
    env.reset(seed=1)  # a new episode starts from zero
    _, _, _, _, info = env.step(_actions(env, 1)[0])
    assert info[INFO_KEY]["components"]["alive"] in (0.0, 1.0)
    env.close()


def test_native_baseline_episode_uses_the_trusted_fitness() -> None:
    env = _wrapped(None, steps=1000, task="inverted_pendulum")
    length = 0
    while True:
        _, _, terminated, truncated, info = env.step(np.array([3.0], dtype=np.float32))
        length += 1
        if terminated or truncated:
            break
    episode = info[INFO_KEY]["episode"]
    assert episode["fitness"] == pytest.approx(length * 0.04)
    assert episode["return"] == episode["native_return"] == pytest.approx(length - 1)
    assert episode["components"] == {}
    env.close()


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ((np.float32(1.5), {"a": np.float64(1.5)}), 1.5),
        ((np.array([2.0]), {"a": 2}), 2.0),
        ((3, {}), 3.0),
        ((True, {"flag": False}), 1.0),
    ],
)
def test_numeric_types_are_converted(out: Any, expected: float) -> None:
    env = _wrapped(lambda s, a, p: out)
    _, reward, *_, info = env.step(_actions(env, 1)[0])
    assert type(reward) is float and reward == expected
    assert all(type(v) is float for v in info[INFO_KEY]["components"].values())
    env.close()


@pytest.mark.parametrize(
    ("out", "match"),
    [
        ((math.nan, {}), "total reward is not finite"),
        ((1.0, {"a": math.inf}), "component 'a' is not finite"),
        (("high", {}), "total reward is str, not a number"),
        ((np.zeros(3), {}), "array of shape \\(3,\\)"),
        ((1.0, [("a", 1.0)]), "components must be a dict"),
        ((1.0, {1: 1.0}), "component names must be strings"),
        (1.0, "must return \\(total, components\\)"),
        ([1.0, {}], "must return \\(total, components\\)"),
        ((1j, {}), "complex"),
        ((np.array(["1e300"]), {}), r"total reward has dtype <U5; return a number"),
        ((np.array([b"1"]), {}), r"total reward has dtype \|S1"),
        ((np.array([1.0], dtype=object), {}), r"total reward has dtype object"),
        ((1.0, {"a": np.zeros(1, dtype=[("p", "f8")])}), r"component 'a' has dtype \[\('p'"),
        ((1.0, {"a": np.zeros(1, dtype="V8")}), r"component 'a' has dtype \|V8"),
    ],
)
def test_bad_output_raises_reward_code_error(out: Any, match: str) -> None:
    env = _wrapped(lambda s, a, p: out)
    with pytest.raises(RewardCodeError, match=match):
        env.step(_actions(env, 1)[0])
    env.close()


def test_exceptions_in_generated_code_become_reward_code_errors() -> None:
    source = "def compute_reward(state, action, prev_state):\n    return 1.0 / 0.0, {}\n"
    env = _wrapped(load_program(source).fn)
    with pytest.raises(RewardCodeError, match="compute_reward raised ZeroDivisionError"):
        env.step(_actions(env, 1)[0])
    env.close()


def test_reward_code_cannot_write_into_the_state() -> None:
    source = (
        "def compute_reward(state, action, prev_state):\n"
        "    state.joint_angles[0] = 1.0\n"
        "    return 0.0, {}\n"
    )
    env = _wrapped(load_program(source).fn)
    with pytest.raises(RewardCodeError, match="ValueError: assignment destination is read-only"):
        env.step(_actions(env, 1)[0])
    env.close()


def test_unchecked_output_is_passed_through() -> None:
    spec = load_task("hopper")
    env = RewardProgramWrapper(
        spec.make_env(), spec, lambda s, a, p: (2, {"x": 2.0}), check_output=False
    )
    env.reset(seed=0)
    _, reward, *_ = env.step(_actions(env, 1)[0])
    assert reward == 2.0
    env.close()


def test_step_before_reset() -> None:
    spec = load_task("hopper")
    env = RewardProgramWrapper(spec.make_env(), spec)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(_actions(env, 1)[0])
    env.close()


def test_current_state_before_reset() -> None:
    spec = load_task("hopper")
    env = RewardProgramWrapper(spec.make_env(), spec)
    assert env.state_builder is None
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.current_state()
    env.close()
