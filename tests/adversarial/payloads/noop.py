"""Does nothing: the control for the escape harness (the candidate trains and is measured)."""

from rewardgen.runs.records import CandidateJob
from tests.adversarial.escaped import write_observed


def payload(job: CandidateJob) -> None:
    import os

    write_observed(job, uid=os.getuid(), pid=os.getpid())
