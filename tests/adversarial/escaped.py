"""Simulated escapes: payloads that run as an escaped reward program would, inside the real sandbox.

Python-level restrictions are a lint, not a boundary (DESIGN.md, Isolation): a reward program
must be assumed to run arbitrary code in its worker. These tests give it that code directly.
:func:`run_candidate` is a training-worker target: inside the real bubblewrap sandbox it imports
``tests/adversarial/payloads/<NAME>.py`` (``NAME`` from ``$REWARDGEN_TEST_PAYLOAD``), calls its
``payload(job)`` with unrestricted Python, then trains the job's benign reward as usual, so the
trusted evaluator measures real checkpoints afterwards. A payload may write what it saw to
``Path(job.out_dir) / OBSERVED`` (its own ``train/`` folder) for the test to read.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

from rewardgen.config import SandboxConfig
from rewardgen.executors.pipeline import train_and_measure
from rewardgen.runs.records import TRAIN_DIR, CandidateJob, CandidateResult

ESCAPE_TARGET = "tests.adversarial.escaped:run_candidate"
PAYLOAD_VAR = "REWARDGEN_TEST_PAYLOAD"
OBSERVED = "observed.json"
SANDBOX = SandboxConfig(timeout_s=180.0, memory_mb=4096, output_limit_kb=64)
BENIGN_PROGRAM = """
import numpy as np

def compute_reward(state, action, prev_state):
    effort = -0.01 * np.sum(np.square(action))
    return 1.0 + effort, {"alive": 1.0, "effort": effort}
"""
TINY_PPO: dict[str, Any] = {
    "algo": "ppo", "n_envs": 1, "vec_env": "dummy", "policy": "MlpPolicy",
    "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 1,
                    "policy_kwargs": {"net_arch": [8]}},
}  # fmt: skip


def run_candidate(job: CandidateJob) -> CandidateResult:
    """The worker target: the named payload with full Python, then the normal training."""
    from rewardgen.worker.train import run_candidate as train

    name = os.environ.get(PAYLOAD_VAR, "")
    module = importlib.import_module(f"tests.adversarial.payloads.{name}")
    module.payload(job)
    return train(job)


def observed(cand: Path) -> dict[str, Any]:
    """What the payload wrote to its folder (``{}`` when it wrote nothing)."""
    path = cand / TRAIN_DIR / OBSERVED
    return json.loads(path.read_text()) if path.is_file() else {}


def write_observed(job: CandidateJob, **values: Any) -> None:
    """Helper for payloads: merge ``values`` into the folder's observation file."""
    path = Path(job.out_dir) / OBSERVED
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, **values}, default=str))


def escaped_job(tmp_path: Path, task: str = "inverted_pendulum", timesteps: int = 256,
                **overrides: Any) -> CandidateJob:
    """A tiny PPO candidate whose benign reward trains after the payload ran."""
    base: dict[str, Any] = {
        "task": task, "out_dir": str(tmp_path / "cand"), "reward_source": BENIGN_PROGRAM,
        "rl": TINY_PPO, "timesteps": timesteps, "eval_freq": timesteps // 2, "eval_episodes": 2,
        "max_episode_steps": 50, "smoke_states": 8, "save_policy": True, "tensorboard": False,
        "seed": 3,
    }  # fmt: skip
    return CandidateJob(**{**base, **overrides})


def run_escaped(name: str, tmp_path: Path, task: str = "inverted_pendulum", timesteps: int = 256,
                cfg: SandboxConfig | None = None,
                **job_overrides: Any) -> tuple[CandidateResult, Path]:
    """Run payload ``name`` through the real bubblewrap sandbox and the trusted evaluator.

    Returns:
        The candidate's result and its folder (``cand/``; ``cand/train/`` is the only folder
        the sandbox can write).
    """
    job = escaped_job(tmp_path, task, timesteps, **job_overrides)
    result = train_and_measure(job, dataclasses.replace(cfg or SANDBOX), target=ESCAPE_TARGET,
                               extra_env={PAYLOAD_VAR: name})
    return result, Path(job.out_dir)
