"""Worker targets for tests/sandbox: each misbehaves in one way, as generated code might.

Importable as ``tests.sandbox.targets`` inside the worker. No torch here: the suite stays fast.
"""

from __future__ import annotations

import json
import mmap
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from rewardgen.results import CandidateJob, CandidateResult

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def normal(job: CandidateJob) -> CandidateResult:
    return CandidateResult(status="ok", fitness=1.5, env_steps=10, wall_time_s=0.25)


def returns_dict(job: CandidateJob) -> dict:
    return {"status": "ok", "fitness": 2.0}


def sleep_forever(job: CandidateJob) -> CandidateResult:
    """Spawn a grandchild in the group and one that escapes it with setsid, then hang."""
    in_group = subprocess.Popen(SLEEPER)
    escaped = subprocess.Popen(SLEEPER, start_new_session=True)
    Path(job.out_dir, "pids.txt").write_text(f"{in_group.pid} {escaped.pid}")
    while True:
        time.sleep(1)


def leave_orphans(job: CandidateJob) -> CandidateResult:
    """Return normally but leave grandchildren running."""
    in_group = subprocess.Popen(SLEEPER)
    escaped = subprocess.Popen(SLEEPER, start_new_session=True)
    Path(job.out_dir, "pids.txt").write_text(f"{in_group.pid} {escaped.pid}")
    time.sleep(1.2)  # long enough for the parent's process-tree scan to see them
    return CandidateResult(status="ok")


def allocate_8gb(job: CandidateJob) -> CandidateResult:
    blob = bytearray(8 * 1024**3)
    return CandidateResult(status="ok", fitness=float(len(blob)))


def hog_resident_memory(job: CandidateJob) -> CandidateResult:
    """Grow the resident set through shared pages, which RLIMIT_DATA does not count."""
    chunks = []
    for _ in range(200):
        chunk = mmap.mmap(-1, 8 * 1024**2)
        chunk.write(b"x" * len(chunk))
        chunks.append(chunk)
        time.sleep(0.02)
    return CandidateResult(status="ok")


def burn_cpu(job: CandidateJob) -> CandidateResult:
    x = 0
    while True:
        x += 1


def raises(job: CandidateJob) -> CandidateResult:
    return _inner(job.seed)


def _inner(seed: int) -> CandidateResult:
    raise ValueError(f"bad seed {seed}")


def run_reward_program(job: CandidateJob) -> CandidateResult:
    """Load the job's reward program and call it once, as the training job would."""
    from rewardgen.rewards.program import load_program

    program = load_program(job.reward_source or "", job.entry)
    program.fn(None, None, None)
    return CandidateResult(status="ok")


def print_10mb(job: CandidateJob) -> CandidateResult:
    sys.stdout.write("HEAD-OF-STDOUT\n")
    line = "y" * 1023 + "\n"
    for _ in range(10 * 1024):
        sys.stdout.write(line)
    sys.stdout.write("TAIL-OF-STDOUT\n")
    sys.stderr.write("some stderr\n")
    return CandidateResult(status="ok")


def connect(job: CandidateJob) -> CandidateResult:
    try:
        with socket.create_connection(("127.0.0.1", int(job.rl["port"])), timeout=2):
            reason = "connected"
    except OSError as e:
        reason = f"{type(e).__name__}: {e}"
    return CandidateResult(status="ok", reason=reason)


def report_env(job: CandidateJob) -> CandidateResult:
    names = list(job.rl.get("names", []))
    report = {
        "present": [n for n in names if n in os.environ],
        "env": {
            k: os.environ.get(k) for k in ("MUJOCO_GL", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
        },
        "cwd": os.getcwd(),
        "limits": {
            name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_CPU")
        },
    }
    return CandidateResult(status="ok", reason=json.dumps(report))


def exit_3(job: CandidateJob) -> CandidateResult:
    sys.stderr.write("giving up now\n")
    sys.stderr.flush()
    os._exit(3)


def killed_by_signal(job: CandidateJob) -> CandidateResult:
    os.kill(os.getpid(), 9)
    return CandidateResult(status="ok")
