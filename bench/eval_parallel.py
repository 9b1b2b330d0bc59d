"""``rewardgen-eval`` over several seeds: wall time with ``executor.workers=1`` vs ``N``.

rewardgen-eval starts its trainings through the executor, so its seeds train side by side. The
same reward file is evaluated on N seeds twice (sandboxed training + trusted evaluation each),
once with one worker (T1) and once with N workers (TN), alternating between repeats. The
headline is the speed-up ratio T1 / TN (N is the ideal; the machine's load is printed with it)::

    eval_parallel_speedup: <value>

Run: ``python bench/eval_parallel.py [--seeds 2] [--timesteps 8192]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rewardgen.cli.evaluate import evaluate_reward_file  # noqa: E402
from rewardgen.cli.replay import compose_eval  # noqa: E402
from rewardgen.executors.local import cores  # noqa: E402

REWARD = """
import numpy as np

def compute_reward(state, action, prev_state):
    upright = 1.0 - abs(state.pole_angle)
    ctrl = -0.01 * float(np.sum(np.square(action)))
    return upright + ctrl, {"upright": upright, "ctrl": ctrl}
"""


def timed(reward: Path, seeds: int, workers: int, timesteps: int, out: Path) -> float:
    cfg = compose_eval([
        "task=inverted_pendulum", f"reward_file={reward}", f"seeds={list(range(seeds))}",
        f"executor.workers={workers}", f"train.timesteps={timesteps}",
        f"train.eval_freq={timesteps // 4}", "train.eval_episodes=2", "device=cpu",
        "rl.n_envs=1", "train.max_episode_steps=200",
    ])
    start = time.monotonic()
    summary = evaluate_reward_file(cfg, out)
    wall = time.monotonic() - start
    bad = [r for r in summary["results"] if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"eval_parallel: a seed failed ({bad[0]['reason']}); the timing is void")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=cores())
    parser.add_argument("--timesteps", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    load_before = os.getloadavg()
    t1s, tns = [], []
    with tempfile.TemporaryDirectory(prefix="rewardgen-bench-", dir=Path.cwd()) as tmp:
        reward = Path(tmp) / "reward.py"
        reward.write_text(REWARD)
        for r in range(args.repeats):
            order = [(1, t1s), (args.seeds, tns)]
            for workers, times in order if r % 2 == 0 else order[::-1]:
                times.append(timed(reward, args.seeds, workers, args.timesteps,
                                   Path(tmp) / f"r{r}_w{workers}"))
    t1, tn = statistics.median(t1s), statistics.median(tns)
    print(f"rewardgen-eval, inverted_pendulum, {args.seeds} seeds x {args.timesteps} env steps, "
          f"{args.repeats} repeat(s); {cores()} cores; load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print(f"{'workers':>8}{'wall s (median)':>17}")
    print(f"{1:>8}{t1:>17.1f}")
    print(f"{args.seeds:>8}{tn:>17.1f}")
    print(f"eval_parallel_speedup: {t1 / tn:.2f}")


if __name__ == "__main__":
    main()
