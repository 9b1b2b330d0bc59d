"""MPC screening on fresh runs: RL runs saved against how often the selected best changes.

For each seed, the same search (``method=eureka``, ``llm=offline``: the same candidates for the
same seed, one generation so both runs judge identical candidates) runs twice, without
screening and with ``loop.screening=mpc`` (its defaults: a 100-step MPC episode per candidate,
margin 0.5), each candidate trained with a small PPO budget. It prints, per seed, how many RL
runs the screen saved, whether the selected best candidate is the same, and the wall time of
both runs. The last line is the headline, the share of RL runs saved over all seeds::

    mpc_screening_rl_runs_saved_share: <value>

(read it next to the number of seeds whose best changed, printed above it).

Run: ``python bench/mpc_screening.py [--task hopper] [--seeds 0 1] [--samples 4] [--steps 2048]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hydra import compose, initialize_config_dir  # noqa: E402

from rewardgen.cli.app import run  # noqa: E402
from rewardgen.config import register_configs  # noqa: E402
from rewardgen.resources import resource_dir  # noqa: E402


def search(run_dir: Path, task: str, seed: int, samples: int, steps: int,
           screening: str) -> dict[str, object]:
    register_configs()
    overrides = [f"task={task}", f"seed={seed}", "llm=offline", "loop.generations=1",
                 f"loop.samples={samples}", f"train.timesteps={steps}", f"train.eval_freq={steps}",
                 "train.eval_episodes=2", "final.enabled=false", "report.enabled=false",
                 f"loop.screening={screening}", "executor.workers=2"]
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    start = time.monotonic()
    run(cfg, run_dir, interactive=False)
    wall = time.monotonic() - start
    results = {p.parent.name: json.loads(p.read_text())
               for p in sorted(run_dir.glob("gen_000/cand_*/result.json"))}
    trained = {k: r["fitness"] for k, r in results.items() if r["status"] == "ok"}
    best = max(trained, key=lambda k: trained[k]) if trained else None
    screened = [k for k, r in results.items() if r["status"] == "screened_out"]
    return {"best": best, "fitness": trained.get(best) if best else None,
            "trained": len(trained), "screened": screened, "wall": wall}


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2048)
    args = parser.parse_args(argv)
    print(f"{args.task}, method=eureka llm=offline, 1 generation x {args.samples} candidates, "
          f"{args.steps} PPO steps each; load average before {os.getloadavg()[0]:.2f}")
    saved = total = changed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            plain = search(Path(tmp) / f"none{seed}", args.task, seed, args.samples, args.steps,
                           "none")
            mpc = search(Path(tmp) / f"mpc{seed}", args.task, seed, args.samples, args.steps,
                         "mpc")
            same = plain["best"] == mpc["best"]
            changed += not same
            saved += len(mpc["screened"])  # type: ignore[arg-type]
            total += args.samples
            print(f"seed {seed}: screened out {mpc['screened'] or 'none'}; best without "
                  f"screening {plain['best']} ({_fmt(plain['fitness'])}), with {mpc['best']} "
                  f"({_fmt(mpc['fitness'])}): {'same' if same else 'CHANGED'}; wall "
                  f"{plain['wall']:.0f} s vs {mpc['wall']:.0f} s")
    print(f"RL runs saved {saved} of {total}; selected best changed in {changed} of "
          f"{len(args.seeds)} seeds; load average after {os.getloadavg()[0]:.2f}")
    share = saved / max(total, 1)
    print(f"mpc_screening_rl_runs_saved_share: {share:.3f}")
    return share


if __name__ == "__main__":
    main()
