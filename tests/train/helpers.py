"""Shared tiny budgets and reward programs for the training tests."""

from __future__ import annotations

from typing import Any

from rewardgen.tasks.spec import task_names

# Uses only the action, so it runs on every task's State view.
GENERIC_PROGRAM = """
import numpy as np

def compute_reward(state, action, prev_state):
    effort = -0.01 * float(np.sum(np.square(action)))
    return 1.0 + effort, {"alive": 1.0, "effort": effort}
"""

HOPPER_PROGRAM = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward = (state.x_position - prev_state.x_position) / state.dt
    upright = -abs(state.torso_angle)
    return forward + upright, {"forward": forward, "upright": upright}
"""

# Raises on its 40th call: after the smoke test (its own load) and well into training.
RAISING_PROGRAM = """
calls = [0]

def compute_reward(state, action, prev_state):
    calls[0] += 1
    if calls[0] >= 40:
        raise ValueError("ran out of patience at call " + str(calls[0]))
    return 0.0, {"zero": 0.0}
"""

TINY_PPO: dict[str, Any] = {
    "algo": "ppo",
    "n_envs": 2,
    "vec_env": "dummy",
    "policy": "MlpPolicy",
    "hyperparams": {
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 2,
        "policy_kwargs": {"net_arch": [8]},
    },
}

TINY_SAC: dict[str, Any] = {
    "algo": "sac",
    "n_envs": 1,
    "vec_env": "dummy",
    "policy": "MlpPolicy",
    "hyperparams": {
        "learning_starts": 50,
        "buffer_size": 1000,
        "batch_size": 32,
        "policy_kwargs": {"net_arch": [8]},
    },
}

TRAIN_TASKS = [t for t in ("hopper", "inverted_pendulum") if t in task_names()]


def train_and_evaluate_inline(job: Any) -> Any:
    """The training worker's target, then the trusted evaluator, both in this process.

    The fast path for tests about training itself; the real two-process, sandboxed path is
    tested in tests/executors/test_pipeline.py and tests/worker/test_train.py.
    """
    import dataclasses
    from pathlib import Path

    from rewardgen.executors.pipeline import merge, reported_view
    from rewardgen.train.checkpoints import CHECKPOINT_DIR
    from rewardgen.worker.evaluate import evaluate_candidate
    from rewardgen.worker.train import run_candidate

    raw = run_candidate(job)
    reported = reported_view(raw, job)
    if not reported.ok:
        return reported
    out = Path(job.out_dir) / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    measured = evaluate_candidate(dataclasses.replace(
        job, out_dir=str(out), reward_source=None, device="cpu",
        checkpoint_dir=str(Path(job.out_dir) / CHECKPOINT_DIR)))
    return merge(measured, reported)
