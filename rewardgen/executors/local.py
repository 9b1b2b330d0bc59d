"""Run candidates in parallel isolated worker processes on this machine.

Each candidate trains in its own worker process (with its own vector envs), supervised by one
thread of a pool; the pool size is ``executor.workers``, by default the cores divided by the
cores one candidate keeps busy. GPUs are handed out round-robin through ``CUDA_VISIBLE_DEVICES``
and every worker carries the sandbox's own memory bound, so N workers use at most N times
``sandbox.memory_mb``. Results are reported as each candidate finishes, never in a batch, so a
slow candidate does not hold back the others.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors.base import OnDone, Pruner
from rewardgen.executors.pipeline import run_job
from rewardgen.runs.records import CandidateResult, J, WorkerJob
from rewardgen.sandbox.bwrap import check_backend
from rewardgen.sandbox.worker import DEFAULT_TARGET

log = logging.getLogger(__name__)


def visible_gpus(device: str) -> list[str]:
    """GPU ids to hand out round-robin (empty on CPU-only machines or with device=cpu).

    ``device=cuda:N`` pins every candidate to GPU N; otherwise all visible GPUs share the work.
    """
    if device == "cpu":
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        gpus = [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    else:
        try:
            import torch

            gpus = [str(i) for i in range(torch.cuda.device_count())]
        except ImportError:
            gpus = []
    if device.startswith("cuda:") and gpus:
        index = device.partition(":")[2]
        if not index.isdigit() or int(index) >= len(gpus):
            raise ConfigError(
                f"device={device!r} but only {len(gpus)} GPU(s) are visible ({','.join(gpus)}); "
                f"use device=cuda (round-robin over all) or an index below {len(gpus)}"
            )
        return [gpus[int(index)]]
    return gpus


def pinned_device(job: J, gpu: str | None) -> J:
    """``cuda:N`` becomes ``cuda`` once the worker sees only its own GPU (as device 0)."""
    if gpu is not None and job.device.startswith("cuda:"):
        return dataclasses.replace(job, device="cuda")
    return job


def cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cores_per_candidate(rl: RLConfig) -> int:
    """Cores one candidate keeps busy: one per env with subprocess envs, else one."""
    return max(1, int(rl.n_envs)) if rl.vec_env == "subproc" else 1


def default_workers(rl: RLConfig, gpus: int = 0) -> int:
    """Cores divided by the cores one candidate keeps busy (at least one worker).

    GPUs do not raise the count: the env simulation stays on the CPU, so cores remain the
    bottleneck; ``gpus`` is accepted for callers that size by both.
    """
    return max(1, cores() // cores_per_candidate(rl))


def run_pruned(job: WorkerJob, sandbox: SandboxConfig, *, gpu: str | None, target: str,
               extra_env: Mapping[str, str] | None, pruner: Pruner | None) -> CandidateResult:
    """:func:`run_job` with the candidate's decisions asked of ``pruner`` (None: none)."""
    if pruner is None or target != DEFAULT_TARGET:
        return run_job(job, sandbox, gpu=gpu, target=target, extra_env=extra_env)
    key = Path(job.out_dir).name
    result = run_job(job, sandbox, gpu=gpu, target=target, extra_env=extra_env,
                     prune=lambda curve: pruner.report(key, curve))
    pruner.finish(key, result.status, result.evaluations)
    return result


class LocalExecutor:
    """A pool of threads, each supervising one isolated worker process at a time.

    Args:
        cfg: ``executor.workers`` sizes the pool (None: :func:`default_workers`).
        sandbox: limits applied to every worker (memory, timeout, network, ...).
        rl: used only to size the default pool.
        device: ``cpu`` keeps GPUs hidden from the workers; ``auto``/``cuda`` share them.
        target: the ``module:function`` each worker runs (tests and benchmarks swap it).
    """

    def __init__(self, cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str,
                 *, target: str = DEFAULT_TARGET) -> None:
        if cfg.workers is not None and int(cfg.workers) < 1:
            raise ConfigError(
                f"executor.workers={cfg.workers} must be at least 1 (or null for cores / cores "
                f"per candidate = {default_workers(rl)})"
            )
        check_backend(str(sandbox.backend))  # before anything is spent
        self.sandbox = sandbox
        self.target = target
        self.gpus = visible_gpus(device)
        self.workers = int(cfg.workers) if cfg.workers else default_workers(rl, len(self.gpus))
        log.info("local executor: %d worker(s), GPUs: %s", self.workers, ",".join(self.gpus) or "none")

    def shared_gpu(self, sandbox: SandboxConfig, jobs: int) -> SandboxConfig:
        """``sandbox.gpu_memory_fraction`` null: the workers that share one GPU split 90 % of
        its memory (JAX would otherwise preallocate 75 % in each)."""
        if not self.gpus or sandbox.gpu_memory_fraction is not None:
            return sandbox
        per_gpu = -(-min(self.workers, jobs) // len(self.gpus))
        return dataclasses.replace(sandbox, gpu_memory_fraction=0.9 / max(1, per_gpu))

    def gpu_for(self, index: int) -> str | None:
        """The GPU of the index-th job of a batch (round-robin), None without GPUs."""
        return self.gpus[index % len(self.gpus)] if self.gpus else None

    def prepare(self, index: int, job: WorkerJob) -> tuple[WorkerJob, str | None]:
        """The job as its worker sees it, and its GPU."""
        gpu = self.gpu_for(index)
        return pinned_device(job, gpu), gpu

    def run(self, jobs: Sequence[WorkerJob], on_done: OnDone | None = None, *,
            target: str | None = None, sandbox: SandboxConfig | None = None,
            extra_env: Mapping[str, str] | None = None,
            pruner: Pruner | None = None) -> list[CandidateResult]:
        """Run every job; ``on_done(index, result)`` is called in this thread as each finishes.

        Args:
            jobs: the jobs (training jobs by default).
            on_done: called as each job finishes.
            target: the worker target for this batch (default: the executor's, training).
            sandbox: limits for this batch (default: the executor's).
            extra_env: variables for workers that load no reward code (see ``run_isolated``).
            pruner: ``loop.schedule``: asked at every trusted evaluation point of a training;
                a pruned candidate's worker is killed and the thread takes the next job.

        Returns:
            The results in job order.
        """
        if not jobs:
            return []
        target = target or self.target
        sandbox = self.shared_gpu(sandbox or self.sandbox, len(jobs))
        results: list[CandidateResult | None] = [None] * len(jobs)
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(jobs)),
                                  thread_name_prefix="rewardgen-candidate")
        futures: dict[Future[CandidateResult], int] = {}
        try:
            for i, job in enumerate(jobs):
                worker_job, gpu = self.prepare(i, job)
                future = pool.submit(run_pruned, worker_job, sandbox, gpu=gpu, target=target,
                                     extra_env=extra_env, pruner=pruner)
                futures[future] = i
            for future in as_completed(futures):
                i = futures[future]
                result = future.result()
                results[i] = result
                if on_done is not None:
                    on_done(i, result)
        finally:
            # On an error (or Ctrl-C) queued candidates never start; running ones finish or time out.
            pool.shutdown(wait=True, cancel_futures=True)
        return [r for r in results if r is not None]
