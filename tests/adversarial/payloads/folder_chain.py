"""Builds a folder chain 3000 deep in train/ with a temporary-file lookalike at its bottom.

A recursive walk (``Path.rglob``, ``shutil.rmtree``) of the run directory raises RecursionError:
every ``rewardgen-resume`` died in the store's recovery walk.
"""

from pathlib import Path

from rewardgen.runs.records import CandidateJob
from tests.adversarial.payloads._shapes import chain


def payload(job: CandidateJob) -> None:
    chain(Path(job.out_dir), 3000)
