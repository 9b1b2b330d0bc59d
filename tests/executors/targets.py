"""Worker targets for tests/executors, importable as ``tests.executors.targets`` in the worker.

``dispatch`` picks the behaviour from ``job.task`` so one executor (one target) can run a batch
of candidates that behave differently. No torch here: these workers start fast.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from rewardgen.runs.records import CandidateJob, CandidateResult


def sleep(job: CandidateJob) -> CandidateResult:
    """Sleep ``job.seed`` tenths of a second, then succeed with fitness = seed."""
    time.sleep(job.seed / 10)
    return CandidateResult(status="ok", fitness=float(job.seed), env_steps=1)


def artifacts(job: CandidateJob) -> CandidateResult:
    """Write what a training writes: a policy, TensorBoard events, progress."""
    out = Path(job.out_dir)
    (out / "policy.zip").write_bytes(b"PK-fake-policy" * 1000)
    (out / "tb" / "PPO_1").mkdir(parents=True)
    (out / "tb" / "PPO_1" / "events.out.tfevents.1").write_bytes(b"\x00\x01events")
    (out / "progress.json").write_text(json.dumps({"steps": 64, "total": 64}))
    return CandidateResult(status="ok", fitness=2.5, env_steps=64)


def report_gpu(job: CandidateJob) -> CandidateResult:
    """Say which GPUs the worker sees and the device it was asked to train on."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    return CandidateResult(status="ok", reason=f"{visible}|{job.device}")


def allocate(job: CandidateJob) -> CandidateResult:
    """Ask for 4 GB at once, far over the test's memory limit."""
    time.sleep(0.5)  # overlap with the other workers of the batch
    blob = bytearray(4 * 1024**3)
    return CandidateResult(status="ok", fitness=float(len(blob)))


def kill_ray_worker(job: CandidateJob) -> CandidateResult:
    """Kill the process supervising this worker (the Ray task), as a lost node would."""
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(2)
    os._exit(3)


def dispatch(job: CandidateJob) -> CandidateResult:
    behaviour = {"sleep": sleep, "artifacts": artifacts, "report_gpu": report_gpu,
                 "allocate": allocate, "kill_ray_worker": kill_ray_worker}[job.task]
    return behaviour(job)
