"""Parallel scaling: wall time of one generation with 1 worker vs N workers on the same candidates.

One generation is K real candidates (a reward program, PPO on the task, the trusted-fitness
evaluation), each in its own isolated worker, run through ``LocalExecutor.run`` exactly as the
loop runs them. The same K jobs are timed with ``executor.workers=1`` (T1) and with
``executor.workers=N`` (TN), alternating within each repeat; the median of each is reported and
efficiency = T1 / (N * TN), 1.0 being perfect scaling. Wall time, not CPU time, is the point
here, so other processes on the machine lower the number: the load average is printed with it.
The last line is the headline::

    parallel_efficiency: <value>

Run: ``python bench/parallel_scaling.py [--workers N] [--candidates K] [--timesteps 4096]``
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import timed_generation  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from rewardgen.config import ExecutorConfig, register_configs  # noqa: E402
from rewardgen.executors.local import LocalExecutor, cores  # noqa: E402
from rewardgen.jobs import candidate_job  # noqa: E402
from rewardgen.resources import resource_dir  # noqa: E402
from rewardgen.runs.records import CandidateJob  # noqa: E402

log = logging.getLogger(__name__)

# A typical first-generation answer for the pole: stay alive, upright and centred.
REWARD = """
import numpy as np

def compute_reward(state, action, prev_state):
    alive = 1.0 if abs(state.pole_angle) <= 0.2 else 0.0
    upright = -abs(state.pole_angle)
    centered = -0.1 * abs(state.cart_position)
    ctrl_cost = -0.01 * float(np.sum(np.square(action)))
    total = alive + upright + centered + ctrl_cost
    return float(total), {"alive": alive, "upright": float(upright),
                          "centered": float(centered), "ctrl_cost": ctrl_cost}
"""


def generation(task: str, candidates: int, timesteps: int, root: Path) -> tuple[object, list[CandidateJob]]:
    """The config and the K jobs of one generation (fresh output folders under ``root``)."""
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"task={task}", "device=cpu", f"train.timesteps={timesteps}",
            f"train.eval_freq={timesteps // 2}", "train.eval_episodes=2",
            "train.max_episode_steps=200", "train.save_policy=true", "rl.n_envs=1",
            "++rl.hyperparams.n_steps=256", "++rl.hyperparams.batch_size=64",
            "++rl.hyperparams.n_epochs=2", "++rl.hyperparams.policy_kwargs={net_arch:[32,32]}",
            "sandbox.timeout_s=900", "sandbox.smoke_states=16",
        ])
    jobs = [candidate_job(cfg, str(root / f"cand_{i:02d}"), REWARD, seed=i) for i in range(candidates)]
    return cfg, jobs


def timed_run(cfg: object, jobs: list[CandidateJob], workers: int) -> float:
    executor = LocalExecutor(ExecutorConfig(workers=workers), cfg.sandbox, cfg.rl, "cpu")  # type: ignore[attr-defined]
    return timed_generation("parallel_scaling", executor, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=cores(), help="N (default: cores)")
    parser.add_argument("--candidates", type=int, default=None, help="K (default: 2 N)")
    parser.add_argument("--timesteps", type=int, default=4096, help="env steps per candidate")
    parser.add_argument("--task", default="inverted_pendulum")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    n = max(1, args.workers)
    k = args.candidates or 2 * n
    load_before = os.getloadavg()
    t1s, tns = [], []
    with tempfile.TemporaryDirectory(prefix="rewardgen-bench-") as tmp:
        for r in range(args.repeats):
            for workers, times in ((1, t1s), (n, tns)):
                cfg, jobs = generation(args.task, k, args.timesteps, Path(tmp) / f"r{r}_w{workers}")
                times.append(timed_run(cfg, jobs, workers))
    load_after = os.getloadavg()
    t1, tn = statistics.median(t1s), statistics.median(tns)
    efficiency = t1 / (n * tn)
    print(f"{k} candidates of {args.task}, {args.timesteps} env steps each, {args.repeats} repeat(s); "
          f"{cores()} cores")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'workers':>8} {'wall s (median)':>16} {'per repeat':>24}")
    print(f"{1:>8} {t1:>16.1f} {' '.join(f'{t:.1f}' for t in t1s):>24}")
    print(f"{n:>8} {tn:>16.1f} {' '.join(f'{t:.1f}' for t in tns):>24}")
    print(f"speed-up T1/TN = {t1 / tn:.2f} with N = {n}")
    print(f"parallel_efficiency: {efficiency:.3f}")


if __name__ == "__main__":
    main()
