"""rl=brax_ppo end to end on CPU: a hopper candidate traced in the sandbox, trained with Brax PPO
on MJX from the exported reward only, and measured by the trusted evaluator in C MuJoCo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rewardgen.config import SandboxConfig
from rewardgen.executors.pipeline import train_and_measure
from rewardgen.runs.records import CandidateJob
from rewardgen.train.checkpoints import list_checkpoints

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY_BRAX: dict[str, Any] = {
    "algo": "brax_ppo",
    "n_envs": 2,
    "common": {
        "num_envs": 2,
        "batch_size": 2,
        "num_minibatches": 2,
        "unroll_length": 4,
        "num_updates_per_batch": 1,
        "num_eval_envs": 2,
        "normalize_observations": True,
        "policy_hidden_layer_sizes": [8],
        "value_hidden_layer_sizes": [8],
    },
}
HOPPER_ARRAY_PROGRAM = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward = state.x_velocity
    healthy = np.where((state.torso_height > 0.7) & (np.abs(state.torso_angle) < 0.2), 1.0, 0.0)
    ctrl = -np.sum(np.square(action))
    return forward + healthy + 1e-3 * ctrl, {"forward": forward, "healthy": healthy, "ctrl": ctrl}
"""
SANDBOX = SandboxConfig(timeout_s=1800, memory_mb=8192)


def _job(out: Path, source: str | None, **kw: Any) -> CandidateJob:
    base: dict[str, Any] = {
        "task": "hopper",
        "out_dir": str(out),
        "reward_source": source,
        "reward_kind": "program" if source else "native",
        "rl": TINY_BRAX,
        "timesteps": 64,
        "eval_freq": 64,
        "eval_episodes": 2,
        "max_episode_steps": 20,
        "smoke_states": 8,
        "seed": 3,
    }
    return CandidateJob(**{**base, **kw})


@pytest.mark.slow
@pytest.mark.mjx_compile
def test_a_hopper_candidate_trains_on_mjx_and_is_measured_in_c_mujoco(tmp_path: Path) -> None:
    out = tmp_path / "cand"
    result = train_and_measure(_job(out, HOPPER_ARRAY_PROGRAM), SANDBOX)

    assert result.status == "ok", result.reason
    train_dir = out / "train"
    assert (train_dir / "trace" / "reward.jaxexport").is_file()  # the only form the trainer read
    [(steps, _)] = list_checkpoints(train_dir / "checkpoints")
    assert steps == 64 == result.env_steps
    # the trusted evaluator's curve: episodes in C MuJoCo, capped at 20 steps
    [entry] = result.evaluations
    assert entry["timesteps"] == 64 and 1 <= entry["length"] <= 20
    assert result.fitness == pytest.approx(entry["fitness"])
    assert (out / "policy.safetensors").is_file()  # rl=brax_ppo: no policy.zip


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (
            "def compute_reward(state, action, prev_state):\n"
            "    if state.torso_height > 0.7:\n        return 1.0, {}\n    return 0.0, {}\n",
            r"line 2: use np.where\(cond, a, b\)",
        ),
        (
            "def compute_reward(state, action, prev_state):\n"
            "    return -float(np.sum(action ** 2)), {}\n",
            r"line 2: keep values as arrays: no float",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return state.__class__, {}\n",
            r"static check|'__class__' is not allowed",
        ),
        (
            "def compute_reward(state, action, prev_state):\n"
            "    return np.log(state.x_velocity - 1e9), {}\n",
            r"smoke test: total reward is not finite",
        ),
    ],
)
def test_programs_that_do_not_compile_are_rejected_before_training(
    tmp_path: Path, source: str, match: str
) -> None:
    out = tmp_path / "cand"
    result = train_and_measure(_job(out, source), SANDBOX)
    assert result.status == "rejected"
    assert pytest.approx(0) == result.env_steps
    import re

    assert re.search(match, result.reason), result.reason
    assert not (out / "train" / "checkpoints").exists()
