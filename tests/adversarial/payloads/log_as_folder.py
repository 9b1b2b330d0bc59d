"""Turns the names the parent used to write in train/ into folders: worker.log and job.json.

Before issue 22 the parent wrote train/worker.log after the worker ended: a folder of that name
made it raise IsADirectoryError, and the whole search died with it.
"""

from pathlib import Path

from rewardgen.runs.records import CandidateJob


def payload(job: CandidateJob) -> None:
    train = Path(job.out_dir)
    for name in ("worker.log", "job.json", "train.worker.log"):
        (train / name / "inside").mkdir(parents=True)
