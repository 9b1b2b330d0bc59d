"""Training throughput: SB3 PPO env steps/s on rewardgen's stack over plain SB3 on the native env.

rewardgen's stack is what a candidate's worker trains: ``make_vec_env`` (task env -> Monitor ->
RewardProgramWrapper with an Eureka-style reward program and the trusted fitness tracker) and
the worker's callbacks (episode statistics, the fitness-evaluation callback with evaluation
off, since evaluation episodes are extra work that generation_breakdown.py accounts for, and the
progress file). Plain SB3 is ``stable_baselines3.common.env_util.make_vec_env`` over the task's
native env with no callback. Both models are built by ``build_model`` from the same job, so the
hyperparameters (the task's rl-zoo3 values, ``n_steps`` cut to fit the budget) are identical;
each repeat continues learning for the same number of steps, the two variants interleaved, with
torch on one thread. The last line is the headline::

    training_throughput_ratio: <value>

Run: ``python bench/training_throughput.py [--task hopper] [--steps 1024] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import interleaved_rates, median, spread  # noqa: E402
from stable_baselines3.common.base_class import BaseAlgorithm  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env  # noqa: E402

from rewardgen.runs.records import CandidateJob  # noqa: E402
from rewardgen.tasks.spec import load_task  # noqa: E402
from rewardgen.train.callbacks import (  # noqa: E402
    CheckpointCallback,
    EpisodeStatsCallback,
    ProgressFileCallback,
)
from rewardgen.train.sb3 import build_model, make_vec_env  # noqa: E402

log = logging.getLogger(__name__)

REWARD = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward_reward = state.x_velocity
    ctrl_cost = 0.001 * np.sum(np.square(action))
    healthy = 1.0 if state.torso_height > 0.7 else 0.0
    total = forward_reward - ctrl_cost + healthy
    return float(total), {"forward": float(forward_reward), "ctrl": float(-ctrl_cost),
                          "healthy": healthy}
"""


def _rl_config(task: str, n_steps: int) -> dict[str, object]:
    """The composed ``rl`` config (conf/rl/ppo.yaml), with the rollout cut to ``n_steps``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rewardgen.config import register_configs
    from rewardgen.resources import resource_dir

    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=[f"task={task}", "rl.n_envs=1",
                                           f"++rl.hyperparams.n_steps={n_steps}"])
    return OmegaConf.to_container(cfg.rl, resolve=True)  # type: ignore[return-value]


def _learner(model: BaseAlgorithm, steps: int,
             callbacks: Callable[[], list[BaseCallback]]) -> Callable[[], int]:
    def run() -> int:
        model.learn(steps, callback=callbacks(), reset_num_timesteps=False)
        return steps

    return run


def measure(task_name: str, steps: int, repeats: int, tmp: Path) -> dict[str, float]:
    """Median steps/s of both variants and the median of the per-repeat ratios."""
    task = load_task(task_name)
    job = CandidateJob(task=task.name, out_dir=str(tmp), reward_source=REWARD, seed=0,
                       device="cpu", timesteps=steps, eval_freq=0, eval_episodes=1,
                       rl=_rl_config(task.name, steps), tensorboard=False)
    ours = build_model(job, make_vec_env(task, job, n_envs=1, seed=0), None)
    plain = build_model(job, sb3_make_vec_env(task.make_env, n_envs=1, seed=0), None)
    def our_callbacks() -> list[BaseCallback]:
        stats = EpisodeStatsCallback()
        return [stats, CheckpointCallback(tmp / "checkpoints", 0, stats),
                ProgressFileCallback(tmp / "progress.json", steps)]

    rates = interleaved_rates(
        {"plain": _learner(plain, steps, list), "rewardgen": _learner(ours, steps, our_callbacks)},
        repeats=repeats,
    )
    ratios = [o / p for o, p in zip(rates["rewardgen"], rates["plain"], strict=True)]
    return {"plain": median(rates["plain"]), "rewardgen": median(rates["rewardgen"]),
            "ratio": median(ratios), "spread": spread(ratios)}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["hopper"])
    parser.add_argument("--steps", type=int, default=1024, help="env steps per repeat (rollout)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {t: measure(t, args.steps, args.repeats, Path(tmp)) for t in args.tasks}
    print(f"PPO, n_envs=1, {args.steps} steps x {args.repeats} repeats per variant, interleaved, "
          f"torch threads=1")
    print(f"{'task':<14}{'plain SB3 steps/s':>19}{'rewardgen steps/s':>19}{'ratio':>8}{'±':>7}")
    for name, row in rows.items():
        print(f"{name:<14}{row['plain']:>19.0f}{row['rewardgen']:>19.0f}{row['ratio']:>8.3f}"
              f"{row['spread']:>7.3f}")
    worst = min(row["ratio"] for row in rows.values())
    print(f"training_throughput_ratio: {worst:.3f}")
    return worst


if __name__ == "__main__":
    main()
