"""Scaling curves: wall time and peak memory of one generation as samples and envs grow.

Runs real one-generation searches (``rewardgen llm=offline`` on hopper, final phase and report
off, ``executor.workers`` = the cores this process may use) for samples 1, 2, 4 (8, 16 with
``--large``) at one env per candidate, then for 1, 2, 4 envs per candidate at 2 samples, and
samples the total RSS of the whole process tree (main process and workers) every 100 ms.
Writes docs/scaling.png and prints the table. Scaling efficiency at N samples is the ideal wall
time over the measured one, where ideal = wall(1 sample) x ceil(N / workers): 1.0 means extra
candidates cost nothing beyond waiting for a free worker. The last line is the headline::

    scaling_efficiency_at_max_samples: <value>

Run: ``python bench/scaling_curves.py [--steps 2048] [--large]``
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.png"


def one_generation(out: Path, samples: int, n_envs: int, steps: int, workers: int,
                   task: str) -> tuple[float, float]:
    """Wall seconds and peak tree RSS (MB) of a real one-generation run."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.setdefault("MUJOCO_GL", "egl")
    cmd = [str(BIN / "rewardgen"), f"task={task}", "llm=offline", "loop.generations=1",
           f"loop.samples={samples}", f"executor.workers={workers}", f"train.timesteps={steps}",
           f"train.eval_freq={steps}", "train.eval_episodes=1", "train.tensorboard=false",
           "train.save_policy=false", "final.enabled=false", "report.enabled=false",
           f"rl.n_envs={n_envs}", "++rl.hyperparams.n_steps=256", f"hydra.run.dir={out}"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    root, peak = psutil.Process(proc.pid), 0.0
    while proc.poll() is None:
        total = 0
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            members = []
        for p in members:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        peak = max(peak, total / 2**20)
        time.sleep(0.1)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"rewardgen failed: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return wall, peak


def plot(samples: list[tuple[int, float, float]], envs: list[tuple[int, float, float]],
         workers: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, rows, label in ((axes[0], samples, "samples per generation (1 env each)"),
                            (axes[1], envs, "envs per candidate (2 samples)")):
        xs = [r[0] for r in rows] if rows is samples else [1, 2, 4]
        ax.plot(xs, [r[1] for r in rows], "o-", color="C0", label="wall time s")
        ax.set_xlabel(label)
        ax.set_ylabel("wall time s", color="C0")
        ax.set_xscale("log", base=2)
        twin = ax.twinx()
        twin.plot(xs, [r[2] for r in rows], "s--", color="C1")
        twin.set_ylabel("peak RSS MB (all processes)", color="C1")
    ideal = [samples[0][1] * math.ceil(r[0] / workers) for r in samples]
    axes[0].plot([r[0] for r in samples], ideal, ":", color="gray", label="ideal")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"one generation, {workers} workers", fontsize=9)
    fig.tight_layout()
    DOC.parent.mkdir(exist_ok=True)
    fig.savefig(DOC, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--steps", type=int, default=2048, help="training steps per candidate")
    parser.add_argument("--large", action="store_true", help="also 8 and 16 samples")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    sample_counts = [1, 2, 4, 8, 16] if args.large else [1, 2, 4]
    with tempfile.TemporaryDirectory() as tmp:
        samples = [(s, *one_generation(Path(tmp) / f"s{s}", s, 1, args.steps, args.workers,
                                       args.task)) for s in sample_counts]
        # 2 samples x 1 env was measured above; reuse it rather than pay for it twice.
        envs = [next((2, w, r) for s, w, r in samples if s == 2) if e == 1 else
                (e, *one_generation(Path(tmp) / f"e{e}", 2, e, args.steps, args.workers,
                                    args.task)) for e in (1, 2, 4)]
    plot(samples, envs, args.workers)
    print(f"{args.task}: one generation, {args.steps} PPO steps per candidate, "
          f"{args.workers} workers, llm=offline (wall time includes process start)")
    print(f"{'samples':>8}{'n_envs':>8}{'wall s':>9}{'peak RSS MB':>13}{'efficiency':>12}")
    base = samples[0][1]
    eff = 0.0
    for s, wall, rss in samples:
        eff = base * math.ceil(s / args.workers) / wall
        print(f"{s:>8}{1:>8}{wall:>9.1f}{rss:>13.0f}{eff:>12.2f}")
    for (_e, wall, rss), n_envs in zip(envs, (1, 2, 4), strict=True):
        print(f"{2:>8}{n_envs:>8}{wall:>9.1f}{rss:>13.0f}{'':>12}")
    print(f"plot: {DOC.relative_to(DOC.parents[1])}")
    print(f"scaling_efficiency_at_max_samples: {eff:.3f}")
    return eff


if __name__ == "__main__":
    main()
