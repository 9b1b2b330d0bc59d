"""The trusted evaluator on real checkpoints of a real policy: secret seeds per evaluation point,
recorded and reproducible; NaN/inf actions and fitness fail the candidate with the reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from rewardgen.resources import resource_dir
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from rewardgen.train.checkpoints import save_weights
from rewardgen.worker.evaluate import (
    NonFiniteError,
    build_policy_model,
    evaluate_candidate,
    finite_action,
)

RELU_PPO: dict[str, Any] = {
    "algo": "ppo", "n_envs": 1, "vec_env": "dummy", "policy": "MlpPolicy",
    "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1,
                    "policy_kwargs": {"net_arch": [8], "activation_fn": "relu"}},
}  # fmt: skip
HUGE = 3e38  # a finite float32; two such products of opposite sign make inf - inf = NaN


def _job(tmp_path: Path, **kw: Any) -> CandidateJob:
    base: dict[str, Any] = {
        "task": "inverted_pendulum",
        "out_dir": str(tmp_path / "evaluation"),
        "rl": RELU_PPO,
        "eval_episodes": 3,
        "max_episode_steps": 20,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "save_policy": False,
    }
    Path(base["out_dir"]).mkdir(exist_ok=True)
    return CandidateJob(**{**base, **kw})


def _checkpoints(job: CandidateJob, steps: tuple[int, ...] = (64, 128), nan: bool = False) -> None:
    """Real checkpoints of the job's policy (untrained), or ones whose action overflows to NaN."""
    model = build_policy_model(load_task(job.task), job)
    if nan:  # every weight finite (the loader checks that), yet the action is inf - inf
        with torch.no_grad():
            hidden = model.policy.mlp_extractor.policy_net[0]
            hidden.weight.zero_()
            hidden.bias.fill_(HUGE)  # relu(HUGE) = HUGE on every unit
            head = torch.zeros_like(model.policy.action_net.weight)
            head[:, 0], head[:, 1] = HUGE, -HUGE
            model.policy.action_net.weight.copy_(head)
    for t in steps:
        save_weights(model.policy, job.checkpoint_dir or "", t)


def test_each_checkpoint_gets_fresh_distinct_seeds_recorded_in_its_entry(tmp_path: Path) -> None:
    job = _job(tmp_path)
    _checkpoints(job)
    result = evaluate_candidate(job)
    assert result.ok, result.reason
    seeds = [e["seeds"] for e in result.evaluations]
    assert [len(set(s)) for s in seeds] == [3, 3]  # one per episode, distinct
    assert set(seeds[0]).isdisjoint(seeds[1])  # drawn after each checkpoint was read
    again = evaluate_candidate(job)
    assert all(
        set(a["seeds"]).isdisjoint(b["seeds"])
        for a, b in zip(result.evaluations, again.evaluations, strict=True)
    )


def test_the_recorded_seeds_reproduce_the_measurement(tmp_path: Path) -> None:
    job = _job(tmp_path, max_episode_steps=200)
    _checkpoints(job, (64,))
    first = evaluate_candidate(job)
    replay = evaluate_candidate(dataclasses.replace(job, eval_seeds=first.evaluations[0]["seeds"]))
    assert replay.evaluations == first.evaluations and replay.fitness == first.fitness
    # the seeds matter: the untrained policy's episodes end at different times
    lengths = {evaluate_candidate(job).evaluations[0]["length"] for _ in range(4)}
    assert len(lengths | {first.evaluations[0]["length"]}) > 1


def test_given_seeds_are_used_for_every_checkpoint_and_checked(tmp_path: Path) -> None:
    job = _job(tmp_path, eval_seeds=[5, 6, 7])
    _checkpoints(job)
    result = evaluate_candidate(job)
    assert [e["seeds"] for e in result.evaluations] == [[5, 6, 7], [5, 6, 7]]
    with pytest.raises(ValueError, match="2 evaluation seeds for 3 episodes"):
        evaluate_candidate(dataclasses.replace(job, eval_seeds=[5, 6]))  # a trusted job's error


def test_a_nan_action_fails_the_candidate_naming_the_step(tmp_path: Path) -> None:
    job = _job(tmp_path, save_policy=True)
    _checkpoints(job, nan=True)
    result = evaluate_candidate(job)
    assert result.status == "failed" and result.fitness is None
    assert result.reason == (
        "evaluation: checkpoint 64, episode 1: the policy's action at step 1 "
        "is not finite (nan); a policy must act with finite numbers"
    )
    assert not (Path(job.out_dir) / "policy.zip").exists()


def _task_file(tmp_path: Path, expr: str, aggregate: str) -> str:
    raw = yaml.safe_load((resource_dir("envs") / "inverted_pendulum.yaml").read_text())
    raw["fitness"] = {"expr": expr, "aggregate": aggregate, "unit": "", "doc": "test fitness"}
    raw.pop("success_threshold", None)
    path = tmp_path / "broken_fitness.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize(
    ("expr", "aggregate", "reason"),
    [
        ("math.nan", "mean", "checkpoint 64, episode 1: the episode's fitness is nan after"),
        ("-math.inf", "sum", "checkpoint 64, episode 1: the episode's fitness is -inf after"),
        ("1e308", "final", "checkpoint 64: the mean fitness over its episodes is inf"),  # overflow
    ],
)
def test_a_non_finite_fitness_fails_the_candidate(
    tmp_path: Path, expr: str, aggregate: str, reason: str
) -> None:
    job = _job(tmp_path, task=_task_file(tmp_path, expr, aggregate), rl={**RELU_PPO})
    _checkpoints(job)
    result = evaluate_candidate(job)
    assert result.status == "failed" and result.fitness is None and not result.selectable
    assert result.reason.startswith(f"evaluation: {reason}"), result.reason


def test_finite_action_passes_finite_values_and_names_the_first_bad_one() -> None:
    action = np.array([0.5, -1.0], dtype=np.float32)
    assert finite_action(action, 3) is action
    with pytest.raises(NonFiniteError, match=r"at step 9 is not finite \(inf\)"):
        finite_action(np.array([0.0, np.inf, np.nan]), 9)
