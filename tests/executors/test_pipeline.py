"""The trust boundary: a training worker that rewrites anything it can reach cannot move the
fitness. Real sandboxed workers, real tiny training, a real trusted evaluator process."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from stable_baselines3 import PPO

import rewardgen
from rewardgen.config import SandboxConfig
from rewardgen.executors.pipeline import EVAL_DIR, reported_view, train_and_measure
from rewardgen.runs.records import TRAIN_DIR, CandidateJob, CandidateResult
from rewardgen.train.checkpoints import CHECKPOINT_DIR
from rewardgen.worker.evaluate import evaluate_candidate
from tests.train.helpers import HOPPER_PROGRAM, TINY_PPO

HOSTILE = "tests.executors.hostile_targets:"


def _job(tmp_path: Path, **kw: Any) -> CandidateJob:
    base: dict[str, Any] = {
        "task": "hopper", "out_dir": str(tmp_path / "cand"), "reward_source": HOPPER_PROGRAM,
        "rl": TINY_PPO, "timesteps": 256, "eval_freq": 128, "eval_episodes": 2,
        "max_episode_steps": 50, "smoke_states": 8, "save_policy": True, "tensorboard": False,
        "seed": 3,
    }  # fmt: skip
    return CandidateJob(**{**base, **kw})


def _independent_measurement(job: CandidateJob, tmp_path: Path) -> CandidateResult:
    """The trusted evaluator run again, in this process, on the same checkpoints and the seeds
    the evaluation recorded (what a reviewer does to reproduce it)."""
    checkpoints = Path(job.out_dir) / TRAIN_DIR / CHECKPOINT_DIR
    recorded = json.loads((Path(job.out_dir) / "result.json").read_text())["evaluations"]
    again = dataclasses.replace(job, out_dir=str(tmp_path / "again"), reward_source=None,
                                checkpoint_dir=str(checkpoints), save_policy=False,
                                eval_seeds=recorded[0]["seeds"])
    Path(again.out_dir).mkdir(parents=True)
    return evaluate_candidate(again)


def test_a_worker_that_forges_everything_cannot_move_the_fitness(tmp_path: Path) -> None:
    job = _job(tmp_path)
    result = train_and_measure(job, SandboxConfig(timeout_s=300),
                               target=HOSTILE + "forge_everything")
    assert result.status == "ok", result.reason
    truth = _independent_measurement(job, tmp_path)
    assert truth.ok and result.fitness == truth.fitness != 4242.0
    assert result.evaluations == truth.evaluations
    assert result.success_rate == truth.success_rate
    on_disk = json.loads((Path(job.out_dir) / "result.json").read_text())
    assert on_disk["fitness"] == truth.fitness
    # Reported values are bounded and labelled; the parent computes the program's hash itself.
    assert len(result.component_stats) == 60
    assert all(s == [1.0] for s in result.component_stats.values())  # NaN dropped
    assert result.env_steps <= 2 * job.timesteps + 1_000_000
    assert result.reward_sha256 != "0" * 64 and "component_stats" in result.reported
    # The policy.zip export loads is the evaluator's, not the worker's pickle.
    model = PPO.load(Path(job.out_dir) / "policy.zip", device="cpu")
    assert model.policy.net_arch == [8]
    assert pickle.loads((Path(job.out_dir) / TRAIN_DIR / "policy.zip").read_bytes())["forged"]
    # The evaluator's own job carries no reward code.
    eval_job = json.loads((Path(job.out_dir) / EVAL_DIR / "job.json").read_text())
    assert eval_job["reward_source"] is None


def test_a_result_file_written_by_the_program_is_only_reported(tmp_path: Path) -> None:
    job = _job(tmp_path)
    result = train_and_measure(job, SandboxConfig(timeout_s=300),
                               target=HOSTILE + "forge_result_file")
    truth = _independent_measurement(job, tmp_path)
    assert result.ok and result.fitness == truth.fitness != 4242.0
    assert len(result.component_stats) == 64  # bounded by the parent, not only the child


def test_corrupt_or_linked_checkpoints_fail_the_candidate_with_a_reason(tmp_path: Path) -> None:
    job = _job(tmp_path)
    result = train_and_measure(job, SandboxConfig(timeout_s=300),
                               target=HOSTILE + "corrupt_checkpoints")
    assert result.status == "failed" and result.fitness is None
    assert result.reason.startswith("evaluation: ")
    assert "safetensors" in result.reason or "cannot open" in result.reason
    assert not (Path(job.out_dir) / "policy.zip").exists()


@pytest.mark.timeout(120)
def test_fifos_in_the_worker_folder_do_not_hang_the_parent(tmp_path: Path) -> None:
    job = _job(tmp_path)
    result = train_and_measure(job, SandboxConfig(timeout_s=60), target=HOSTILE + "fifo_result")
    assert result.status == "failed"
    assert "not a regular file" in result.reason


def test_reported_view_drops_measurements_and_bounds_statistics() -> None:
    job = CandidateJob(task="hopper", out_dir="x", reward_source="src", timesteps=100, seed=7)
    raw = CandidateResult(
        status="ok", fitness=4242.0, success_rate=1.0,
        evaluations=[{"fitness": 4242.0}], episode_returns=[1.0, float("inf"), "x", 2.0],  # type: ignore[list-item]
        component_stats={"a" * 500: [1.0, float("nan")]}, reward_fitness_correlation=7.0,
        env_steps=-5, wall_time_s=float("nan"), seed=99,
    )  # fmt: skip
    view = reported_view(raw, job)
    assert view.fitness is None and view.success_rate is None and view.evaluations == []
    assert view.episode_returns == [1.0, 2.0]
    assert view.component_stats == {"a" * 100: [1.0]}
    assert view.reward_fitness_correlation is None and view.env_steps == 0
    assert view.wall_time_s == 0.0 and view.seed == 7
    odd = reported_view(dataclasses.replace(raw, status="screened_out"), job)
    assert odd.status == "failed"


def test_sandboxed_worker_cannot_write_the_trusted_folder(tmp_path: Path) -> None:
    """The training worker's only writable folder is cand/train: cand/ itself is read-only."""
    job = _job(tmp_path, timesteps=128)
    result = train_and_measure(job, SandboxConfig(timeout_s=300),
                               target="tests.sandbox.targets:write_outside")
    out = Path(job.out_dir)
    assert result.status == "failed"
    probe = json.loads((out / TRAIN_DIR / "probe.json").read_text())
    assert probe["package_write"].startswith("OSError")  # a read-only root
    assert not (out / "planted.txt").exists()  # under /tmp the sandbox sees a private tmpfs
    assert not (Path(rewardgen.__file__).parent / "planted.txt").exists()


def test_a_budget_below_one_rollout_still_fits_its_checkpoints() -> None:
    """learn() runs a whole rollout: timesteps=100 with 2 x 64-step rollouts and eval_freq=10
    leaves 13 checkpoints (10, 20, ..., 128), which the evaluator must accept."""
    from rewardgen.worker.evaluate import expected_checkpoints

    job = CandidateJob(task="hopper", out_dir="x", rl=TINY_PPO, timesteps=100, eval_freq=10)
    assert expected_checkpoints(job) >= 13
    assert expected_checkpoints(dataclasses.replace(job, eval_freq=0)) == 2


def _holds(data: bytes, seed: int) -> bool:
    """Whether ``data`` holds ``seed`` as text or as a 4- or 8-byte integer."""
    return any(form in data for form in (str(seed).encode(), seed.to_bytes(4, "little"),
                                         seed.to_bytes(8, "little")))


def test_evaluation_seeds_are_fresh_secret_and_recorded(tmp_path: Path) -> None:
    """The same candidate, job seed and all, trained twice: the evaluator starts each from seeds
    drawn after training, which no file under train/ (the training job included) holds, and
    records them where a reviewer finds them to measure the same episodes again."""
    drawn = []
    for run in ("first", "second"):
        job = _job(tmp_path, out_dir=str(tmp_path / run / "cand"))
        result = train_and_measure(job, SandboxConfig(timeout_s=300))
        assert result.ok, result.reason
        out = Path(job.out_dir)
        seeds = result.evaluations[0]["seeds"]
        assert len(set(seeds)) == job.eval_episodes  # one per episode
        assert all(e["seeds"] == seeds for e in result.evaluations)  # the curve on like episodes
        # recorded: the candidate's result, the evaluator's own job and result
        assert json.loads((out / "result.json").read_text())["evaluations"] == result.evaluations
        assert json.loads((out / EVAL_DIR / "job.json").read_text())["eval_seeds"] == seeds
        assert json.loads((out / EVAL_DIR / "result.json").read_text())["evaluations"][0][
            "seeds"] == seeds
        # secret: nothing the training worker could read or write holds them
        train_job = json.loads((out / f"{TRAIN_DIR}.job.json").read_text())
        assert train_job["eval_seeds"] is None and train_job["seed"] == 3
        files = [p for p in (out / TRAIN_DIR).rglob("*") if p.is_file()]
        files += [out / f"{TRAIN_DIR}.job.json", out / f"{TRAIN_DIR}.worker.log"]
        assert len(files) >= 5  # result.json, the checkpoints, its job and log beside train/
        assert [p.name for p in files if any(_holds(p.read_bytes(), s) for s in seeds)] == []
        assert 3 + 10_000 not in seeds  # the old scheme: job.seed + an offset
        # reproducible: the recorded seeds measure the same fitness again
        truth = _independent_measurement(job, tmp_path / run)
        assert truth.fitness == result.fitness and truth.evaluations == result.evaluations
        drawn.append(seeds)
    assert set(drawn[0]).isdisjoint(drawn[1])  # the same job seed, other episodes


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_merge_fails_a_measurement_without_a_finite_fitness(bad: float) -> None:
    from rewardgen.executors.pipeline import merge

    reported = CandidateResult(status="ok", seed=3, env_steps=10)
    result = merge(CandidateResult(status="ok", fitness=bad, evaluations=[{"fitness": bad}]),
                   reported)
    assert result.status == "failed" and result.fitness is None and not result.selectable
    assert result.reason == (f"evaluation: the fitness is {bad}; only a finite fitness can be "
                             "ranked")
