"""Leaves a result.json whose numbers are 400 digits long (float() of one raises OverflowError
in the parent; int() of a longer one raises ValueError)."""

from rewardgen.runs.records import CandidateJob
from tests.adversarial.payloads._shapes import replace_result


def payload(job: CandidateJob) -> None:
    big = "9" * 400
    replace_result(
        '{"status": "ok", "env_steps": '
        + big
        + ', "reward_fitness_correlation": '
        + big
        + ', "wall_time_s": '
        + big
        + "}"
    )
