"""Worker memory: peak resident memory (RSS) of one candidate's isolated worker process tree.

Each candidate trains in its own worker (rewardgen.sandbox.worker.run_isolated), so the peak RSS
of one worker decides how many candidates fit side by side on a machine. This bench runs real
candidates (an Eureka-style program on hopper, PPO with the task's network, evaluation on) in a
thread while the main thread samples the RSS of the whole worker tree (the worker and any
subprocess envs) every 50 ms with psutil; it reports the peak per configuration. The last line
is the headline (the largest peak)::

    peak_worker_rss_mb: <value>

Run: ``python bench/worker_memory.py [--task hopper] [--steps 2048] [--n-envs 1 4]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from training_throughput import REWARD, _rl_config  # noqa: E402

from rewardgen.config import SandboxConfig  # noqa: E402
from rewardgen.runs.records import CandidateJob, CandidateResult  # noqa: E402
from rewardgen.sandbox.worker import run_isolated  # noqa: E402


def _tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0  # the worker exited while we looked
    for p in members:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue  # exited between listing and reading
    return total / 2**20


def peak_rss(job: CandidateJob) -> tuple[float, CandidateResult]:
    """Run ``job`` in an isolated worker; return the worker tree's peak RSS (MB) and its result."""
    me = psutil.Process()
    before = {c.pid for c in me.children()}
    out: list[CandidateResult] = []
    thread = threading.Thread(target=lambda: out.append(run_isolated(job, SandboxConfig(
        timeout_s=600, smoke_states=16))))
    thread.start()
    peak = 0.0
    while thread.is_alive():
        try:
            children = me.children()
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in before:
                peak = max(peak, _tree_rss_mb(child))
        time.sleep(0.05)
    thread.join()
    return peak, out[0]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("program", "native"):
            for n_envs in args.n_envs:
                rl = {**_rl_config(args.task, 512), "n_envs": n_envs}
                job = CandidateJob(
                    task=args.task, out_dir=f"{tmp}/{kind}_{n_envs}",
                    reward_source=REWARD if kind == "program" else None, reward_kind=kind,
                    device="cpu", timesteps=args.steps, eval_freq=args.steps // 2,
                    eval_episodes=1, rl=rl, tensorboard=False, smoke_states=16)
                peak, result = peak_rss(job)
                rows.append((kind, n_envs, peak, result))
    print(f"{args.task}, PPO {args.steps} steps, evaluation on, sampled every 50 ms")
    print(f"{'reward':<10}{'n_envs':>7}{'peak RSS MB':>13}{'wall s':>8}  status")
    for kind, n_envs, peak, result in rows:
        print(f"{kind:<10}{n_envs:>7}{peak:>13.0f}{result.wall_time_s:>8.1f}  {result.status}")
    worst = max(peak for _, _, peak, _ in rows)
    print(f"peak_worker_rss_mb: {worst:.0f}")
    return worst


if __name__ == "__main__":
    main()
