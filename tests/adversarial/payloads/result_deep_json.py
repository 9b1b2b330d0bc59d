"""Leaves a result.json nested 200,000 deep (the parser's recursion would raise RecursionError,
or overflow the C stack with a raised recursion limit)."""

from rewardgen.runs.records import CandidateJob
from tests.adversarial.payloads._shapes import replace_result


def payload(job: CandidateJob) -> None:
    replace_result('{"status": "ok", "env_steps": ' + "[" * 200_000 + "]" * 200_000 + "}")
