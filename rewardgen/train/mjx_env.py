"""A task's gymnasium v5 env on MJX, as a Brax ``Env``: same model, options, noise and ends.

The MuJoCo model is the one ``task.make_env()`` loads (gymnasium's own XML, with the task's
``env_kwargs``), put on the device with ``mjx.put_model``; frame skip, reset noise, healthy
ranges, observation flags and reward weights are read from that gymnasium env's attributes, so
``env_kwargs`` that change them change both simulators alike. Ported: Hopper-v5, Walker2d-v5,
HalfCheetah-v5 (:data:`~rewardgen.train.brax_config.OFFERED_ENV_IDS`), each following
gymnasium's ``step``, ``_get_obs``, ``is_healthy`` and ``reset_model``.

The env's reward is gymnasium's native one; a reward program replaces it in a batched wrapper
(:mod:`rewardgen.train.brax_reward`). ``state.info["native_reward"]`` keeps the native value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from mujoco import mjx

from rewardgen.errors import ConfigError
from rewardgen.tasks.spec import TaskSpec
from rewardgen.train.brax_config import refusal
from rewardgen.train.mjx_state import MjxStateView, mjx_state_view


@dataclass(frozen=True)
class GymOptions:
    """What gymnasium's env class does around ``mj_step``, read from one built env."""

    env_class: str  # Hopper | Walker2d | HalfCheetah
    frame_skip: int
    dt: float
    reset_noise_scale: float
    exclude_x: bool
    forward_reward_weight: float
    ctrl_cost_weight: float
    healthy_reward: float = 0.0
    terminate_when_unhealthy: bool = False
    healthy_z_range: tuple[float, float] = (-math.inf, math.inf)
    healthy_angle_range: tuple[float, float] = (-math.inf, math.inf)
    healthy_state_range: tuple[float, float] | None = None  # Hopper: over qpos[2:], qvel

    @property
    def velocity_clip(self) -> float | None:
        """Hopper and Walker2d clip observed velocities to [-10, 10]; HalfCheetah does not."""
        return None if self.env_class == "HalfCheetah" else 10.0

    @property
    def terminates(self) -> bool:
        return self.env_class != "HalfCheetah" and self.terminate_when_unhealthy


def gym_options(task: TaskSpec) -> tuple[Any, Any, GymOptions]:
    """``(MjModel, init qpos and qvel, options)`` of the task's own gymnasium env.

    Raises:
        ConfigError: the task is not offered on this backend (its one-line reason).
    """
    reason = refusal(task)
    if reason:
        raise ConfigError(reason)
    env = task.make_env()
    try:
        u: Any = env.unwrapped
        cls = task.env_id.split("-")[0]
        options = GymOptions(
            env_class=cls,
            frame_skip=int(u.frame_skip),
            dt=float(u.dt),
            reset_noise_scale=float(u._reset_noise_scale),
            exclude_x=bool(u._exclude_current_positions_from_observation),
            forward_reward_weight=float(u._forward_reward_weight),
            ctrl_cost_weight=float(u._ctrl_cost_weight),
            healthy_reward=float(getattr(u, "_healthy_reward", 0.0)),
            terminate_when_unhealthy=bool(getattr(u, "_terminate_when_unhealthy", False)),
            healthy_z_range=tuple(getattr(u, "_healthy_z_range", (-math.inf, math.inf))),  # type: ignore[arg-type]
            healthy_angle_range=tuple(
                getattr(
                    u,
                    "_healthy_angle_range",  # type: ignore[arg-type]
                    (-math.inf, math.inf),
                )
            ),
            healthy_state_range=(
                tuple(u._healthy_state_range)  # type: ignore[arg-type]
                if cls == "Hopper"
                else None
            ),
        )
        return u.model, (u.init_qpos.copy(), u.init_qvel.copy()), options
    finally:
        env.close()


class MjxTaskEnv(Env):  # type: ignore[misc]
    """One env of a task on MJX (Brax vmaps it); obs, native reward and termination as gymnasium.

    Args:
        task: an offered task (see :func:`~rewardgen.train.brax_config.refusal`).
    """

    def __init__(self, task: TaskSpec) -> None:
        model, (qpos0, qvel0), self.options = gym_options(task)
        self.task = task
        self.mj_model = model
        self.model = mjx.put_model(model)
        self._qpos0, self._qvel0 = jnp.asarray(qpos0), jnp.asarray(qvel0)
        self._nq, self._nv, self._nu = int(model.nq), int(model.nv), int(model.nu)
        self.state_view: MjxStateView = mjx_state_view(
            task.state,
            model,
            self.options.dt,
            title=f"The {task.name} task ({task.env_id}) at one time step.",
        )

    # ------------------------------------------------------------ brax Env interface
    @property
    def observation_size(self) -> int:
        return self._nq - int(self.options.exclude_x) + self._nv

    @property
    def action_size(self) -> int:
        return self._nu

    @property
    def backend(self) -> str:
        return "mjx"

    def reset(self, rng: jax.Array) -> State:
        """Gymnasium's ``reset_model``: uniform noise on qpos, uniform (HalfCheetah: normal) on
        qvel, then ``mj_forward``."""
        scale = self.options.reset_noise_scale
        k_pos, k_vel = jax.random.split(rng)
        qpos = self._qpos0 + jax.random.uniform(k_pos, (self._nq,), minval=-scale, maxval=scale)
        if self.options.env_class == "HalfCheetah":
            qvel = self._qvel0 + scale * jax.random.normal(k_vel, (self._nv,))
        else:
            qvel = self._qvel0 + jax.random.uniform(k_vel, (self._nv,), minval=-scale, maxval=scale)
        data = mjx.make_data(self.model).replace(qpos=qpos, qvel=qvel)
        data = mjx.forward(self.model, data)
        zero = jnp.zeros(())
        return State(
            pipeline_state=data,
            obs=self.observation(data),
            reward=zero,
            done=zero,
            metrics={},
            info={"native_reward": zero},
        )

    def step(self, state: State, action: jax.Array) -> State:
        """Gymnasium's ``step``: ctrl = action, ``frame_skip`` physics steps, reward, done."""
        data0 = state.pipeline_state
        data = self.physics(data0, action)
        native = self.native_reward(data0, data, action)
        done = jnp.where(self.options.terminates & ~self.is_healthy(data), 1.0, 0.0)
        return state.replace(
            pipeline_state=data,
            obs=self.observation(data),
            reward=native,
            done=done,
            info={**state.info, "native_reward": native},
        )

    # ------------------------------------------------------------ gymnasium's pieces
    def physics(self, data: Any, action: jax.Array) -> Any:
        data = data.replace(ctrl=action)

        def substep(d: Any, _: Any) -> tuple[Any, None]:
            return mjx.step(self.model, d), None

        data, _ = jax.lax.scan(substep, data, None, length=self.options.frame_skip)
        return data

    def observation(self, data: Any) -> jax.Array:
        qpos = data.qpos[1:] if self.options.exclude_x else data.qpos
        clip = self.options.velocity_clip
        qvel = data.qvel if clip is None else jnp.clip(data.qvel, -clip, clip)
        return jnp.concatenate([qpos, qvel]).astype(jnp.float32)

    def is_healthy(self, data: Any) -> jax.Array:
        o = self.options
        z, angle = data.qpos[1], data.qpos[2]
        healthy = (
            (o.healthy_z_range[0] < z)
            & (z < o.healthy_z_range[1])
            & (o.healthy_angle_range[0] < angle)
            & (angle < o.healthy_angle_range[1])
        )
        if o.healthy_state_range is not None:
            lo, hi = o.healthy_state_range
            rest = jnp.concatenate([data.qpos[2:], data.qvel])
            healthy = healthy & jnp.all((lo < rest) & (rest < hi))
        return healthy

    def native_reward(self, before: Any, after: Any, action: jax.Array) -> jax.Array:
        o = self.options
        x_velocity = (after.qpos[0] - before.qpos[0]) / o.dt
        reward = o.forward_reward_weight * x_velocity - o.ctrl_cost_weight * jnp.sum(action**2)
        if o.env_class != "HalfCheetah":
            reward = reward + o.healthy_reward * self.is_healthy(after)
        return reward.astype(jnp.float32)


__all__ = ["GymOptions", "MjxTaskEnv", "gym_options"]
