"""Headless rendering: backend choice, frame skip, terminal frames, batches, clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.errors import ConfigError, RenderError
from rewardgen.tasks.spec import load_task
from rewardgen.vision.render import (
    FRAME_KEY,
    FrameCapture,
    ensure_headless_gl,
    frames_from_infos,
    render_frame,
    render_vec_env,
)


def _env(steps: int = 5, size: int = 24) -> gym.Env:
    task = load_task("inverted_pendulum")
    return task.make_env(render_mode="rgb_array", width=size, height=size + 8,
                         max_episode_steps=steps)


def test_egl_is_chosen_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert ensure_headless_gl() == "egl"
    import os

    assert os.environ["PYOPENGL_PLATFORM"] == "egl"
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert ensure_headless_gl() == "osmesa"  # an explicit choice is kept


def test_frame_skip_renders_every_kth_step_and_the_last() -> None:
    env = FrameCapture(_env(steps=3), frame_skip=4)
    env.reset(seed=0)
    rendered = []
    for _ in range(3):
        _, _, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        rendered.append(info[FRAME_KEY] is not None)
        if terminated or truncated:
            break
    assert rendered == [True, False, True]  # step 3 is not due, but terminal: always captured
    frame = render_frame(env)
    assert frame.shape == (32, 24, 3) and frame.dtype == np.uint8
    env.close()


def test_batches_from_infos_and_vector_envs() -> None:
    frames, index = frames_from_infos([{FRAME_KEY: np.zeros((2, 2, 3))}, {FRAME_KEY: None},
                                       {FRAME_KEY: np.ones((2, 2, 3))}])
    assert index == [0, 2] and frames is not None and frames.shape == (2, 2, 2, 3)
    assert frames_from_infos([{}, {FRAME_KEY: None}]) == (None, [])
    venv = DummyVecEnv([_env, _env, _env])
    venv.reset()
    assert render_vec_env(venv).shape == (3, 32, 24, 3)
    venv.close()


class _BrokenGL(gym.Env):
    render_mode = "rgb_array"
    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def render(self) -> None:
        raise RuntimeError("eglInitialize failed")


def test_render_errors_name_the_package_and_the_fix() -> None:
    with pytest.raises(RenderError, match="apt-get install libegl1 libegl-mesa0"):
        render_frame(_BrokenGL())
    with pytest.raises(ConfigError, match="render_mode='rgb_array'"):
        FrameCapture(load_task("inverted_pendulum").make_env())
    with pytest.raises(ConfigError, match="frame_skip must be at least 1, got 0"):
        FrameCapture(_env(), frame_skip=0)
