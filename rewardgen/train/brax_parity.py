"""Parity of a task between MJX and C MuJoCo: the same policy's native return in both.

For each seed, the MJX env is reset with that seed; the C-MuJoCo gymnasium env (the trusted
evaluator's) is reset and then set to the very same qpos and qvel, so only the simulators
differ. The same deterministic policy (the trusted rebuild, :mod:`.brax_policy`, and its jnp
twin here) acts in both for ``steps`` steps or until gymnasium's termination; the returns are
compared. MJX runs in float32, C MuJoCo in float64, and contact-rich gaits diverge over time, so
the check is on returns, over short horizons, with the tolerance :data:`TOLERANCE` (relative to
``max(1, |C return|)``, per seed). A task beyond it is not offered (docs/gpu.md holds the table).

``python -m rewardgen.train.brax_parity hopper`` prints the check for one task.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.brax_policy import BraxPolicyNet

TOLERANCE = 0.05  # per-seed |R_mjx - R_c| / max(1, |R_c|)
DEFAULT_SEEDS = (0, 1, 2, 3)
DEFAULT_STEPS = 100


@dataclass(frozen=True)
class Parity:
    """The per-seed returns in both simulators, and the seconds the MJX side took."""

    task: str
    seeds: tuple[int, ...]
    steps: int
    mjx_returns: tuple[float, ...]
    c_returns: tuple[float, ...]
    compile_s: float

    @property
    def gaps(self) -> tuple[float, ...]:
        return tuple(
            abs(m - c) / max(1.0, abs(c))
            for m, c in zip(self.mjx_returns, self.c_returns, strict=True)
        )

    @property
    def ok(self) -> bool:
        return max(self.gaps) <= TOLERANCE

    def line(self) -> str:
        return (
            f"{self.task}: {len(self.seeds)} seeds x {self.steps} steps, largest relative "
            f"return gap {max(self.gaps):.4f} (tolerance {TOLERANCE}) -> "
            f"{'ok' if self.ok else 'OUTSIDE'}; MJX compile+run {self.compile_s:.1f} s"
        )


def fixed_policy(
    task: TaskSpec, seed: int = 0, hidden: tuple[int, ...] = (32, 32)
) -> BraxPolicyNet:
    """A deterministic, non-trivial policy: Brax's layout with seeded random weights."""
    import torch

    env = task.make_env()
    try:
        obs, act = int(env.observation_space.shape[0]), int(env.action_space.shape[0])  # type: ignore[index]
    finally:
        env.close()
    torch.manual_seed(seed)
    net = BraxPolicyNet(obs, act, hidden)
    with torch.no_grad():
        net.normalizer.std.fill_(2.0)
    return net.eval()


def _jnp_policy(net: BraxPolicyNet) -> Any:
    import jax.numpy as jnp

    tensors = {k: jnp.asarray(v.detach().numpy()) for k, v in net.state_dict().items()}
    names, act = net.layer_names, net.action_size

    def act_fn(obs: Any) -> Any:
        x = (obs - tensors["normalizer.mean"]) / tensors["normalizer.std"]
        for i, name in enumerate(names):
            x = x @ tensors[f"{name}.weight"].T + tensors[f"{name}.bias"]
            if i < len(names) - 1:
                x = x * (1.0 / (1.0 + jnp.exp(-x)))  # swish
        return jnp.tanh(x[:act])

    return act_fn


def mjx_rollouts(
    task: TaskSpec, net: BraxPolicyNet, seeds: tuple[int, ...], steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(returns, initial qpos, initial qvel, seconds) of the policy on MJX, one env per seed."""
    import jax
    import jax.numpy as jnp

    from rewardgen.train.mjx_env import MjxTaskEnv

    env = MjxTaskEnv(task)
    act_fn = _jnp_policy(net)

    def rollout(key: Any) -> Any:
        state = env.reset(key)

        def body(carry: Any, _: Any) -> Any:
            s, total, alive = carry
            s = env.step(s, act_fn(s.obs))
            total = total + alive * s.reward
            return (s, total, alive * (1.0 - s.done)), None

        (_, total, _), _ = jax.lax.scan(
            body, (state, jnp.zeros(()), jnp.ones(())), None, length=steps
        )
        return total, state.pipeline_state.qpos, state.pipeline_state.qvel

    t0 = time.monotonic()
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    totals, qpos, qvel = jax.jit(jax.vmap(rollout))(keys)
    totals.block_until_ready()
    return np.asarray(totals), np.asarray(qpos), np.asarray(qvel), time.monotonic() - t0


def c_return(
    task: TaskSpec, net: BraxPolicyNet, qpos: np.ndarray, qvel: np.ndarray, steps: int
) -> float:
    """The policy's native return in C MuJoCo (the evaluator's env) from (qpos, qvel)."""
    import torch

    env = task.make_env(max_episode_steps=steps)
    try:
        env.reset(seed=0)
        env.unwrapped.set_state(np.asarray(qpos, np.float64), np.asarray(qvel, np.float64))  # type: ignore[attr-defined]
        obs = env.unwrapped._get_obs()  # type: ignore[attr-defined]
        total = 0.0
        for _ in range(steps):
            with torch.no_grad():
                action = net(torch.as_tensor(np.asarray(obs, np.float32))).numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return total
    finally:
        env.close()


def check_parity(
    task: TaskSpec,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    steps: int = DEFAULT_STEPS,
    net: BraxPolicyNet | None = None,
) -> Parity:
    """The same policy's native return in MJX and in C MuJoCo over ``seeds``."""
    net = net or fixed_policy(task)
    totals, qpos, qvel, seconds = mjx_rollouts(task, net, seeds, steps)
    c = tuple(c_return(task, net, qpos[i], qvel[i], steps) for i in range(len(seeds)))
    return Parity(task.name, tuple(seeds), steps, tuple(float(t) for t in totals), c, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seeds", type=int, default=len(DEFAULT_SEEDS))
    args = parser.parse_args(argv)
    result = check_parity(load_task(args.task), tuple(range(args.seeds)), args.steps)
    print(result.line())
    for seed, m, c in zip(result.seeds, result.mjx_returns, result.c_returns, strict=True):
        print(f"  seed {seed}: MJX {m:.4f}  C {c:.4f}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
