"""What a run will spend, said before it spends it: env steps of the search and the final phase.

A bare ``rewardgen`` trains 5 generations x 16 candidates x 100,000 steps and then retrains the
best reward and two baselines on 5 fresh seeds x 300,000 steps: 12.5 million env steps, hours on a
laptop. :func:`run_budget` computes it from the config (the same numbers the job builder uses)
and :func:`budget_lines` says it in the first lines of the run.

An on-policy learner (PPO, A2C) collects whole rollouts of ``n_steps * n_envs`` steps, so it
stops at the first multiple of the rollout at or above its budget: ``train.timesteps=3000`` with
a 64-step rollout trains 3,008 steps. The budget counts those rounded-up steps and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

ON_POLICY = ("ppo", "a2c")  # SB3 learners that train in whole rollouts


@dataclass
class RunBudget:
    """The env steps a run will train (upper bounds where a schedule may stop candidates early)."""

    generations: int
    samples: int
    per_candidate: int  # rounded up to the rollout
    search_steps: int
    final_rewards: int = 0
    final_seeds: int = 0
    per_final: int = 0
    final_steps: int = 0
    mpc: bool = False  # L2R: MPC control steps, no RL
    at_most: bool = False  # loop.schedule or screening may stop or skip candidates
    rounded: list[str] = field(default_factory=list)  # "train.timesteps=3000 -> 3,008 (...)"

    @property
    def total_steps(self) -> int:
        return self.search_steps + self.final_steps


def rollout_size(cfg: DictConfig, task_name: str) -> int | None:
    """``n_steps * n_envs`` for an on-policy learner, else None (it stops at its budget)."""
    from rewardgen.train.sb3 import hyperparams_for

    rl: dict[str, Any] = OmegaConf.to_container(cfg.rl, resolve=True)  # type: ignore[assignment]
    if str(rl.get("algo", "ppo")).lower() not in ON_POLICY:
        return None
    n_steps = int(hyperparams_for(rl, task_name).get("n_steps", 2048))  # SB3's PPO default
    return n_steps * int(rl.get("n_envs", 4))


def rounded_up(steps: int, rollout: int | None) -> int:
    """``steps`` rounded up to whole rollouts (what SB3's ``learn`` really trains).

    Example:
        >>> rounded_up(3000, 64), rounded_up(3008, 64), rounded_up(3000, None)
        (3008, 3008, 3000)
    """
    if rollout is None or rollout <= 0:
        return steps
    return math.ceil(steps / rollout) * rollout


def run_budget(cfg: DictConfig, task: Any, mpc_episode_steps: int | None = None) -> RunBudget:
    """The run's env steps from its config: ``loop.generations x loop.samples x train.timesteps``
    and, with ``final.enabled``, ``(1 + baselines) x final seeds x final.timesteps``.

    Args:
        cfg: the composed ``rewardgen`` config.
        task: its task spec (the sparse baseline needs ``sparse_reward``; the rollout size may
            be per task).
        mpc_episode_steps: for a method whose candidates are MPC episodes (L2R), the control
            steps of one episode (the job builder's budget for it); None for RL.
    """
    mpc = mpc_episode_steps is not None
    rollout = None if mpc else rollout_size(cfg, str(task.name))
    rounded: list[str] = []

    def steps(key: str, value: int) -> int:
        if mpc_episode_steps is not None:
            return int(mpc_episode_steps)
        out = rounded_up(value, rollout)
        if out != value:
            rounded.append(
                f"{key}={value:,} is rounded up to {out:,} (whole rollouts of "
                f"n_steps * n_envs = {rollout:,} steps)"
            )
        return out

    generations, samples = int(cfg.loop.generations), int(cfg.loop.samples)
    per = steps("train.timesteps", int(cfg.train.timesteps))
    budget = RunBudget(
        generations=generations,
        samples=samples,
        per_candidate=per,
        search_steps=generations * samples * per,
        mpc=mpc,
        rounded=rounded,
        at_most=str(cfg.loop.get("schedule", "full")) != "full"
        or str(cfg.loop.get("screening", "none")) != "none",
    )
    if cfg.final.enabled:
        baselines = (
            []
            if mpc
            else [
                b
                for b in cfg.final.baselines
                if b == "native" or (b == "sparse" and task.sparse_reward)
            ]
        )
        budget.final_rewards = 1 + len(baselines)
        seeds = cfg.final.get("seeds")  # as search.final.final_seeds counts them
        budget.final_seeds = len(seeds) if seeds is not None else int(cfg.final.n_seeds)
        budget.per_final = steps("final.timesteps", int(cfg.final.timesteps))
        budget.final_steps = budget.final_rewards * budget.final_seeds * budget.per_final
    return budget


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def budget_lines(budget: RunBudget) -> list[str]:
    """What the run will train, in plain text (one line each for the search, the final phase
    and any rounding)."""
    unit = "MPC control steps" if budget.mpc else "env steps"
    most = "at most " if budget.at_most else ""
    lines = [
        f"budget: search {_n(budget.generations, 'generation')} x "
        f"{_n(budget.samples, 'candidate')} x {budget.per_candidate:,} = "
        f"{most}{budget.search_steps:,} {unit}"
    ]
    if budget.final_steps:
        lines[0] += (
            f"; final {_n(budget.final_rewards, 'reward')} x "
            f"{_n(budget.final_seeds, 'seed')} x {budget.per_final:,} = "
            f"{budget.final_steps:,}; total {most}{budget.total_steps:,}"
        )
    lines += [f"budget: {note}" for note in budget.rounded]
    return lines
