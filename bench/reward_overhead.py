"""Reward overhead: env steps/s with a generated reward program over steps/s of the native env.

The wrapped env is what every candidate trains on: ``RewardProgramWrapper`` building the State
view each step, calling an Eureka-style ``compute_reward`` (loaded through the same checked,
restricted loader as generated code), validating its output and tracking the trusted fitness.
The native env is ``task.make_env()`` alone. Both replay the same fixed random actions from the
same seed (identical trajectories and resets), interleaved, and the median of the repeats is
reported. The last line is the headline::

    reward_overhead_ratio_min: <value>

Run: ``python bench/reward_overhead.py [--steps 2000] [--repeats 9] [--tasks half_cheetah humanoid]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from common import interleaved_rates, median, spread  # noqa: E402

from rewardgen.rewards.wrappers import RewardProgramWrapper  # noqa: E402
from rewardgen.sandbox.program import load_program  # noqa: E402
from rewardgen.tasks.spec import load_task  # noqa: E402

log = logging.getLogger(__name__)

# Typical first-generation Eureka answers: forward velocity, a control cost with
# np.sum(np.square(action)), an upright/height term, all returned as named components.
REWARDS = {
    "half_cheetah": """
import numpy as np

def compute_reward(state, action, prev_state):
    forward_reward = state.x_velocity
    ctrl_cost = 0.1 * np.sum(np.square(action))
    upright_temperature = 2.0
    upright_reward = 0.5 * np.exp(-upright_temperature * abs(state.torso_angle))
    height_reward = 0.2 * (state.torso_height - 0.5)
    total = forward_reward - ctrl_cost + upright_reward + height_reward
    return float(total), {
        "forward_reward": float(forward_reward),
        "ctrl_cost": float(-ctrl_cost),
        "upright_reward": float(upright_reward),
        "height_reward": float(height_reward),
    }
""",
    "humanoid": """
import numpy as np

def compute_reward(state, action, prev_state):
    forward_velocity = (state.x_position - prev_state.x_position) / state.dt
    forward_reward = 1.25 * forward_velocity
    ctrl_cost = 0.1 * np.sum(np.square(action))
    upright_reward = 1.0 * state.upright
    height_reward = 2.0 if 1.0 < state.torso_height < 2.0 else 0.0
    total = forward_reward - ctrl_cost + upright_reward + height_reward
    return float(total), {
        "forward_reward": float(forward_reward),
        "ctrl_cost": float(-ctrl_cost),
        "upright_reward": float(upright_reward),
        "height_reward": float(height_reward),
    }
""",
}


def _runner(env: gym.Env, actions: np.ndarray, seed: int) -> Callable[[], int]:
    """A function that replays ``actions`` from a fresh reset, resetting at episode ends."""

    def run() -> int:
        env.reset(seed=seed)
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return len(actions)

    return run


def measure(task_name: str, steps: int, repeats: int, seed: int = 0) -> dict[str, float]:
    """Median steps/s of the native and the reward-wrapped env of one task."""
    task = load_task(task_name)
    program = load_program(REWARDS[task_name])
    native = task.make_env()
    wrapped = RewardProgramWrapper(task.make_env(), task, program.fn)
    rng = np.random.default_rng(seed)
    space = native.action_space
    actions = rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(space.dtype)  # type: ignore[attr-defined]
    rates = interleaved_rates(
        {"native": _runner(native, actions, seed), "wrapped": _runner(wrapped, actions, seed)},
        repeats=repeats,
    )
    ratios = [w / n for w, n in zip(rates["wrapped"], rates["native"], strict=True)]
    reward_us = _reward_fn_us(wrapped, program.fn, actions[0])
    native.close()
    wrapped.close()
    native_rate, wrapped_rate = median(rates["native"]), median(rates["wrapped"])
    return {
        "native": native_rate,
        "wrapped": wrapped_rate,
        "ratio": median(ratios),
        "spread": spread(ratios),
        "overhead_us": 1e6 / wrapped_rate - 1e6 / native_rate,
        "reward_fn_us": reward_us,
    }


def _reward_fn_us(
    env: RewardProgramWrapper, fn: Callable[..., object], action: np.ndarray
) -> float:
    """CPU microseconds of one ``compute_reward`` call alone (the part no wrapper can remove)."""
    env.reset(seed=0)
    env.step(action)
    state, calls = env.current_state(), 20_000
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            fn(state, action, state)
        best = min(best, (time.process_time() - start) / calls * 1e6)
    return best


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["half_cheetah", "humanoid"])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per repeat")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    rows = {name: measure(name, args.steps, args.repeats) for name in args.tasks}
    print(
        f"{'task':<16}{'native steps/s':>16}{'wrapped steps/s':>17}{'ratio':>8}{'±':>7}"
        f"{'overhead us/step':>18}{'of which reward_fn us':>23}"
    )
    for name, row in rows.items():
        print(
            f"{name:<16}{row['native']:>16.0f}{row['wrapped']:>17.0f}"
            f"{row['ratio']:>8.3f}{row['spread']:>7.3f}"
            f"{row['overhead_us']:>18.1f}{row['reward_fn_us']:>23.1f}"
        )
    worst = min(row["ratio"] for row in rows.values())
    print(f"reward_overhead_ratio_min: {worst:.3f}")
    return worst


if __name__ == "__main__":
    main()
