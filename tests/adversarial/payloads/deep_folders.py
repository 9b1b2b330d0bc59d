"""Nests folders 3000 deep in its output folder (every recursive reader of it would die)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rewardgen.runs.records import CandidateJob


def payload(job: CandidateJob) -> None:
    os.chdir(Path(job.out_dir))
    for _ in range(3000):
        os.mkdir("d")
        os.chdir("d")
    time.sleep(60)
