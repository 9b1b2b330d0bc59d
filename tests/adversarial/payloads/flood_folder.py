"""Floods its own output folder (the host's disk): many small files, then one chain of folders."""

from __future__ import annotations

import time
from pathlib import Path

from rewardgen.runs.records import CandidateJob


def payload(job: CandidateJob) -> None:
    out = Path(job.out_dir) / "flood"
    out.mkdir()
    for i in range(1_000_000):
        (out / f"f{i}").write_bytes(b"")
    time.sleep(60)
