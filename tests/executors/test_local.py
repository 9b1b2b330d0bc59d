"""LocalExecutor: real isolated worker processes in parallel, reporting as each finishes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors import local as local_mod
from rewardgen.executors import make_executor
from rewardgen.executors.local import LocalExecutor, default_workers, visible_gpus
from rewardgen.runs.records import CandidateJob, CandidateResult

TARGET = "tests.executors.targets:dispatch"


def _sandbox(**overrides: object) -> SandboxConfig:
    base: dict[str, object] = {"timeout_s": 60.0, "memory_mb": 1024, "output_limit_kb": 16}
    return SandboxConfig(**{**base, **overrides})  # type: ignore[arg-type]


def _executor(workers: int | None, device: str = "cpu", **sandbox: object) -> LocalExecutor:
    return LocalExecutor(ExecutorConfig(workers=workers), _sandbox(**sandbox), RLConfig(), device,
                         target=TARGET)


def _job(tmp_path: Path, name: str, behaviour: str, seed: int = 0, device: str = "cpu") -> CandidateJob:
    return CandidateJob(task=behaviour, out_dir=str(tmp_path / name), seed=seed, device=device)


def test_slow_candidate_does_not_hold_back_the_fast_one(tmp_path):
    done: list[tuple[int, float, CandidateResult]] = []
    jobs = [_job(tmp_path, "slow", "sleep", seed=40), _job(tmp_path, "fast", "sleep", seed=0)]
    start = time.monotonic()
    results = _executor(workers=2).run(jobs, lambda i, r: done.append((i, time.monotonic() - start, r)))

    assert [i for i, _, _ in done] == [1, 0]  # the fast one is reported first
    assert done[1][1] - done[0][1] > 2.0  # ... seconds before the slow one finishes
    assert [r.fitness for r in results] == [40.0, 0.0]  # results stay in job order
    assert all((tmp_path / name / "result.json").is_file() for name in ("slow", "fast"))


def test_pool_runs_candidates_in_parallel(tmp_path):
    jobs = [_job(tmp_path, f"c{i}", "sleep", seed=30) for i in range(2)]
    start = time.monotonic()
    results = _executor(workers=2).run(jobs)
    wall = time.monotonic() - start
    assert [r.status for r in results] == ["ok", "ok"]
    # Two 3 s candidates side by side: well under the 6 s they would take one after the other.
    assert wall < 5.5, wall


def test_memory_limit_holds_for_every_worker(tmp_path):
    jobs = [_job(tmp_path, "hog_a", "allocate"), _job(tmp_path, "hog_b", "allocate"),
            _job(tmp_path, "fine", "sleep", seed=1)]
    results = _executor(workers=2, memory_mb=1024).run(jobs)
    assert [r.status for r in results] == ["failed", "failed", "ok"]
    for r in results[:2]:
        assert "memory limit of 1024 MB" in r.reason


def test_gpus_round_robin_through_cuda_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    jobs = [_job(tmp_path, f"c{i}", "report_gpu", device="cuda:1") for i in range(3)]
    executor = _executor(workers=2, device="cuda")
    assert executor.gpus == ["3", "5"]
    results = executor.run(jobs)
    # Each worker sees only its GPU, as device 0, so cuda:N becomes cuda.
    assert [r.reason for r in results] == ["3|cuda", "5|cuda", "3|cuda"]


def test_device_pins_one_gpu_or_hides_them(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpus("cuda:1") == ["5"]
    assert visible_gpus("cpu") == []
    with pytest.raises(ConfigError, match=r"device='cuda:2' but only 2 GPU\(s\) are visible"):
        visible_gpus("cuda:2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus("auto") == []


def test_default_pool_is_cores_over_cores_per_candidate(monkeypatch):
    monkeypatch.setattr(local_mod, "cores", lambda: 16)
    assert default_workers(RLConfig(n_envs=4, vec_env="subproc")) == 4
    assert default_workers(RLConfig(n_envs=4, vec_env="dummy")) == 16
    assert default_workers(RLConfig(n_envs=32, vec_env="subproc")) == 1
    executor = LocalExecutor(ExecutorConfig(), _sandbox(), RLConfig(n_envs=8, vec_env="subproc"), "cpu")
    assert executor.workers == 2


def test_bad_worker_count_and_unknown_executor_are_config_errors():
    with pytest.raises(ConfigError, match=r"executor.workers=0 must be at least 1"):
        _executor(workers=0)
    with pytest.raises(ConfigError, match=r"unknown executor 'dask'; valid executors: local, ray"):
        make_executor(ExecutorConfig(name="dask"), _sandbox(), RLConfig(), "cpu")


def test_no_jobs_is_no_work():
    assert _executor(workers=2).run([]) == []
