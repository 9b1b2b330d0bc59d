"""Puts FIFOs named reward.py, manifest.json and summary.json in train/ (and one level down).

``rewardgen-replay RUN`` globbed every reward.py below the run and ``rewardgen-report --sweep``
every manifest.json below the sweep; reading a FIFO without a writer hung both forever.
"""

import os
from pathlib import Path

from rewardgen.runs.records import CandidateJob


def payload(job: CandidateJob) -> None:
    train = Path(job.out_dir)
    (train / "sub").mkdir()
    for folder in (train, train / "sub"):
        for name in ("reward.py", "manifest.json", "summary.json"):
            os.mkfifo(folder / name)
