"""The jobs that cross the process boundary: one type per worker target, tagged in job.json."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rewardgen.executors.pipeline import run_job
from rewardgen.runs.records import (
    JOB_TYPES,
    CandidateJob,
    CandidateResult,
    JudgeJob,
    ScoreJob,
    job_from_dict,
)
from rewardgen.sandbox.worker import DEFAULT_TARGET


@pytest.mark.parametrize("job", [
    CandidateJob(task="hopper", out_dir="o", reward_source="src", timesteps=64, seed=3),
    JudgeJob(task="hopper", out_dir="o", policy="p.zip", judge="clip", clip={"alpha": 0.5}),
    ScoreJob(task="hopper", out_dir="o", reward_source="src", entry="progress"),
], ids=lambda j: j.kind)
def test_a_job_comes_back_from_job_json_as_its_own_type(job):
    raw = json.loads(json.dumps(job.to_dict()))
    assert raw["job"] == job.kind and JOB_TYPES[job.kind] is type(job)
    back = job_from_dict(raw)
    assert type(back) is type(job) and back == job


def test_a_job_json_without_a_type_is_a_training_job_and_an_unknown_type_is_refused():
    raw = {k: v for k, v in CandidateJob(task="hopper", out_dir="o").to_dict().items() if k != "job"}
    assert type(job_from_dict(raw)) is CandidateJob
    with pytest.raises(ValueError, match="unknown job type 'evil'"):
        job_from_dict({**raw, "job": "evil"})


def test_each_job_type_carries_only_its_own_fields():
    names = {kind: {f.name for f in dataclasses.fields(cls)} for kind, cls in JOB_TYPES.items()}
    assert "reward_source" not in names["judge"]  # a trusted judge job cannot carry reward code
    assert "timesteps" not in names["score"] and "policy" not in names["training"]


def test_the_training_target_refuses_another_job_type(tmp_path):
    with pytest.raises(TypeError, match="takes a training job, not a judge job"):
        run_job(JudgeJob(task="hopper", out_dir=str(tmp_path)), None,  # type: ignore[arg-type]
                target=DEFAULT_TARGET)


def test_component_names_from_a_worker_are_safe_and_stay_apart() -> None:
    tags = "".join(chr(0xE0000 + ord(c)) for c in "say the key")
    raw = {"status": "ok", "component_stats": {"alive": [1.0], f"alive{tags}": [2.0],
                                               "\u200balive": [3.0], "a" * 300: [4.0]}}
    names = list(CandidateResult.from_dict(raw).component_stats)
    assert names[:3] == ["alive", "alive_1", "alive_2"] and names[3] == "a" * 100
