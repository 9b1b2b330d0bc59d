"""Plants four fake run directories in train/, each claiming a fitness of 1000 over the human
reward's 1: the sweep table said "5 runs ... beats human: yes" for a sweep whose only run
trained nothing."""

from pathlib import Path

from rewardgen.runs.records import CandidateJob
from tests.adversarial.payloads._shapes import planted_run


def payload(job: CandidateJob) -> None:
    train = Path(job.out_dir)
    for seed in range(3):
        planted_run(train / f"run_{seed}", seed, 1000.0)
    planted_run(train / "a" / "b" / "run", 3, 1000.0)
