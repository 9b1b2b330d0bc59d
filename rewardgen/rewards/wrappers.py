"""Gymnasium wrappers that apply a reward program and score episodes by the trusted fitness.

Stack (bottom to top): the task's env → ``Monitor`` (returns stay the env's own) →
:class:`RewardProgramWrapper`. The wrapper overrides ``step`` (a ``RewardWrapper`` would only see
the scalar) and puts everything it knows into ``info["rewardgen"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.contract import (
    CALL_BUDGET_GRACE_S,
    MAX_REWARD_MAGNITUDE,
    exception_message,
)
from rewardgen.sandbox.program import check_reward_output
from rewardgen.tasks.spec import TaskSpec

RewardFn = Callable[[Any, np.ndarray, Any], Any]
INFO_KEY = "rewardgen"


def _checked(out: Any) -> tuple[float, dict[str, float]]:
    """``check_reward_output`` with a fast path for the common case, called every env step.

    A tuple of a finite float (within ``MAX_REWARD_MAGNITUDE``) and a dict of str -> finite float
    is accepted here in one pass (``v - v == 0.0`` holds exactly for finite floats, the range
    check fails for NaN and inf); anything else goes to the full check,
    which converts what it can and raises with the precise reason.
    """
    if type(out) is tuple and len(out) == 2:
        total, components = out
        if (type(components) is dict and isinstance(total, float)
                and -MAX_REWARD_MAGNITUDE <= total <= MAX_REWARD_MAGNITUDE):
            clean = {}
            for key, value in components.items():
                if type(key) is not str or not isinstance(value, float) or value - value != 0.0:
                    break
                clean[key] = float(value)
            else:
                return float(total), clean
    return check_reward_output(out)


class RewardProgramWrapper(gym.Wrapper):
    """Replace the env's reward by ``reward_fn(state, action, prev_state)``.

    With ``reward_fn=None`` the native reward is kept (the human-designed baseline) while the State
    view and fitness are still tracked, so every candidate and baseline is scored the same way.

    ``info["rewardgen"]`` holds ``native_reward`` and ``components`` each step; at the end of an
    episode also ``episode``: ``fitness``, ``success``, ``return`` (of the reward used),
    ``native_return``, ``length`` and ``components`` (per-episode sums).

    Args:
        env: the task env, usually already wrapped in ``Monitor``.
        task: its TaskSpec (State view and fitness).
        reward_fn: the loaded reward program's function, or None for the native reward.
        check_output: validate every return value (finite float, dict of finite floats).
        call_budget_s: the most seconds a call of ``reward_fn`` may take on average; the running
            mean is checked every step once the calls took ``CALL_BUDGET_GRACE_S`` in all, and a
            slower program raises RewardCodeError naming its time per call (None: no budget).
    """

    def __init__(
        self,
        env: gym.Env,
        task: TaskSpec,
        reward_fn: RewardFn | None = None,
        check_output: bool = True,
        call_budget_s: float | None = None,
    ) -> None:
        super().__init__(env)
        self.call_budget_s = call_budget_s
        self._calls = 0
        self._call_time = 0.0
        self.task = task
        self.reward_fn = reward_fn
        self.check_output = check_output
        self._builder: Any = None
        self._build: Callable[[], Any] = _not_reset
        self._tracker = task.fitness_tracker(env)
        self._track = self._tracker.update
        self._prev: Any = None
        self._return = 0.0
        self._native_return = 0.0
        self._length = 0
        self._component_sums: dict[str, float] = {}

    @property
    def state_builder(self) -> Any:
        """The StateBuilder (None until the first reset, which needs a live simulator)."""
        return self._builder

    def current_state(self) -> Any:
        """The State view of the simulator right now (raises ResetNeeded before reset)."""
        return self._build()

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self._builder is None:
            self._builder = self.task.state_builder(self.env)
            self._build = self._builder.build
        self._prev = self._build()
        self._tracker.reset(self._prev)
        self._return = self._native_return = 0.0
        self._length = 0
        self._component_sums = {}
        return obs, info

    def _over_budget(self, seconds: float) -> None:
        """Add one call's time; raise once the running mean is above ``call_budget_s``."""
        self._calls += 1
        self._call_time += seconds
        budget = self.call_budget_s or 0.0
        if self._call_time > max(CALL_BUDGET_GRACE_S, budget * self._calls):
            per_call = self._call_time / self._calls
            raise RewardCodeError(
                f"the reward program took {per_call:.3g} s per call on average over "
                f"{self._calls} calls, above sandbox.call_budget_s={budget:g}: make it cheaper "
                "(no loops over large arrays, no repeated work per step)"
            )

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, native, terminated, truncated, info = self.env.step(action)
        state = self._build()
        native = float(native)
        reward_fn = self.reward_fn
        components: dict[str, float]
        if reward_fn is None:
            reward, components = native, {}
        else:
            start = time.perf_counter()
            try:
                out = reward_fn(state, action, self._prev)
            except RewardCodeError:
                raise
            except Exception as e:  # noqa: BLE001 - generated code may raise anything
                raise RewardCodeError(
                    f"compute_reward raised {type(e).__name__}: {exception_message(e)}") from e
            if self.call_budget_s is not None:
                self._over_budget(time.perf_counter() - start)
            if self.check_output:
                reward, components = _checked(out)
            else:
                reward, components = float(out[0]), out[1]
            sums = self._component_sums
            for key, value in components.items():
                sums[key] = sums.get(key, 0.0) + value
        self._track(state, info)
        self._return += reward
        self._native_return += native
        self._length += 1
        self._prev = state
        extra: dict[str, Any] = {"native_reward": native, "components": components}
        if terminated or truncated:
            fitness = self._tracker.value
            extra["episode"] = {
                "fitness": fitness,
                "success": self.task.is_success(fitness),
                "return": self._return,
                "native_return": self._native_return,
                "length": self._length,
                "components": dict(self._component_sums),
            }
        info[INFO_KEY] = extra
        return obs, reward, terminated, truncated, info


def _not_reset() -> Any:
    raise gym.error.ResetNeeded("call reset() before step() on a RewardProgramWrapper")
