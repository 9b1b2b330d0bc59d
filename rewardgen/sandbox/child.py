"""The worker's entry point: ``python -m rewardgen.sandbox.child JOB_JSON TARGET``.

Reads the job, imports ``TARGET`` (``module:function``), calls it and writes ``result.json``
next to the job, atomically. Whatever the target does, the outcome is a result file: an exception
becomes a ``failed`` result with a trimmed traceback. The process then leaves with ``os._exit``
so atexit hooks, lingering threads or finalisers installed by the candidate's code cannot change
the exit status or hang the worker. The parent reads the file (see :mod:`.worker`).
"""

from __future__ import annotations

import contextlib
import importlib
import linecache
import logging
import os
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardCodeError
from rewardgen.runs.atomic import atomic_write_json, read_json
from rewardgen.runs.records import CandidateResult, WorkerJob, job_from_dict
from rewardgen.sandbox.contract import (
    MAX_COMPONENTS,
    MAX_TRACEBACK_CHARS,
    PROGRAM_FILENAME,
    one_line,
    trimmed_traceback,
)

log = logging.getLogger(__name__)

EXIT_RESULT_WRITTEN = 0
EXIT_NO_RESULT = 70
TORCH_TARGETS = ("rewardgen.worker.train:", "rewardgen.worker.score:")  # train torch models
MEMORY_HINTS = ("failed to map segment", "Cannot allocate memory", "bad_alloc")


def load_target(target: str) -> Callable[[WorkerJob], Any]:
    """Import ``module:function``; raise ValueError naming the bad part."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target {target!r} is not of the form 'package.module:function'")
    fn = getattr(importlib.import_module(module_name), attr, None)
    if not callable(fn):
        raise ValueError(f"target {target!r}: {module_name} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


def memory_limit_mb() -> int | None:
    """The address-space (CPU) or data (GPU) limit this process runs under, in MB."""
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        soft, _ = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            return soft // (1024 * 1024)
    return None


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for an exception that escaped the target."""
    limit = memory_limit_mb()
    if isinstance(exc, MemoryError):
        return f"exceeded the memory limit of {limit} MB" if limit else "ran out of memory"
    if limit and any(hint in str(exc) for hint in MEMORY_HINTS):
        # a shared library or allocator that hit the address-space limit, e.g. torch's import
        return one_line(f"exceeded the memory limit of {limit} MB ({type(exc).__name__}: {exc})")
    if isinstance(exc, RewardCodeError):
        return one_line(str(exc))
    message = str(exc)
    return one_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def bound_gpu_memory() -> None:
    """Cap torch's CUDA allocator at the share the parent gave this worker (XLA reads
    ``XLA_PYTHON_CLIENT_MEM_FRACTION`` itself). Set before any reward code is loaded; code
    that escapes Python can still allocate past it, which the parent's memory watch sees."""
    fraction = os.environ.get("REWARDGEN_GPU_MEMORY_FRACTION")
    if not fraction or not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return
    try:
        import torch

        if torch.cuda.is_available():
            for index in range(torch.cuda.device_count()):
                torch.cuda.set_per_process_memory_fraction(float(fraction), index)
    except (ImportError, RuntimeError, ValueError) as e:
        log.warning("could not bound GPU memory to %s: %s", fraction, e)


def run(job: WorkerJob, target: str) -> CandidateResult:
    """Run the target on the job; never raise for anything the target did."""
    source = getattr(job, "reward_source", None)  # training and scoring jobs carry one
    if source:
        linecache.cache[PROGRAM_FILENAME] = (
            len(source),
            None,
            source.splitlines(keepends=True),
            PROGRAM_FILENAME,
        )
    try:
        out = load_target(target)(job)
        result = out if isinstance(out, CandidateResult) else CandidateResult.from_dict(out)
    except BaseException as e:  # noqa: BLE001 - anything the candidate did is a result
        log.debug("target %s failed", target, exc_info=True)
        result = CandidateResult(
            status="failed", reason=failure_reason(e), traceback=trimmed_traceback(e)
        )
    if result.seed is None:
        result.seed = job.seed
    return bounded(result)


def bounded(result: CandidateResult) -> CandidateResult:
    """Cap what a candidate can make the parent read: reason, traceback and component names.

    The reason and traceback go into the next prompt and the component statistics into the
    reflection; a reward raising ValueError("x" * 10**7), or returning thousands of components
    only after the smoke test (the per-step fast path does not count them), would otherwise
    hand the loop a result of hundreds of megabytes.
    """
    result.reason = one_line(result.reason) if result.reason else result.reason
    if len(result.traceback) > MAX_TRACEBACK_CHARS:
        result.traceback = "...\n" + result.traceback[-MAX_TRACEBACK_CHARS:]
    names = set(result.component_stats)
    for evaluation in result.evaluations:
        names.update(evaluation.get("components", {}) or {})
    if len(names) > MAX_COMPONENTS:
        result.status = "failed"
        result.reason = (
            f"during training: the reward returned {len(names)} distinct component names; "
            f"return at most {MAX_COMPONENTS} named terms"
        )
        result.fitness = result.success_rate = None
        result.component_stats = {}
        for evaluation in result.evaluations:
            evaluation["components"] = {}
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m rewardgen.sandbox.child JOB_JSON TARGET\n")
        return 2
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    job_path, target = argv
    job = job_from_dict(read_json(job_path))
    if target.startswith(TORCH_TARGETS):
        bound_gpu_memory()
    result = run(job, target)
    atomic_write_json(Path(job.out_dir) / "result.json", result.to_dict())
    return EXIT_RESULT_WRITTEN


if __name__ == "__main__":
    code = EXIT_NO_RESULT
    try:
        code = main(sys.argv[1:])
    except BaseException:  # noqa: BLE001 - reported on stderr; the parent reads the exit code
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)
