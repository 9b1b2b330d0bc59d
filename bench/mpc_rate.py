"""MPC control rate: planned control steps per second over each task's real-time rate (1/dt).

L2R's optimiser (``method=l2r``) at its default settings (read from conf/method/l2r.yaml: the
paper's 0.35 s look-ahead in each task's control steps, iterated predictive sampling with 5
rounds of 8 samples, 3 linear knots, the always-on regularisers, 2 ``mujoco.rollout`` threads)
replanning at every control step, run in-process (the sandbox adds only its start-up, not a
per-step cost) on a reward program made of the task's seed terms. For each task it prints the
wall-clock planning rate, the rate per CPU-second of this process (what one idle core would give
when other jobs share the machine), the real-time rate, their ratio (>= 1 is real time or better), the
share of planning time spent scoring rollouts through State views in Python (the rest is the
batched C rollout) and the trusted fitness of the episode's replay; then a few other settings on
one task (speed against quality): the earlier default (8 steps, one round), the other planners
(cem, gradient) and fewer rounds. The last line is the headline: the lowest ratio over the
locomotion tasks::

    mpc_realtime_ratio_min_locomotion: <value>

Run: ``python bench/mpc_rate.py [--tasks hopper walker2d ...] [--steps 60]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rewardgen.worker.mpc as mpc  # noqa: E402
from rewardgen.config import MPCConfig  # noqa: E402
from rewardgen.llm.offline import render_program  # noqa: E402
from rewardgen.runs.records import CandidateJob  # noqa: E402
from rewardgen.tasks.spec import load_task  # noqa: E402
from rewardgen.worker.mpc_replay import replay_actions  # noqa: E402

LOCOMOTION = ("hopper", "walker2d", "half_cheetah", "ant", "swimmer", "humanoid")
MANIPULATION = ("pusher", "reacher")
SWEEP: tuple[tuple[str, dict[str, Any]], ...] = (  # besides the default, on --sweep-task
    ("before: 8 steps x 8, 1 round", {"horizon": 8, "iterations": 1,
                                      "posture_weight": 0.0, "action_rate_weight": 0.0}),
    ("sampling 0.35 s x 8, 1 round", {"iterations": 1}),
    ("sampling 0.35 s x 8, 2 rounds", {"iterations": 2}),
    ("cem 0.35 s x 8, 5 rounds", {"planner": "cem"}),
    ("gradient 0.35 s, 3 steps, 2 rounds", {"planner": "gradient", "samples": 4,
                                            "iterations": 2}),
)


def l2r_settings() -> dict[str, Any]:
    """``method.mpc`` of conf/method/l2r.yaml over the schema's defaults."""
    from omegaconf import OmegaConf

    from rewardgen.resources import resource_dir

    raw = OmegaConf.to_container(OmegaConf.load(resource_dir("conf") / "method" / "l2r.yaml"))
    return {**MPCConfig().__dict__, **raw["method"]["mpc"]}  # type: ignore[index,call-overload]


class TimedScorer(mpc.RolloutScorer):
    """The worker's scorer, with the time spent in it counted."""

    spent = 0.0

    def __call__(self, states: Any, actions: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().__call__(states, actions)
        finally:
            TimedScorer.spent += time.perf_counter() - start


def measure(task_name: str, steps: int, out: Path, **changes: Any) -> dict[str, float]:
    task = load_task(task_name)
    source = render_program({name: 1.0 for name in task.seed_terms}, task.seed_terms)
    settings = {**l2r_settings(), "episode_steps": steps, **changes}
    job = CandidateJob(task=task_name, out_dir=str(out), reward_source=source, reward_kind="mpc",
                       seed=0, timesteps=steps, reward_options={"mpc": settings})
    TimedScorer.spent = 0.0
    mpc.RolloutScorer = TimedScorer  # type: ignore[misc]
    result = mpc.run_mpc(job)
    if not result.ok:
        raise SystemExit(f"{task_name}: the MPC episode failed ({result.reason})")
    timing = json.loads((out / mpc.TIMING_FILE).read_text())
    replay = replay_actions(dataclasses.replace(job, out_dir=str(out / "replay"),
                                                reward_source=None, checkpoint_dir=str(out)))
    return {"steps": timing["steps"], "rate": timing["control_rate_hz"], "fitness": replay.fitness,
            "horizon": timing["horizon_steps"], "rollouts": timing["rollouts"] / timing["steps"],
            "cpu_rate": timing["steps"] / max(timing["plan_cpu_s"], 1e-9),
            "realtime": timing["realtime_hz"], "score_share": TimedScorer.spent / timing["plan_s"]}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=[*LOCOMOTION, *MANIPULATION])
    parser.add_argument("--steps", type=int, default=60, help="control steps per episode")
    parser.add_argument("--sweep-task", default="hopper", help="task of the settings sweep")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    d = l2r_settings()
    print(f"L2R MPC settings ({d['planner']}, {d['horizon_s']} s ahead, {d['iterations']} rounds x "
          f"{d['samples']} samples, {d['knots']} knots, {d['threads']} threads), {args.steps} "
          f"control steps; load average before {load:.2f}")
    print(f"{'task':<14}{'steps':>6}{'ahead':>6}{'steps/s':>9}{'per CPU s':>10}{'real-time':>10}"
          f"{'ratio':>7}{'scoring':>9}{'fitness':>9}")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks:
            m = measure(name, args.steps, Path(tmp) / name)
            ratios[name] = m["rate"] / m["realtime"]
            print(f"{name:<14}{m['steps']:>6}{m['horizon']:>6}{m['rate']:>9.1f}{m['cpu_rate']:>10.1f}"
                  f"{m['realtime']:>10.1f}"
                  f"{ratios[name]:>7.2f}{m['score_share']:>9.0%}{m['fitness']:>9.3f}")
        print(f"{args.sweep_task} with other settings:")
        for k, (label, changes) in enumerate(SWEEP):
            m = measure(args.sweep_task, args.steps, Path(tmp) / f"sweep{k}", **changes)
            print(f"  {label:<36} {m['rate']:>6.1f} steps/s, ratio {m['rate'] / m['realtime']:.2f}"
                  f", {m['rollouts']:.0f} rollouts/step, fitness {m['fitness']:.3f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    loco = [ratios[n] for n in args.tasks if n in LOCOMOTION]
    headline = min(loco) if loco else min(ratios.values())
    print(f"mpc_realtime_ratio_min_locomotion: {headline:.3f}")
    return headline


if __name__ == "__main__":
    main()
