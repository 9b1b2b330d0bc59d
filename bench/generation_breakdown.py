"""Generation breakdown: where one generation's wall time goes (LLM, training, evaluation, ...).

Runs a real small search (``rewardgen`` with ``llm=offline``, 1 generation of 2 candidates on 2
workers, final phase and report off) and splits the generation, from its ``llm_request`` event
to its ``generation_done`` event in events.jsonl, into:

* LLM: ``llm_request`` -> ``responses_saved`` (the offline proposer: no network; with a real
  LLM this share is the request latency);
* training and evaluation: the longest candidate's ``wall_time_s`` (its result.json; candidates
  run side by side), split by the share of evaluation env steps in its steps (an estimate: an
  evaluation step costs less than a training step, so evaluation is over-counted);
* worker start: the rest of the executor's span (``responses_saved`` -> last
  ``candidate_done``): process start, imports, sandbox setup, the smoke test;
* bookkeeping: everything else in the generation (checking and writing rewards, results,
  events, selection, feedback) - the main process's own work.

The last line is the headline::

    bookkeeping_share: <value>

Run: ``python bench/generation_breakdown.py [--task hopper] [--steps 8192]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def run_search(out: Path, task: str, steps: int, samples: int, workers: int,
               extra: list[str] | None = None) -> Path:
    """A real ``rewardgen`` run in ``out``; returns the run directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.setdefault("MUJOCO_GL", "egl")
    cmd = [str(BIN / "rewardgen"), f"task={task}", "llm=offline", "loop.generations=1",
           f"loop.samples={samples}", f"executor.workers={workers}", f"train.timesteps={steps}",
           f"train.eval_freq={steps // 2}", "train.eval_episodes=2", "train.tensorboard=false",
           "final.enabled=false", "report.enabled=false", "rl.n_envs=1",
           "++rl.hyperparams.n_steps=512", f"hydra.run.dir={out}", *(extra or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"rewardgen failed: {proc.stderr[-2000:]}")
    return out


def breakdown(run_dir: Path) -> dict[str, Any]:
    """Seconds per part of generation 0 of ``run_dir`` (see the module docstring)."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]

    def t(kind: str, last: bool = False) -> float:
        stamps = [e["t"] for e in events if e["event"] == kind and e.get("generation", 0) == 0]
        return max(stamps) if last else min(stamps)

    start, end = t("llm_request"), t("generation_done")
    saved, last_done = t("responses_saved"), t("candidate_done", last=True)
    results = [json.loads(p.read_text()) for p in sorted(run_dir.glob("gen_000/cand_*/result.json"))]
    longest = max(results, key=lambda r: r["wall_time_s"])
    eval_steps = sum(e["length"] * 2 for e in longest["evaluations"])  # eval_episodes=2
    eval_share = eval_steps / max(eval_steps + longest["env_steps"], 1)
    worker = longest["wall_time_s"]
    parts = {
        "llm": saved - start,
        "training": worker * (1 - eval_share),
        "evaluation": worker * eval_share,
        "worker_start": max(last_done - saved - worker, 0.0),
        "bookkeeping": max((end - start) - (saved - start) - (last_done - saved), 0.0),
    }
    return {"total": end - start, "parts": parts, "candidates": len(results)}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--steps", type=int, default=8192, help="training steps per candidate")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = run_search(Path(tmp) / "run", args.task, args.steps, samples=2, workers=2)
        b = breakdown(run_dir)
    print(f"{args.task}: 1 generation, {b['candidates']} candidates on 2 workers, "
          f"{args.steps} PPO steps each, llm=offline; generation wall time {b['total']:.2f} s")
    print(f"{'part':<14}{'seconds':>10}{'share':>9}")
    for name, secs in b["parts"].items():
        print(f"{name:<14}{secs:>10.3f}{secs / b['total']:>9.3%}")
    share = b["parts"]["bookkeeping"] / b["total"]
    print(f"bookkeeping_share: {share:.4f}")
    return share


if __name__ == "__main__":
    main()
