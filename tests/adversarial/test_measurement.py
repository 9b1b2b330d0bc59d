"""Simulated escapes against the trusted measurement (issue 22, layer 4): a trainer that knows
the evaluation episodes, and one whose policy acts with NaN, both run with unrestricted Python
inside the real bubblewrap sandbox, then measured by the real trusted evaluator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rewardgen.runs.records import TRAIN_DIR
from rewardgen.train.checkpoints import CHECKPOINT_DIR
from rewardgen.worker.evaluate import evaluate_candidate
from tests.adversarial.escaped import TINY_PPO, escaped_job, observed, run_escaped

RELU_PPO: dict[str, Any] = {
    **TINY_PPO,
    "hyperparams": {
        **TINY_PPO["hyperparams"],
        "policy_kwargs": {"net_arch": [8], "activation_fn": "relu"},
    },
}


def test_a_trainer_that_predicts_the_evaluation_episodes_is_measured_on_others(
    tmp_path: Path,
) -> None:
    result, cand = run_escaped("predict_eval_seeds", tmp_path)
    seen = observed(cand)
    assert result.ok, result.reason
    job = escaped_job(tmp_path)
    assert seen["predicted_seed"] == job.seed + 10_000 and seen["files_read"] >= 1
    used = {s for e in result.evaluations for s in e["seeds"]}
    assert len(used) == job.eval_episodes
    # contained: the evaluator used seeds the trainer neither predicted nor could read anywhere
    assert seen["predicted_seed"] not in used
    assert used.isdisjoint(seen["numbers"])
    # and the forgery was real: on the episode it predicted, its weights score what it expected
    (tmp_path / "old_scheme").mkdir()
    old = evaluate_candidate(
        dataclasses.replace(
            job,
            out_dir=str(tmp_path / "old_scheme"),
            reward_source=None,
            save_policy=False,
            checkpoint_dir=str(cand / TRAIN_DIR / CHECKPOINT_DIR),
            eval_episodes=1,
            eval_seeds=[seen["predicted_seed"]],
        )
    )
    assert [e["fitness"] for e in old.evaluations] == [seen["predicted_fitness"][0]] * 2


def test_a_policy_whose_action_overflows_to_nan_fails_naming_the_step(tmp_path: Path) -> None:
    result, cand = run_escaped("nan_actions", tmp_path, rl=RELU_PPO)
    assert observed(cand) == {"weights_finite": True, "activation": "ReLU"}
    assert result.status == "failed" and result.fitness is None and not result.selectable
    assert result.reason == (
        "evaluation: checkpoint 128, episode 1: the policy's action at step 1 "
        "is not finite (nan); a policy must act with finite numbers"
    )
    on_disk = json.loads((cand / "result.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["fitness"] is None
    assert not (cand / "policy.zip").exists()


def test_under_a_schedule_the_nan_action_is_the_reason_and_stops_the_training(
    tmp_path: Path,
) -> None:
    """A following evaluator refuses the first checkpoint while the trainer still runs; the
    trainer is stopped for it and the candidate says why (not "cancelled")."""
    import dataclasses as dc

    from rewardgen.executors.pipeline import train_and_measure
    from tests.adversarial.escaped import ESCAPE_TARGET, PAYLOAD_VAR, SANDBOX

    job = escaped_job(tmp_path, timesteps=8000, rl=RELU_PPO)
    result = train_and_measure(
        job,
        dc.replace(SANDBOX),
        target=ESCAPE_TARGET,
        extra_env={PAYLOAD_VAR: "nan_actions"},
        prune=lambda curve: None,
    )
    assert result.status == "failed" and result.fitness is None
    assert result.reason.startswith("evaluation: checkpoint 4000, episode 1: the policy's action")
    # stopped before its budget; killed, it wrote no result.json, and the parent writes none there
    train = Path(job.out_dir) / TRAIN_DIR
    assert json.loads((train / "progress.json").read_text())["timesteps"] < job.timesteps
    assert not (train / "result.json").exists()
