"""End-to-end tests of the training worker (rewardgen.worker.train.run_candidate) and of the
sandboxed-training + trusted-evaluation path, with tiny real training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from stable_baselines3 import PPO, SAC
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rewardgen.config import SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors.pipeline import EVAL_DIR, train_and_measure
from rewardgen.runs.records import TRAIN_DIR, CandidateJob, CandidateResult
from rewardgen.sandbox.program import source_sha256
from rewardgen.tasks.spec import load_task
from rewardgen.worker.train import record_smoke_samples, run_candidate
from tests.train.helpers import (
    GENERIC_PROGRAM,
    HOPPER_PROGRAM,
    RAISING_PROGRAM,
    TINY_PPO,
    TINY_SAC,
    TRAIN_TASKS,
)


def _job(tmp_path: Path, **kw: Any) -> CandidateJob:
    base: dict[str, Any] = {
        "task": "hopper",
        "out_dir": str(tmp_path / "cand"),
        "reward_source": GENERIC_PROGRAM,
        "rl": TINY_PPO,
        "timesteps": 128,
        "eval_freq": 128,
        "eval_episodes": 2,
        "max_episode_steps": 50,
        "smoke_states": 16,
        "save_policy": False,
        "tensorboard": False,
    }
    return CandidateJob(**{**base, **kw})


def _scalar_tags(tb_dir: Path) -> set[str]:
    (run,) = [p for p in tb_dir.iterdir() if p.is_dir()]
    acc = EventAccumulator(str(run))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.mark.parametrize("task", TRAIN_TASKS)
def test_ppo_program_trains_sandboxed_and_is_measured_by_the_evaluator(
    tmp_path: Path, task: str
) -> None:
    job = _job(
        tmp_path, task=task, timesteps=300, save_policy=True, tensorboard=True, seed=4, last_k=2
    )
    result = train_and_measure(job, SandboxConfig(timeout_s=300))

    assert result.status == "ok", result.reason
    assert result.reason == "" and result.traceback == ""
    # 2 envs x 64 steps per rollout: learn(300) stops after 3 rollouts at 384 steps.
    assert result.env_steps == 384
    assert [e["timesteps"] for e in result.evaluations] == [128, 256, 384]
    assert set(result.evaluations[0]) == {"timesteps", "fitness", "success_rate",
                                          "native_return", "length", "seeds"}
    assert result.fitness == pytest.approx(
        (result.evaluations[-1]["fitness"] + result.evaluations[-2]["fitness"]) / 2
    )
    # Reported by the candidate: training statistics, one component value per checkpoint.
    assert set(result.component_stats) == {"alive", "effort"}
    assert all(len(v) == 3 for v in result.component_stats.values())
    assert "component_stats" in result.reported and "fitness" not in result.reported
    n = len(result.episode_returns)
    assert n > 0
    assert len(result.native_returns) == len(result.episode_lengths) == n
    assert len(result.episode_fitness) == n
    assert result.reward_sha256 == source_sha256(GENERIC_PROGRAM) and result.seed == 4
    assert result.wall_time_s > 0
    assert CandidateResult.from_dict(result.to_dict()) == result

    out = Path(job.out_dir)
    assert {p.name for p in out.iterdir()} == {
        "result.json", "policy.zip", "trajectories.npz", TRAIN_DIR, EVAL_DIR,
        f"{TRAIN_DIR}.job.json", f"{TRAIN_DIR}.worker.log",  # the parent's, beside train/
    }  # fmt: skip
    train = out / TRAIN_DIR
    assert {p.name for p in train.iterdir()} >= {"checkpoints", "tb", "progress.json"}
    assert sorted(p.name for p in (train / "checkpoints").iterdir()) == [
        "000000000128.safetensors", "000000000256.safetensors", "000000000384.safetensors",
    ]  # fmt: skip
    assert not (train / "policy.zip").exists()  # the untrusted side leaves no pickle
    assert json.loads((train / "progress.json").read_text())["timesteps"] == result.env_steps
    assert CandidateResult.from_dict(json.loads((out / "result.json").read_text())) == result
    policy = PPO.load(out / "policy.zip", device="cpu")
    assert policy.policy.net_arch == [8]
    tags = _scalar_tags(train / "tb")
    expected = {
        "rewardgen/episode_fitness", "rewardgen/episode_return",
        "rewardgen/native_return", "rewardgen/component/alive", "rewardgen/component/effort",
    }  # fmt: skip
    assert expected <= tags
    if load_task(task).success_threshold is not None:
        assert all(e["success_rate"] is not None for e in result.evaluations)


def test_training_worker_measures_nothing(tmp_path: Path) -> None:
    result = run_candidate(_job(tmp_path, reward_source=HOPPER_PROGRAM, seed=1))
    assert result.status == "ok"
    assert result.fitness is None and result.success_rate is None and result.evaluations == []
    out = Path(tmp_path / "cand")
    assert {p.name for p in out.iterdir()} == {"checkpoints", "progress.json"}


def test_same_seed_same_result(tmp_path: Path) -> None:
    first = run_candidate(_job(tmp_path / "a", reward_source=HOPPER_PROGRAM, seed=1))
    second = run_candidate(_job(tmp_path / "b", reward_source=HOPPER_PROGRAM, seed=1))
    assert first.status == second.status == "ok"
    assert set(first.component_stats) == {"forward", "upright"}
    assert first.component_stats == second.component_stats
    assert first.episode_returns == second.episode_returns
    a = (tmp_path / "a" / "cand" / "checkpoints" / "000000000128.safetensors").read_bytes()
    b = (tmp_path / "b" / "cand" / "checkpoints" / "000000000128.safetensors").read_bytes()
    assert a == b


@pytest.mark.parametrize(("kind", "components"), [("native", set()), ("sparse", {"sparse"})])
def test_baseline_reward_kinds(tmp_path: Path, kind: str, components: set[str]) -> None:
    result = run_candidate(_job(tmp_path, reward_kind=kind, reward_source=None))
    assert result.status == "ok", result.reason
    assert set(result.component_stats) == components
    assert result.reward_sha256 is None
    assert [p.name for p in (tmp_path / "cand" / "checkpoints").iterdir()] == [
        "000000000128.safetensors"
    ]
    if kind == "native":  # the generated return is the native one
        assert result.episode_returns == result.native_returns


def test_sparse_without_task_expression_is_a_config_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(load_task("hopper").path.read_text())  # type: ignore[union-attr]
    del raw["sparse_reward"]
    path = tmp_path / "hopper_dense.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="has no sparse_reward"):
        run_candidate(_job(tmp_path, task=str(path), reward_kind="sparse", reward_source=None))


def test_sac_trains_and_the_evaluator_saves_its_policy(tmp_path: Path) -> None:
    job = _job(tmp_path, rl=TINY_SAC, timesteps=200, eval_freq=100, save_policy=True)
    result = train_and_measure(job, SandboxConfig(timeout_s=300))
    assert result.status == "ok", result.reason
    assert result.env_steps == 200
    assert [e["timesteps"] for e in result.evaluations] == [100, 200]
    assert SAC.load(Path(job.out_dir) / "policy.zip", device="cpu").learning_starts == 50


@pytest.mark.parametrize("vec_env", ["dummy", "subproc"])
def test_program_raising_mid_training_fails(tmp_path: Path, vec_env: str) -> None:
    rl = {**TINY_PPO, "vec_env": vec_env}
    job = _job(tmp_path, reward_source=RAISING_PROGRAM, rl=rl, timesteps=256, save_policy=True)
    result = run_candidate(job)
    assert result.status == "failed"
    assert result.reason.startswith("during training: compute_reward raised ValueError")
    assert "ran out of patience at call 40" in result.reason
    assert 'File "<reward program>", line 7, in compute_reward' in result.traceback
    assert 'raise ValueError("ran out of patience at call " + str(calls[0]))' in result.traceback
    assert "stable_baselines3" not in result.traceback
    assert result.fitness is None and result.evaluations == []
    assert not (Path(job.out_dir) / "policy.zip").exists()
    assert not (Path(job.out_dir) / "checkpoints" / "000000000256.safetensors").exists()


def test_program_failing_static_check_is_rejected(tmp_path: Path) -> None:
    source = "import os\n\ndef compute_reward(state, action, prev_state):\n    return 0.0, {}\n"
    job = _job(tmp_path, reward_source=source)
    result = run_candidate(job)
    assert result.status == "rejected"
    assert result.reason.startswith("static check: line 1: import of 'os' is not allowed")
    assert result.reward_sha256 == source_sha256(source)
    assert not Path(job.out_dir).exists()


def test_program_failing_smoke_test_is_rejected(tmp_path: Path) -> None:
    source = "def compute_reward(state, action, prev_state):\n    return float('nan'), {}\n"
    result = run_candidate(_job(tmp_path, reward_source=source))
    assert result.status == "rejected"
    assert result.reason.startswith("smoke test: total reward is not finite (nan)")
    assert "smoke test: smoke test" not in result.reason
    assert result.env_steps == 0 and result.fitness is None


def test_program_raising_in_smoke_test_is_rejected_with_traceback(tmp_path: Path) -> None:
    source = "def compute_reward(state, action, prev_state):\n    return 1.0 / 0.0, {}\n"
    result = run_candidate(_job(tmp_path, reward_source=source))
    assert result.status == "rejected"
    assert result.reason.startswith("smoke test: raised ZeroDivisionError")
    assert "line 2, in compute_reward\n    return 1.0 / 0.0, {}" in result.traceback


def test_record_smoke_samples_is_seeded_and_chains_states(tmp_path: Path) -> None:
    task = load_task("hopper")
    job = _job(tmp_path, smoke_states=12, max_episode_steps=5, seed=2)
    samples = record_smoke_samples(task, job)
    again = record_smoke_samples(task, job)
    assert len(samples) == 12
    assert all((a[1] == b[1]).all() for a, b in zip(samples, again, strict=True))
    # Within an episode each sample's prev_state is the previous sample's state.
    assert samples[1][2] is samples[0][0]
    assert samples[5][2] is not samples[4][0]  # the episode cap of 5 reset the env
    assert samples[5][2].x_position != samples[4][0].x_position
    assert all(task.state[0].name in s[0]._fields for s in samples)


SLOW_PROGRAM = """
def compute_reward(state, action, prev_state):
    total = 0.0
    for i in range(40000):  # a few ms per call: passes the smoke test's 1 s per call
        total += i * 1e-9
    return total, {"slow": total}
"""


def test_slow_program_ends_early_with_its_time_per_call(tmp_path: Path) -> None:
    from rewardgen.jobs import candidate_job
    from tests.helpers import tiny_config

    assert candidate_job(tiny_config("sandbox.call_budget_s=0.5"), tmp_path, "x").call_budget_s == 0.5
    job = _job(tmp_path, reward_source=SLOW_PROGRAM, timesteps=100_000, eval_freq=50_000,
               call_budget_s=0.0005)
    result = run_candidate(job)
    assert result.status == "failed", result.reason
    assert "the reward program took" in result.reason and "s per call on average" in result.reason
    assert "above sandbox.call_budget_s=0.0005" in result.reason
    assert 0 < result.env_steps < 5_000 and (result.wall_time_s or 0) < 30


NESTED_EXCEPTION = """
def compute_reward(state, action, prev_state):
    nested = []
    for _ in range(100_000):
        nested = [nested]
    raise ValueError(nested)
"""


@pytest.mark.parametrize(("source", "status", "reason"), [
    ("def compute_reward(state, action, prev_state):\n    return 1e308, {'big': 1e308}\n",
     "rejected", "smoke test: reward magnitude reached 1e308 per step, beyond the float32 range"),
    ("def compute_reward(state, action, prev_state):\n    return 1e37, {'big': 1e37}\n",
     "failed", "during training: reward magnitude reached 1e37 per step: scale the components "
     "(training broke down: ValueError: Expected parameter loc"),
    (NESTED_EXCEPTION, "rejected",
     "smoke test: raised ValueError: <its message could not be formatted: RecursionError>"),
])
def test_reasons_name_what_the_reward_did(tmp_path: Path, source: str, status: str,
                                          reason: str) -> None:
    job = _job(tmp_path, task="inverted_pendulum", reward_source=source, timesteps=256,
               max_episode_steps=64, rl={**TINY_PPO, "hyperparams": {
                   **TINY_PPO.get("hyperparams", {}), "n_steps": 64, "batch_size": 32}})
    result = run_candidate(job)
    assert (result.status, result.reason[:len(reason)]) == (status, reason), result.reason
