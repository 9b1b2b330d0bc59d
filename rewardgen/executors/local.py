"""Run candidates in parallel isolated worker processes on this machine."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.executors import OnDone
from rewardgen.results import CandidateJob, CandidateResult

log = logging.getLogger(__name__)


def visible_gpus(device: str) -> list[str]:
    """GPU ids to hand out round-robin (empty on CPU-only machines or with device=cpu)."""
    if device == "cpu":
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def default_workers(rl: RLConfig, gpus: int) -> int:
    """Cores divided by the cores one candidate keeps busy (its subprocess envs, else one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_candidate = rl.n_envs if rl.vec_env == "subproc" else 1
    return max(1, cores // max(1, per_candidate))


class LocalExecutor:
    """A pool of threads, each supervising one isolated worker process at a time."""

    def __init__(self, cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str) -> None:
        self.sandbox = sandbox
        self.gpus = visible_gpus(device)
        self.workers = int(cfg.workers) if cfg.workers else default_workers(rl, len(self.gpus))

    def run(self, jobs: Sequence[CandidateJob], on_done: OnDone | None = None) -> list[CandidateResult]:
        from rewardgen.sandbox.worker import run_isolated

        results: list[CandidateResult | None] = [None] * len(jobs)
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
            futures = {}
            for i, job in enumerate(jobs):
                gpu = self.gpus[i % len(self.gpus)] if self.gpus else None
                futures[pool.submit(run_isolated, job, self.sandbox, gpu=gpu)] = i
            for future in as_completed(futures):
                i = futures[future]
                result = future.result()
                results[i] = result
                if on_done is not None:
                    on_done(i, result)
        return [r for r in results if r is not None]
