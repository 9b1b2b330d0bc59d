"""Worker memory: peak resident memory (RSS) and address space of one candidate's worker tree.

Each candidate trains in its own worker (rewardgen.sandbox.worker.run_isolated), so the peak RSS
of one worker decides how many candidates fit side by side on a machine, and the peak address
space of its largest process decides whether it starts at all under ``sandbox.memory_mb`` (on a
CPU the limit is the address space of each process). This bench runs real candidates (an
Eureka-style program and the native reward, evaluation on) in a thread while the main thread
samples the worker tree (the worker and any subprocess envs) every 50 ms with psutil: the sum
of RSS and the largest ``VmPeak``. The last line is the headline (the largest RSS peak)::

    peak_worker_rss_mb: <value>

Run: ``python bench/worker_memory.py [--task hopper] [--algo ppo] [--steps 2048] [--n-envs 1 4]``;
``--algo sac`` trains ``conf/rl/sac.yaml`` (SAC's default one-million buffer, capped at the
budget) and ``--memory-mb`` sets ``sandbox.memory_mb`` (default 4096).
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
from training_throughput import REWARD  # noqa: E402

from rewardgen.config import SandboxConfig  # noqa: E402
from rewardgen.runs.records import CandidateJob, CandidateResult  # noqa: E402
from rewardgen.sandbox.worker import run_isolated  # noqa: E402


def _rl_config(algo: str, task: str, n_steps: int) -> dict[str, object]:
    """The composed ``rl`` config of ``conf/rl/<algo>.yaml`` (PPO's rollout cut to ``n_steps``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rewardgen.config import register_configs
    from rewardgen.resources import resource_dir

    register_configs()
    overrides = [f"task={task}", f"rl={algo}", "rl.n_envs=1"]
    if algo == "ppo":
        overrides.append(f"++rl.hyperparams.n_steps={n_steps}")
    else:
        overrides.append("++rl.hyperparams.learning_starts=256")
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg.rl, resolve=True)  # type: ignore[return-value]


def _vm_peak_mb(proc: psutil.Process) -> float:
    try:
        text = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tree_mb(proc: psutil.Process) -> tuple[float, float]:
    """The tree's summed RSS and its largest process's peak address space, in MB."""
    total, vm_peak = 0, 0.0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0  # the worker exited while we looked
    for p in members:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue  # exited between listing and reading
        vm_peak = max(vm_peak, _vm_peak_mb(p))
    return total / 2**20, vm_peak


def peak_memory(job: CandidateJob, memory_mb: int = 4096) -> tuple[float, float, CandidateResult]:
    """Run ``job`` in an isolated worker; return the tree's peak RSS and peak address space
    (MB) and its result."""
    me = psutil.Process()
    before = {c.pid for c in me.children()}
    out: list[CandidateResult] = []
    thread = threading.Thread(
        target=lambda: out.append(
            run_isolated(job, SandboxConfig(timeout_s=600, smoke_states=16, memory_mb=memory_mb))
        )
    )
    thread.start()
    peak, vm_peak = 0.0, 0.0
    while thread.is_alive():
        try:
            children = me.children()
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in before:
                rss, vm = _tree_mb(child)
                peak, vm_peak = max(peak, rss), max(vm_peak, vm)
        time.sleep(0.05)
    thread.join()
    return peak, vm_peak, out[0]


def peak_rss(job: CandidateJob) -> tuple[float, CandidateResult]:
    """Run ``job`` in an isolated worker; return the worker tree's peak RSS (MB) and its result."""
    peak, _, result = peak_memory(job)
    return peak, result


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--algo", default="ppo", choices=["ppo", "sac"])
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--memory-mb", type=int, default=4096)
    parser.add_argument("--kinds", nargs="+", default=["program", "native"])
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for n_envs in args.n_envs:
                rl = {**_rl_config(args.algo, args.task, 512), "n_envs": n_envs}
                job = CandidateJob(
                    task=args.task,
                    out_dir=f"{tmp}/{kind}_{n_envs}",
                    reward_source=REWARD if kind == "program" else None,
                    reward_kind=kind,
                    device="cpu",
                    timesteps=args.steps,
                    eval_freq=args.steps // 2,
                    eval_episodes=1,
                    rl=rl,
                    tensorboard=False,
                    smoke_states=16,
                )
                rss, vm, result = peak_memory(job, args.memory_mb)
                rows.append((kind, n_envs, rss, vm, result))
    print(
        f"{args.task}, {args.algo.upper()} {args.steps} steps, sandbox.memory_mb="
        f"{args.memory_mb}, evaluation on, sampled every 50 ms"
    )
    print(f"{'reward':<10}{'n_envs':>7}{'peak RSS MB':>13}{'peak VM MB':>12}{'wall s':>8}  status")
    for kind, n_envs, rss, vm, result in rows:
        status = result.status + (f" ({result.reason[:90]})" if result.reason else "")
        print(f"{kind:<10}{n_envs:>7}{rss:>13.0f}{vm:>12.0f}{result.wall_time_s:>8.1f}  {status}")
    worst = max(rss for _, _, rss, _, _ in rows)
    print(f"peak_worker_rss_mb: {worst:.0f}")
    return worst


if __name__ == "__main__":
    main()
