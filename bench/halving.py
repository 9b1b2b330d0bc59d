"""``loop.schedule``: the RL env steps a schedule saves, and whether it keeps the same best.

Recorded runs (``loop.schedule=full``: every candidate trained its whole budget, its trusted curve
in result.json) are replayed under each schedule setting (``rewardgen.search.schedule_replay``:
the live pruner, fed the curves in the order a pool of W workers reaches them). Per setting:

- ``steps_saved``: share of the candidates' env steps the schedule would not have trained;
- ``same_best_rate``: share of generations whose best (``loop.selection`` over full curves)
  would still have been trained to the end and selected;
- ``mean_regret``: the fitness the selected best lost, as a share of the spread of its
  generation's scores (0 when the best is the same), averaged over generations.

Targets (issue 16): steps_saved >= 0.4 with same_best_rate >= 0.8. Without run directories the
script first makes them (``--tasks``, ``--seeds``; the budgets below, minutes per task on a
2-core CPU)::

    halving_steps_saved: <value>
    halving_same_best_rate: <value>

Run: ``python bench/halving.py [RUN_DIR ...] [--out DIR] [--tasks ...] [--seeds 0 1]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from rewardgen.search.schedule_replay import replay_run

TASKS = ("inverted_double_pendulum", "hopper", "reacher")
BUDGET = [  # small but with 5 evaluation points: rungs at 4k, 8k, 16k steps (factor 2)
    "llm=offline", "method=eureka", "loop.generations=3", "loop.samples=4",
    "train.timesteps=20000", "train.eval_freq=4000", "train.eval_episodes=3",
    "train.max_episode_steps=300", "rl.n_envs=4", "+rl.hyperparams={policy_kwargs:{net_arch:[64,64]}}",
    "final.enabled=false", "report.enabled=false", "executor.workers=1",
    "train.tensorboard=false", "sandbox.timeout_s=900",
]
SETTINGS = [  # (label, schedule, loop.pruner overrides)
    ("halving f=2", "halving", {"reduction_factor": 2}),
    ("halving f=2 from rung 1", "halving", {"reduction_factor": 2, "min_early_stopping_rate": 1}),
    ("halving f=3", "halving", {"reduction_factor": 3}),
    ("median (1 finished)", "median", {"startup_candidates": 1}),
    ("median (2 finished)", "median", {"startup_candidates": 2}),
]
HEADLINE = "halving f=2"  # the settings loop.pruner defaults to


def make_runs(out: Path, tasks: list[str], seeds: list[int]) -> list[Path]:
    """One full-schedule search per task and seed (skipped when its folder is complete)."""
    binary = Path(sys.executable).parent / "rewardgen"
    runs = []
    for task in tasks:
        for seed in seeds:
            run_dir = out / f"{task}_seed{seed}"
            if not (run_dir / "summary.json").is_file():
                print(f"training {run_dir.name} ...", flush=True)
                subprocess.run([str(binary), f"task={task}", f"seed={seed}", *BUDGET,
                                f"hydra.run.dir={run_dir}"], check=True, stdout=subprocess.DEVNULL)
            runs.append(run_dir)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="recorded run directories")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_halving"))
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--workers", nargs="*", type=int, default=[2, 4])
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    runs = args.runs or make_runs(args.out, args.tasks, args.seeds)
    print(f"{len(runs)} recorded runs: {', '.join(r.name for r in runs)}")
    print(f"{'setting':26s} {'workers':>7s} {'gens':>5s} {'steps_saved':>12s} "
          f"{'same_best_rate':>15s} {'mean_regret':>12s}")
    headline = None
    for label, schedule, params in SETTINGS:
        for workers in args.workers:
            replays = [replay_run(r, schedule, params, workers) for r in runs]
            gens = [g for rep in replays for g in rep["generations"]]
            full = sum(g["steps_full"] for g in gens)
            saved = 1 - sum(g["steps_schedule"] for g in gens) / full
            same = sum(g["same_best"] for g in gens) / len(gens)
            regret = sum(g["regret"] for g in gens) / len(gens)
            print(f"{label:26s} {workers:7d} {len(gens):5d} {saved:12.3f} {same:15.3f} "
                  f"{regret:12.3f}")
            if label == HEADLINE and workers == args.workers[0]:
                headline = (saved, same)
    for rep in [replay_run(r, "halving", SETTINGS[0][2], args.workers[0]) for r in runs]:
        print(f"  {Path(rep['run_dir']).name}: " + "; ".join(
            f"gen {g['generation']}: best {g['best_full']} -> {g['best_schedule']}, pruned "
            f"{sorted(g['pruned']) or 'none'}" for g in rep["generations"]))
    assert headline is not None
    print(f"halving_steps_saved: {headline[0]:.3f}")
    print(f"halving_same_best_rate: {headline[1]:.3f}")


if __name__ == "__main__":
    main()
