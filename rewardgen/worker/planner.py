"""Sampling-based and gradient-based MPC over ``mujoco.rollout``.

A nominal action spline (``knots`` knots over the horizon) is refined ``iterations`` times per
control step, each round one batched, multi-threaded ``mujoco.rollout`` call (``threads``
threads) scored by a caller-given function of the rollout's states, minus the always-on
regularisers (``posture_weight``, ``action_rate_weight``). ``planner``:

* ``sampling``: MuJoCo MPC's predictive sampling: the nominal and ``samples - 1`` Gaussian
  perturbations of it (``noise`` times half the control range); the best becomes the nominal.
  Several iterations are iterated predictive sampling around the best so far, as L2R calls
  MJPC's ``planner_step`` 5 times per plan.
* ``cem``: the cross-entropy method: each round samples around a mean with a per-knot spread,
  then refits both to the best quarter of the round (the elites).
* ``gradient``: gradient ascent on the spline: the objective's gradient over the knots by
  central finite differences (every perturbation rolled out in the same batch), then a line
  search over ``samples - 1`` step sizes along it, as MJPC's gradient planner searches its
  step. An iLQG over ``mujoco.mjd_transitionFD`` (L2R's choice, MJPC's planner 2) is not offered:
  that function refuses the RK4 integrator that hopper, walker2d, ant, humanoid and reacher use,
  and the reward program, a Python black box, would need finite-difference Hessians at every
  step (docs/methods.md gives the measurement).

The first action of the best plan is applied; at the next control step the nominal is shifted by
one step (the spline is re-sampled at the shifted knot times) and planning starts again, as MJPC
does. The look-ahead is ``horizon`` control steps, or, with ``horizon`` null, ``horizon_s``
seconds converted with the task's control timestep (:func:`horizon_steps`; L2R: 0.35 s).

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
PLANNERS = ("sampling", "cem", "gradient")
MAX_SAMPLES = 1024
MAX_HORIZON = 1000
MAX_KNOTS = 64
MAX_ITERATIONS = 100
MAX_EPISODE_STEPS = 100_000
_FD_STEP = 0.01  # the gradient planner's finite-difference step, a share of half the range

# states (samples, horizon, nstate) and actions (samples, horizon, nu) -> one score per sample
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
_Best = tuple[np.ndarray, np.ndarray, float]  # a plan's knots, its actions, its objective


PlannerSettings = MPCConfig  # horizon(_s), planner, iterations, samples, noise, knots, ...


def _number(key: str, value: Any, low: float, high: float) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or not low <= value <= high):
        raise ConfigError(f"mpc.{key}={value!r} must be a number in [{low:g}, {high:g}]")
    return float(value)


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
    if values["horizon"] is None and values["horizon_s"] is None:
        raise ConfigError("mpc.horizon and mpc.horizon_s are both null; set the look-ahead in "
                          "control steps (mpc.horizon=8) or seconds (mpc.horizon_s=0.35)")
    ranges = {"samples": (1, MAX_SAMPLES), "knots": (1, MAX_KNOTS),
              "iterations": (1, MAX_ITERATIONS), "episode_steps": (1, MAX_EPISODE_STEPS),
              "threads": (1, 256)}
    if values["horizon"] is not None:
        ranges["horizon"] = (1, MAX_HORIZON)
    for key, (low, high) in ranges.items():
        value = values[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"mpc.{key}={value!r} must be an integer in [{low}, {high}]")
    values["noise"] = _number("noise", values["noise"], 0, 10)
    for key in ("posture_weight", "action_rate_weight"):
        values[key] = _number(key, values[key], 0, 1e6)
    if values["horizon_s"] is not None:
        values["horizon_s"] = _number("horizon_s", values["horizon_s"], 1e-4, 60)
    if values["spline"] not in SPLINES:
        raise ConfigError(f"mpc.spline={values['spline']!r} is not one of {SPLINES}")
    if values["planner"] not in PLANNERS:
        raise ConfigError(f"mpc.planner={values['planner']!r} is not one of {PLANNERS}")
    if values["planner"] == "gradient" and values["samples"] < 2:
        raise ConfigError("mpc.samples=1 leaves the gradient planner no step to search; use "
                          "mpc.samples=2 or more (the line search's step sizes + 1)")
    return MPCConfig(**values)


def horizon_steps(settings: MPCConfig, control_dt: float) -> int:
    """The look-ahead in control steps: ``horizon`` when set (an explicit step count wins),
    else ``horizon_s`` seconds at the task's control timestep (at least one step).

    Example:
        >>> horizon_steps(MPCConfig(horizon=None, horizon_s=0.35), 0.008)  # hopper: 4 x 0.002 s
        44
        >>> horizon_steps(MPCConfig(horizon=8, horizon_s=0.35), 0.008)
        8

    Raises:
        ConfigError: more than MAX_HORIZON steps.
    """
    if settings.horizon is not None:
        return int(settings.horizon)
    if settings.horizon_s is None:  # settings_from refuses this
        raise ConfigError("mpc.horizon and mpc.horizon_s are both null; set one")
    steps = max(1, round(float(settings.horizon_s) / float(control_dt)))
    if steps > MAX_HORIZON:
        raise ConfigError(f"mpc.horizon_s={settings.horizon_s} is {steps} control steps of "
                          f"{control_dt:g} s, over {MAX_HORIZON}; shorten it")
    return int(steps)


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


class Planner:
    """MPC for one MuJoCo model whose controls are the env's actions (``settings.planner``).

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
        self.control_dt = float(model.opt.timestep) * self.frame_skip
        self.horizon = h = horizon_steps(settings, self.control_dt)
        self.times = np.arange(h, dtype=float)
        self.knot_times = np.linspace(0.0, max(h - 1, 1), settings.knots)
        self.nominal = np.tile((self.low + self.high) / 2, (settings.knots, 1))
        self.half_range = (self.high - self.low) / 2
        self.scale = self.half_range * settings.noise
        self.posture = _actuated_qpos(model)  # columns of qpos in the state vector, qpos0 there
        self.previous_action = self.nominal[0].copy()
        self.last_scores: np.ndarray | None = None
        self.last_score = -math.inf  # the objective of the plan applied last
        self.rollouts = 0

    def state_of(self, data: Any) -> np.ndarray:
        """The full physics state of ``data`` (what rollouts start from)."""
        state = np.empty(self.nstate)
        self.mujoco.mj_getState(self.model, data, state, self.spec)
        return state

    def candidates(self, mean: np.ndarray | None = None,
                   scale: np.ndarray | None = None) -> np.ndarray:
        """``mean`` (default: the nominal) first and ``samples - 1`` Gaussian perturbations of
        it (default spread: ``noise`` times half the range): (samples, knots, nu)."""
        mean = self.nominal if mean is None else mean
        spread = self.scale if scale is None else scale
        n = self.settings.samples
        noise = self.rng.standard_normal((n - 1, *mean.shape)) * spread
        perturbed = np.clip(mean[None] + noise, self.low, self.high)
        return np.concatenate([mean[None], perturbed])

    def evaluate(self, knots: np.ndarray, initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Roll out every knot set from ``initial`` in one batch; the objective of each (the
        scorer's sum minus the regularisers; non-finite is -inf) and the actions."""
        actions = interpolate(knots, self.knot_times, self.times, self.settings.spline)
        controls = np.repeat(actions, self.frame_skip, axis=1)  # held for frame_skip physics steps
        states, _ = self.rollout.rollout(self.model, self.datas, initial[None], controls,
                                         persistent_pool=True)
        after = states[:, self.frame_skip - 1 :: self.frame_skip]  # after each control step
        scores = np.asarray(self.score(after, actions), dtype=float) - self.penalty(after, actions)
        self.rollouts += len(knots)
        return np.where(np.isfinite(scores), scores, -np.inf), actions

    def penalty(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The always-on regularisers summed over each rollout: squared actuated-joint distance
        from ``qpos0`` and squared action change per second (the first step's from the action
        applied last)."""
        s = self.settings
        total = np.zeros(len(actions))
        if s.posture_weight and self.posture is not None:
            columns, reference = self.posture
            total += s.posture_weight * np.square(states[..., columns] - reference).sum(axis=(1, 2))
        if s.action_rate_weight:
            before = np.concatenate([np.broadcast_to(self.previous_action, actions[:, :1].shape),
                                     actions[:, :-1]], axis=1)
            rate = (actions - before) / self.control_dt
            total += s.action_rate_weight * np.square(rate).sum(axis=(1, 2))
        return total

    def plan(self, data: Any) -> np.ndarray:
        """One control step's planning from ``data``'s state; returns the action to apply."""
        initial = self.state_of(data)
        refine = {"sampling": self._sampling, "cem": self._cem, "gradient": self._gradient}
        best_knots, best_actions, best_score = refine[self.settings.planner](initial)
        self.last_score = best_score
        action = np.clip(best_actions[0], self.low, self.high)
        self.previous_action = action.copy()
        # shift: the next plan starts one control step later along the chosen spline
        self.nominal = interpolate(best_knots, self.knot_times, self.knot_times + 1.0,
                                   self.settings.spline)
        return action

    def _keep(self, best: _Best | None, knots: np.ndarray, actions: np.ndarray,
              scores: np.ndarray) -> _Best:
        k = int(np.argmax(scores))
        self.last_scores = scores
        if best is None or scores[k] > best[2]:
            return knots[k], actions[k], float(scores[k])
        return best

    def _sampling(self, initial: np.ndarray) -> _Best:
        best: _Best | None = None
        for _ in range(self.settings.iterations):  # each round around the best so far
            knots = self.candidates(None if best is None else best[0])
            scores, actions = self.evaluate(knots, initial)
            best = self._keep(best, knots, actions, scores)
        assert best is not None
        return best

    def _cem(self, initial: np.ndarray) -> _Best:
        best: _Best | None = None
        mean, spread = self.nominal, self.scale * np.ones_like(self.nominal)
        elites = max(2, self.settings.samples // 4)
        for _ in range(self.settings.iterations):
            knots = self.candidates(mean, spread)
            scores, actions = self.evaluate(knots, initial)
            best = self._keep(best, knots, actions, scores)
            top = knots[np.argsort(scores)[::-1][:elites]]
            mean = top.mean(axis=0)
            spread = np.maximum(top.std(axis=0), 0.1 * self.scale)  # never collapse to zero
        assert best is not None
        return best

    def _gradient(self, initial: np.ndarray) -> _Best:
        best: _Best | None = None
        theta = self.nominal
        step = _FD_STEP * self.half_range
        basis = np.eye(theta.size).reshape(theta.size, *theta.shape)
        sizes = self.settings.noise * np.geomspace(0.05, 1.0, self.settings.samples - 1)
        for _ in range(self.settings.iterations):
            probes = np.concatenate([theta[None], theta + basis * step, theta - basis * step])
            scores, actions = self.evaluate(probes, initial)  # unclipped: an honest derivative
            best = self._keep(best, probes[:1], actions[:1], scores[:1])
            ahead, behind = scores[1 : 1 + theta.size], scores[1 + theta.size :]
            if not (np.isfinite(ahead).all() and np.isfinite(behind).all()):
                break
            grad = ((ahead - behind) / 2.0).reshape(theta.shape) / step  # d objective / d knot
            norm = float(np.linalg.norm(grad * self.half_range))
            if norm == 0.0:
                break
            direction = grad * self.half_range / norm * self.half_range  # in action units
            line = np.clip(theta[None] + sizes[:, None, None] * direction[None],
                           self.low, self.high)
            scores, actions = self.evaluate(line, initial)
            best = self._keep(best, line, actions, scores)
            theta = best[0]
        assert best is not None
        return best

    def close(self) -> None:
        """Free the persistent rollout thread pool."""
        with contextlib.suppress(AttributeError):  # older mujoco: no persistent pool to free
            self.rollout.shutdown_persistent_pool()


PredictiveSampler = Planner  # its old name (planner=sampling is MJPC's predictive sampling)


def _actuated_qpos(model: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The state-vector columns of the joints the actuators drive (hinge or slide) and their
    ``qpos0``; None when no actuator drives a joint. The state vector starts with time."""
    import mujoco

    joints = [int(model.actuator_trnid[a, 0]) for a in range(model.nu)
              if int(model.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_JOINT)]
    scalar = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    adr = sorted({int(model.jnt_qposadr[j]) for j in joints if int(model.jnt_type[j]) in scalar})
    if not adr:
        return None
    return np.asarray(adr) + 1, np.asarray(model.qpos0)[adr]


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


__all__ = ["PLANNERS", "SPLINES", "Planner", "PlannerSettings", "PredictiveSampler",
           "controls_reason", "horizon_steps", "interpolate", "settings_from"]
