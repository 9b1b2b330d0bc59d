"""RayExecutor on a real local Ray cluster bound to 127.0.0.1, started by this module."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
import time
from pathlib import Path

import pytest

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors import make_executor
from rewardgen.executors.ray import RayExecutor, check_address, pack_dir, unpack_into
from rewardgen.jobs import candidate_job
from rewardgen.runs.records import CandidateJob
from tests.helpers import tiny_config

ray = pytest.importorskip("ray")
TARGET = "tests.executors.targets:dispatch"
SANDBOX = SandboxConfig(timeout_s=120.0, memory_mb=2048, output_limit_kb=16, smoke_states=8)


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing leaves this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1", object_store_memory=100 * 1024**2)
    yield ray
    ray.shutdown()


def _executor(sandbox: SandboxConfig = SANDBOX, **cfg: object) -> RayExecutor:
    return RayExecutor(ExecutorConfig(name="ray", **cfg), sandbox, RLConfig(), "cpu",  # type: ignore[arg-type]
                       target=TARGET)


def _job(tmp_path: Path, name: str, behaviour: str, seed: int = 0) -> CandidateJob:
    return CandidateJob(task=behaviour, out_dir=str(tmp_path / "gen_000" / name), seed=seed, device="cpu")


def test_real_candidate_trains_on_a_node_and_its_artifacts_come_back(cluster, tmp_path):
    cfg = tiny_config("executor=ray", "executor.address=auto", "device=cpu")
    out_dir = tmp_path / "gen_000" / "cand_00"
    job = candidate_job(cfg, str(out_dir), None, "native")
    executor = make_executor(cfg.executor, cfg.sandbox, cfg.rl, cfg.device)
    assert isinstance(executor, RayExecutor) and executor.workers == 2

    [result] = executor.run([job])

    assert result.status == "ok", (result.reason, result.traceback)
    assert result.env_steps >= 256 and result.fitness is not None
    # Sandboxed training and the trusted evaluation both ran on the node; all came back.
    for name in ("result.json", "policy.zip", "trajectories.npz", "train.worker.log",
                 "train/progress.json", "evaluation/result.json", "evaluation/worker.log"):
        assert (out_dir / name).is_file(), name
    assert list((out_dir / "train" / "checkpoints").glob("*.safetensors"))
    assert any((out_dir / "train" / "tb").rglob("events.out.tfevents.*"))
    assert json.loads((out_dir / "result.json").read_text())["fitness"] == result.fitness
    assert json.loads((out_dir / "job.json").read_text())["out_dir"] == str(out_dir)


def test_lost_worker_is_a_failed_candidate_and_the_others_finish(cluster, tmp_path):
    jobs = [_job(tmp_path, "cand_00", "kill_ray_worker"), _job(tmp_path, "cand_01", "artifacts")]
    done: list[int] = []
    # The process backend: inside bubblewrap the worker could not reach (kill) its supervisor.
    process = dataclasses.replace(SANDBOX, backend="process")
    results = _executor(process).run(jobs, lambda i, r: done.append(i))

    assert sorted(done) == [0, 1]
    lost, fine = results
    assert lost.status == "failed"
    assert "the Ray task was lost (WorkerCrashedError)" in lost.reason
    assert json.loads((tmp_path / "gen_000" / "cand_00" / "result.json").read_text())["status"] == "failed"
    assert fine.status == "ok" and fine.fitness == 2.5
    cand = tmp_path / "gen_000" / "cand_01"
    assert (cand / "policy.zip").read_bytes() == b"PK-fake-policy" * 1000
    assert (cand / "tb" / "PPO_1" / "events.out.tfevents.1").is_file()


def test_fast_candidate_is_reported_before_the_slow_one(cluster, tmp_path):
    # 6 s apart: a loaded machine delays one worker's start by seconds, never the order
    jobs = [_job(tmp_path, "slow", "sleep", seed=60), _job(tmp_path, "fast", "sleep", seed=0)]
    done: list[tuple[int, float]] = []
    start = time.monotonic()
    results = _executor().run(jobs, lambda i, r: done.append((i, time.monotonic() - start)))
    assert [i for i, _ in done] == [1, 0]
    assert done[1][1] - done[0][1] > 1.5
    assert [r.fitness for r in results] == [60.0, 0.0]


def test_workers_caps_candidates_in_flight(cluster, tmp_path):
    jobs = [_job(tmp_path, f"cand_{i:02d}", "sleep", seed=15) for i in range(2)]
    start = time.monotonic()
    results = _executor(workers=1).run(jobs)
    assert [r.status for r in results] == ["ok", "ok"]
    assert time.monotonic() - start > 3.0  # one after the other, not side by side


def test_request_the_cluster_cannot_hold_is_a_config_error(cluster):
    with pytest.raises(ConfigError, match=r"executor.gpus_per_candidate=1 but the Ray cluster has 0 GPUs"):
        _executor(gpus_per_candidate=1.0).connect()
    with pytest.raises(ConfigError, match=r"cpus_per_candidate=0 must be > 0"):
        _executor(cpus_per_candidate=0.0)


def test_addresses():
    assert check_address("auto") == "auto"
    assert check_address("local") == "local"
    assert check_address(None) is None
    assert check_address("ray://head:10001") == "ray://head:10001"
    assert check_address("10.0.0.1:6379") == "10.0.0.1:6379"
    with pytest.raises(ConfigError, match=r"executor.address='head' is not a Ray address"):
        check_address("head")


def test_archive_round_trip_and_hostile_members(tmp_path):
    src = tmp_path / "src"
    (src / "tb").mkdir(parents=True)
    (src / "result.json").write_text("{}")
    (src / "tb" / "events").write_bytes(b"e")
    assert sorted(unpack_into(pack_dir(src), tmp_path / "dst")) == ["result.json", "tb/events"]

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("../escaped.txt", "ok.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    assert unpack_into(buffer.getvalue(), tmp_path / "box") == ["ok.txt"]
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "box" / "link").exists()



def test_no_running_cluster_names_the_one_machine_address(monkeypatch):
    """executor.address=auto without a cluster: one line that names executor.address=local.

    Ray's ``auto`` finds any cluster running on this machine (this module's own, or another
    test run's), so the state "no cluster" is made here: ray.init fails as it does then, with
    Ray's own words."""
    said = ("Could not find any running Ray instance. Please specify the one to connect to by "
            "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    def no_cluster(**kwargs):
        assert kwargs["address"] == "auto"
        raise ConnectionError(said)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(ConfigError) as raised:
        RayExecutor(ExecutorConfig(name="ray", address="auto"), SANDBOX, RLConfig(), "cpu").connect()
    line = str(raised.value)
    assert line.startswith("executor=ray cannot join a Ray cluster at executor.address=auto: use "
                           "executor.address=local to start a one-machine cluster here")
    assert "\n" not in line and "RAY_ADDRESS" not in line and "Could not find any running" in line


def test_schedule_prunes_a_candidate_on_a_node_through_the_pruner_actor(cluster, tmp_path):
    from tests.executors.test_follow import BUDGET, strong_rival

    cfg = tiny_config("executor=ray", "executor.address=auto", "device=cpu",
                      f"train.timesteps={BUDGET}")
    out_dir = tmp_path / "gen_000" / "cand_00"
    job = candidate_job(cfg, str(out_dir), None, "native")
    executor = make_executor(cfg.executor, cfg.sandbox, cfg.rl, cfg.device)

    [result] = executor.run([job], pruner=strong_rival())

    assert result.status == "pruned", (result.status, result.reason)
    assert "rung 0 (128 env steps)" in result.reason and result.env_steps == 128
    assert json.loads((out_dir / "result.json").read_text())["status"] == "pruned"
    assert (out_dir / "policy.zip").is_file()  # the pruned checkpoint came back from the node
    assert json.loads((out_dir / "train" / "progress.json").read_text())["timesteps"] < BUDGET / 4
