"""Puts FIFOs in train/tb/: one as a TensorBoard run, one named like an event file in a run.

TensorBoard's reader opens every file it finds and blocks forever on a FIFO without a writer:
``rewardgen-report`` hung.
"""

import os
from pathlib import Path

from rewardgen.runs.records import CandidateJob


def payload(job: CandidateJob) -> None:
    tb = Path(job.out_dir) / "tb"
    (tb / "PPO_0").mkdir(parents=True)
    os.mkfifo(tb / "PPO_0" / "events.out.tfevents.0.fifo")
    os.mkfifo(tb / "events.out.tfevents.1.fifo")
    (tb / "PPO_9").symlink_to("/etc")
