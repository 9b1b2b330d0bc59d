"""The price of trusted measurement: a generation's wall time, sandbox + separate evaluator vs inline.

The same K candidates (one reward program, hopper, ``--timesteps`` env steps each, default the
issue's 100k) run as one generation through ``LocalExecutor.run`` twice:

- **inline** (the old path, reconstructed): one unsandboxed worker per candidate that trains and
  then evaluates the checkpoints in the same process (``inline_candidate`` below: the same
  training and evaluation code, ``sandbox.backend=process``);
- **trusted** (the path every run takes now): training in the bubblewrap sandbox, then the
  trusted evaluator in a second process that never loads reward code.

ratio = T_inline / T_trusted, 1.0 meaning no cost; the target is >= 0.95. The order alternates
between repeats; the load average is printed with the numbers. The last line is the headline::

    trusted_measurement_ratio: <value>

Run: ``python bench/trusted_overhead.py [--timesteps 100000] [--candidates 2] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import dataclasses
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
from rewardgen.runs.records import CandidateJob, CandidateResult  # noqa: E402

log = logging.getLogger(__name__)

REWARD = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward = (state.x_position - prev_state.x_position) / state.dt
    healthy = 1.0 if state.torso_height > 0.8 else 0.0
    ctrl = -0.001 * float(np.sum(np.square(action)))
    return forward + healthy + ctrl, {"forward": forward, "healthy": healthy, "ctrl": ctrl}
"""


def inline_candidate(job: CandidateJob) -> CandidateResult:
    """Worker target of the old path: train, then evaluate in this same process."""
    from rewardgen.worker.evaluate import evaluate_candidate
    from rewardgen.worker.train import run_candidate

    reported = run_candidate(job)
    if not reported.ok:
        return reported
    measured = evaluate_candidate(dataclasses.replace(
        job, reward_source=None, checkpoint_dir=str(Path(job.out_dir) / "checkpoints")))
    return dataclasses.replace(reported, fitness=measured.fitness,
                               evaluations=measured.evaluations)


def generation(candidates: int, timesteps: int, backend: str, root: Path) -> tuple[object, list[CandidateJob]]:
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=[
            "task=hopper", "device=cpu", f"train.timesteps={timesteps}",
            f"train.eval_freq={max(1, timesteps // 10)}", "train.eval_episodes=5",
            "sandbox.timeout_s=3600", f"sandbox.backend={backend}",
        ])
    jobs = [candidate_job(cfg, str(root / f"cand_{i:02d}"), REWARD, seed=i)
            for i in range(candidates)]
    return cfg, jobs


def timed(cfg: object, jobs: list[CandidateJob], target: str | None) -> float:
    kwargs = {"target": target} if target else {}
    executor = LocalExecutor(ExecutorConfig(workers=len(jobs)), cfg.sandbox, cfg.rl, "cpu", **kwargs)  # type: ignore[attr-defined]
    return timed_generation("trusted_overhead", executor, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=cores())
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    load_before = os.getloadavg()
    inline, trusted = [], []
    with tempfile.TemporaryDirectory(prefix="rewardgen-bench-", dir=Path.cwd()) as tmp:
        for r in range(args.repeats):
            order = [("inline", inline), ("trusted", trusted)]
            for name, times in order if r % 2 == 0 else order[::-1]:
                backend = "process" if name == "inline" else "bwrap"
                cfg, jobs = generation(args.candidates, args.timesteps, backend,
                                       Path(tmp) / f"r{r}_{name}")
                target = "trusted_overhead:inline_candidate" if name == "inline" else None
                times.append(timed(cfg, jobs, target))
    load_after = os.getloadavg()
    t_inline, t_trusted = statistics.median(inline), statistics.median(trusted)
    print(f"{args.candidates} hopper candidates in parallel, {args.timesteps} env steps each, "
          f"evaluation every {max(1, args.timesteps // 10)} steps x 5 episodes, "
          f"{args.repeats} repeat(s); {cores()} cores")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'path':<10}{'wall s (median)':>17}{'per repeat':>24}")
    print(f"{'inline':<10}{t_inline:>17.1f}{' '.join(f'{t:.1f}' for t in inline):>24}")
    print(f"{'trusted':<10}{t_trusted:>17.1f}{' '.join(f'{t:.1f}' for t in trusted):>24}")
    print(f"trusted_measurement_ratio: {t_inline / t_trusted:.3f}")


if __name__ == "__main__":
    main()
