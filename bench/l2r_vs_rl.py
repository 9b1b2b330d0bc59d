"""One L2R candidate (an MPC episode) against one RL candidate at the default budget: wall time.

Both run as a generation of one candidate through the local executor with the default sandbox
(bubblewrap), so both pay the same worker start-up and trusted measurement: the L2R candidate
is ``method=l2r``'s default (a 200-step MPC episode planned in the sandbox, then the trusted
replay with its video); the RL candidate is ``method=eureka``'s default PPO training with the
trusted evaluator. The RL candidate is *not* run at its default budget (100k steps, ten
evaluations): it is run at two reduced budgets with one evaluation each, and its time at the
default is extrapolated linearly (fixed cost + per-step cost x 100k + ten evaluations at the
measured evaluation time). The last line is the headline, RL time over L2R time::

    rl_over_l2r_candidate_time: <value>

Run: ``python bench/l2r_vs_rl.py [--task hopper] [--budgets 2048 6144]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import timed_generation  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from rewardgen.config import as_sandbox_config, register_configs  # noqa: E402
from rewardgen.executors.local import LocalExecutor  # noqa: E402
from rewardgen.jobs import candidate_job  # noqa: E402
from rewardgen.llm.offline import render_program  # noqa: E402
from rewardgen.resources import resource_dir  # noqa: E402
from rewardgen.tasks.spec import load_task  # noqa: E402


def config(*overrides: str):  # type: ignore[no-untyped-def]
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--budgets", type=int, nargs=2, default=[2048, 6144])
    args = parser.parse_args(argv)
    task = load_task(args.task)
    source = render_program({name: 1.0 for name in task.seed_terms}, task.seed_terms)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        l2r = config(f"task={args.task}", "method=l2r")
        executor = LocalExecutor(l2r.executor, as_sandbox_config(l2r.sandbox), l2r.rl, "cpu")
        job = candidate_job(l2r, str(Path(tmp) / "l2r"), source)
        l2r_s = timed_generation("l2r_vs_rl", executor, [job])
        steps = json.loads((Path(tmp) / "l2r" / "result.json").read_text())["env_steps"]
        default = config(f"task={args.task}")
        full = int(default.train.timesteps)
        evals = max(1, full // int(default.train.eval_freq))
        walls, eval_s = [], 0.0
        for budget in args.budgets:
            cfg = config(f"task={args.task}", f"train.timesteps={budget}",
                         f"train.eval_freq={budget}")
            out = Path(tmp) / f"rl{budget}"
            walls.append(timed_generation("l2r_vs_rl", executor,
                                          [candidate_job(cfg, str(out), source)]))
            eval_s = json.loads((out / "evaluation" / "result.json").read_text())["wall_time_s"]
    (b1, b2), (t1, t2) = args.budgets, walls
    per_step = (t2 - t1) / (b2 - b1)
    fixed = t1 - per_step * b1 - eval_s
    rl_s = fixed + per_step * full + evals * eval_s
    print(f"{args.task}, 1 candidate through the local executor (bwrap), load average before "
          f"{load:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"L2R candidate: {steps}-step MPC episode + trusted replay and video: {l2r_s:.1f} s")
    for budget, wall in zip(args.budgets, walls, strict=True):
        print(f"RL candidate at {budget} PPO steps (1 evaluation): {wall:.1f} s")
    print(f"RL candidate at the default {full} steps ({evals} evaluations), extrapolated: "
          f"{rl_s:.0f} s (fixed {fixed:.1f} s + {per_step * 1000:.2f} s per 1000 steps + "
          f"{evals} x {eval_s:.1f} s evaluation)")
    ratio = rl_s / l2r_s
    print(f"rl_over_l2r_candidate_time: {ratio:.1f}")
    return ratio


if __name__ == "__main__":
    main()
