"""Headless rendering: frames of every env of a vector env, at a set size and frame skip.

Vision rewards need pixels from envs that run without a display. MuJoCo picks its OpenGL backend
from ``MUJOCO_GL`` when it is first imported, so :func:`ensure_headless_gl` must run before that
(the CLI and the worker call it at import time); with no ``DISPLAY`` it selects EGL.

Frames travel inside ``info``: :class:`FrameCapture` renders in the env's own process (so a
``SubprocVecEnv`` renders in parallel, and the terminal frame of an episode is captured before
the vector env resets it) and :func:`frames_from_infos` gathers them into one batch.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rewardgen.errors import ConfigError, RenderError

log = logging.getLogger(__name__)

FRAME_KEY = "rewardgen_frame"  # info key of a captured frame
STATE_KEY = "rewardgen_state"  # info key of a captured State view (train/vision.py StateCapture)
EGL_PACKAGES = "libegl1 libegl-mesa0"
_HINT = (
    f"install EGL for headless rendering (Debian/Ubuntu: apt-get install {EGL_PACKAGES}; "
    "Fedora: mesa-libEGL), or set MUJOCO_GL=osmesa with libosmesa6 installed, or MUJOCO_GL=glfw "
    "with a display"
)


def ensure_headless_gl() -> str:
    """Select EGL when no display is present and no backend was chosen; return the backend.

    Must run before ``mujoco`` is imported to take effect; later calls only report.
    """
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    backend = os.environ.get("MUJOCO_GL", "glfw")
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def render_error(env_id: str, error: BaseException) -> RenderError:
    """A RenderError that names the backend, the cause and the OS package to install."""
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    hint = _HINT
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:  # mesa maps large virtual areas; a tight cap breaks it
        hint = (
            f"the address-space limit ({limit >> 20} MB, sandbox.memory_mb) may be too small for "
            f"the GL driver: raise it; else {_HINT}"
        )
    return RenderError(
        f"cannot render {env_id} headless (MUJOCO_GL={backend}): {type(error).__name__}: "
        f"{error}; {hint}"
    )


def render_frame(env: gym.Env) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame of ``env`` (made with ``render_mode="rgb_array"``).

    Raises:
        RenderError: rendering cannot start (no EGL/OSMesa) or the env renders no RGB array.
    """
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    try:
        frame = env.render()
    except Exception as e:  # noqa: BLE001 - GL failures surface as many types
        raise render_error(env_id, e) from e
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise RenderError(
            f"{env_id} rendered {type(frame).__name__}, not an RGB array; make the env with "
            "render_mode='rgb_array'"
        )
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


class FrameCapture(gym.Wrapper):
    """Put a rendered frame into ``info[FRAME_KEY]`` every ``frame_skip``-th step.

    The frame of the last step of an episode is always rendered, so a score of the terminal
    state never comes from the next episode's first frame. Steps without a frame carry None.

    Args:
        env: an env made with ``render_mode="rgb_array"`` (its size is the frame size).
        frame_skip: render every k-th step (1: every step).
    """

    def __init__(self, env: gym.Env, frame_skip: int = 1) -> None:
        super().__init__(env)
        if frame_skip < 1:
            raise ConfigError(f"method.render.frame_skip must be at least 1, got {frame_skip}")
        if env.render_mode != "rgb_array":
            raise ConfigError(
                f"FrameCapture needs an env made with render_mode='rgb_array', got "
                f"{env.render_mode!r}"
            )
        self.frame_skip = frame_skip
        self._count = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._count = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._count += 1
        due = (self._count - 1) % self.frame_skip == 0 or terminated or truncated
        info[FRAME_KEY] = render_frame(self.env) if due else None
        return obs, reward, terminated, truncated, info


def frames_from_infos(infos: Sequence[dict[str, Any]]) -> tuple[np.ndarray | None, list[int]]:
    """Stack the frames carried in one vector step's infos: ``(frames, env indices)``.

    Returns ``(None, [])`` when no env rendered on this step (frame skip).
    """
    index = [i for i, info in enumerate(infos) if info.get(FRAME_KEY) is not None]
    if not index:
        return None, []
    return np.stack([infos[i][FRAME_KEY] for i in index]), index


def render_vec_env(venv: Any) -> np.ndarray:
    """``(n_envs, H, W, 3)`` frames of every member of an SB3 vector env, right now.

    Works for ``DummyVecEnv`` and ``SubprocVecEnv`` (and wrappers of them) whose members were
    made with ``render_mode="rgb_array"``; used for judge rollouts and benchmarks.
    """
    try:
        frames = venv.env_method("render")
    except Exception as e:  # noqa: BLE001 - a subprocess reports GL failures as EOFError etc.
        raise render_error(str(getattr(venv, "spec", "vector env")), e) from e
    if any(not isinstance(f, np.ndarray) for f in frames):
        raise RenderError("a vector-env member rendered no RGB array; use render_mode='rgb_array'")
    return np.stack([np.asarray(f)[..., :3] for f in frames]).astype(np.uint8, copy=False)


__all__ = [
    "EGL_PACKAGES",
    "FRAME_KEY",
    "FrameCapture",
    "ensure_headless_gl",
    "frames_from_infos",
    "render_error",
    "render_frame",
    "render_vec_env",
]
