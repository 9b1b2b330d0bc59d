"""Fills the private /tmp and /dev/shm: tmpfs pages are host RAM no address-space limit counts."""

from __future__ import annotations

import os

from rewardgen.runs.records import CandidateJob
from tests.adversarial.escaped import write_observed

CHUNK = b"x" * (1 << 20)


def _fill(folder: str, limit_mb: int) -> int:
    written = 0
    try:
        with open(os.path.join(folder, "fill"), "wb") as handle:
            while written < limit_mb:
                handle.write(CHUNK)
                handle.flush()
                written += 1
    except OSError:
        pass
    return written


def payload(job: CandidateJob) -> None:
    tmp_mb = _fill("/tmp", 4096)
    shm_mb = _fill("/dev/shm", 4096)
    for folder in ("/tmp", "/dev/shm"):
        os.unlink(os.path.join(folder, "fill"))
    write_observed(job, tmp_mb=tmp_mb, shm_mb=shm_mb)
