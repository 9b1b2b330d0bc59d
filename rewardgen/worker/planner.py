"""Predictive sampling (MuJoCo MPC's sampling planner) over ``mujoco.rollout``.

A nominal action spline (``knots`` knots over ``horizon`` control steps) is perturbed with
Gaussian noise (``noise`` times half the control range) into ``samples - 1`` candidates; the
nominal and the candidates are rolled out together by MuJoCo's batched, multi-threaded
``mujoco.rollout`` (one C call, ``threads`` threads), each rollout is scored by a caller-given
function of the rollout's states, and the best becomes the new nominal. The first action of the
best is applied; at the next control step the nominal is shifted by one step (the spline is
re-sampled at the shifted knot times) and planning starts again, as MJPC does.

This module loads no reward code: the scorer is passed in. It runs in the untrusted MPC worker
(:mod:`rewardgen.worker.mpc`), which is where the reward program is.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from rewardgen.config import MPCConfig
from rewardgen.errors import ConfigError

SPLINES = ("linear", "zero")
MAX_SAMPLES = 1024
MAX_HORIZON = 1000
MAX_KNOTS = 64
MAX_EPISODE_STEPS = 100_000

# states (samples, horizon, nstate) and actions (samples, horizon, nu) -> one score per sample
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


PlannerSettings = MPCConfig  # horizon, samples, noise, knots, spline, episode_steps, threads


def settings_from(raw: Mapping[str, Any]) -> MPCConfig:
    """Planner settings from a config node or a job's options, checked.

    Raises:
        ConfigError: an unknown key or a value out of its range (names the key and the range).
    """
    names = set(MPCConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown MPC settings {unknown}; valid: {sorted(names)}")
    values = {**asdict(MPCConfig()), **dict(raw)}
    ranges = {"horizon": (1, MAX_HORIZON), "samples": (1, MAX_SAMPLES), "knots": (1, MAX_KNOTS),
              "episode_steps": (1, MAX_EPISODE_STEPS), "threads": (1, 256)}
    for key, (low, high) in ranges.items():
        value = values[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"mpc.{key}={value!r} must be an integer in [{low}, {high}]")
    noise = values["noise"]
    if (not isinstance(noise, (int, float)) or isinstance(noise, bool)
            or not math.isfinite(noise) or not 0 <= noise <= 10):
        raise ConfigError(f"mpc.noise={noise!r} must be a number in [0, 10]")
    if values["spline"] not in SPLINES:
        raise ConfigError(f"mpc.spline={values['spline']!r} is not one of {SPLINES}")
    values["noise"] = float(noise)
    return MPCConfig(**values)


def interpolate(knots: np.ndarray, knot_times: np.ndarray, times: np.ndarray,
                spline: str) -> np.ndarray:
    """The spline through ``knots`` (..., K, nu) at ``times`` (T,): (..., T, nu).

    Times past the last knot hold its value (the nominal's tail when it is shifted).

    Example:
        >>> k = np.array([[0.0], [1.0]]); kt = np.array([0.0, 1.0])
        >>> interpolate(k, kt, np.array([0.0, 0.5, 2.0]), "linear")[:, 0].tolist()
        [0.0, 0.5, 1.0]
        >>> interpolate(k, kt, np.array([0.0, 0.5, 2.0]), "zero")[:, 0].tolist()
        [0.0, 0.0, 1.0]
    """
    if knots.shape[-2] == 1:
        return np.repeat(knots, len(times), axis=-2)
    if spline == "zero":
        index = np.clip(np.searchsorted(knot_times, times, side="right") - 1, 0, len(knot_times) - 1)
        return np.take(knots, index, axis=-2)
    clipped = np.clip(times, knot_times[0], knot_times[-1])
    right = np.clip(np.searchsorted(knot_times, clipped, side="right"), 1, len(knot_times) - 1)
    left = right - 1
    span = knot_times[right] - knot_times[left]
    weight = ((clipped - knot_times[left]) / span)[:, None]
    return np.take(knots, left, axis=-2) * (1 - weight) + np.take(knots, right, axis=-2) * weight


class PredictiveSampler:
    """MJPC's predictive sampling for one MuJoCo model whose controls are the env's actions.

    Args:
        model: the env's ``MjModel``.
        frame_skip: physics steps per control step (the env's).
        low, high: the action space's bounds (candidates are clipped to them).
        settings: :class:`~rewardgen.config.MPCConfig` (checked by :func:`settings_from`).
        score: sums the reward over each rollout (higher is better).
        seed: the perturbations' seed.
    """

    def __init__(self, model: Any, frame_skip: int, low: np.ndarray, high: np.ndarray,
                 settings: MPCConfig, score: Scorer, seed: int = 0) -> None:
        import mujoco
        from mujoco import rollout

        self.mujoco, self.rollout = mujoco, rollout
        self.model = model
        self.frame_skip = int(frame_skip)
        self.low, self.high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
        self.settings = settings
        self.score = score
        self.rng = np.random.default_rng(seed)
        self.datas = [mujoco.MjData(model) for _ in range(settings.threads)]
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = mujoco.mj_stateSize(model, self.spec)
        h = settings.horizon
        self.times = np.arange(h, dtype=float)
        self.knot_times = np.linspace(0.0, max(h - 1, 1), settings.knots)
        self.nominal = np.tile((self.low + self.high) / 2, (settings.knots, 1))
        self.scale = (self.high - self.low) / 2 * settings.noise
        self.last_scores: np.ndarray | None = None

    def state_of(self, data: Any) -> np.ndarray:
        """The full physics state of ``data`` (what rollouts start from)."""
        state = np.empty(self.nstate)
        self.mujoco.mj_getState(self.model, data, state, self.spec)
        return state

    def candidates(self) -> np.ndarray:
        """The nominal (first) and ``samples - 1`` perturbed knot sets: (samples, knots, nu)."""
        n = self.settings.samples
        noise = self.rng.standard_normal((n - 1, *self.nominal.shape)) * self.scale
        perturbed = np.clip(self.nominal[None] + noise, self.low, self.high)
        return np.concatenate([self.nominal[None], perturbed])

    def plan(self, data: Any) -> np.ndarray:
        """One control step's planning from ``data``'s state; returns the action to apply."""
        knots = self.candidates()
        actions = interpolate(knots, self.knot_times, self.times, self.settings.spline)
        controls = np.repeat(actions, self.frame_skip, axis=1)  # held for frame_skip physics steps
        initial = self.state_of(data)
        states, _ = self.rollout.rollout(self.model, self.datas, initial[None], controls,
                                         persistent_pool=True)
        after = states[:, self.frame_skip - 1 :: self.frame_skip]  # after each control step
        scores = np.asarray(self.score(after, actions), dtype=float)
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        best = int(np.argmax(scores))
        self.last_scores = scores
        self.nominal = knots[best]
        action = actions[best, 0].copy()
        # shift: the next plan starts one control step later along the chosen spline
        self.nominal = interpolate(self.nominal, self.knot_times, self.knot_times + 1.0,
                                   self.settings.spline)
        return np.clip(action, self.low, self.high)

    def close(self) -> None:
        """Free the persistent rollout thread pool."""
        with contextlib.suppress(AttributeError):  # older mujoco: no persistent pool to free
            self.rollout.shutdown_persistent_pool()


def controls_reason(env: Any) -> str | None:
    """Why the env's actions are not its MuJoCo controls (what the planner rolls out), or None.

    Gymnasium's MuJoCo envs write the action into ``data.ctrl`` and step ``frame_skip`` times;
    envs that move mocap bodies from the action (Fetch, MetaWorld) or rescale it (Adroit) are not
    supported: a rollout of controls would not be the env's dynamics.
    """
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except ImportError:  # pragma: no cover - gymnasium without MuJoCo
        return "gymnasium's MuJoCo envs are not installed"
    base = env.unwrapped
    if not isinstance(base, MujocoEnv):
        return f"{type(base).__name__} is not one of gymnasium's MuJoCo envs"
    shape = tuple(env.action_space.shape or ())
    if shape != (int(base.model.nu),):
        return f"its action shape {shape} is not its {int(base.model.nu)} MuJoCo controls"
    if int(base.model.nmocap) > 0:
        return "it moves mocap bodies, which a rollout of controls does not"
    return None


__all__ = ["SPLINES", "PlannerSettings", "PredictiveSampler", "controls_reason", "interpolate",
           "settings_from"]
