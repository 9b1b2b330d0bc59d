"""The run directory: manifest, events, atomic artifacts, version check, lock and recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardgen.errors import RunDirError
from rewardgen.runs.lock import RunLock, stale_workers
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import FORMAT_VERSION, CandidateRecord, RunStore


def test_create_writes_manifest_with_versions(tmp_path):
    store = RunStore.create(tmp_path / "run", {"task": "hopper", "method": "eureka"})
    manifest = store.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["task"] == "hopper"
    assert "gymnasium" in manifest["packages"]
    assert [e["event"] for e in store.events()] == ["run_started"]


def test_events_ignore_a_torn_last_line(tmp_path):
    store = RunStore.create(tmp_path, {"task": "hopper"})
    store.event("a", x=1)
    with open(store.events_path, "a") as f:
        f.write('{"event": "half')
    assert [e["event"] for e in store.events()] == ["run_started", "a"]


def test_results_round_trip_and_best_copy(tmp_path):
    store = RunStore.create(tmp_path, {"task": "hopper"})
    store.write_responses(0, [{"text": "answer zero"}, {"text": "answer one"}])
    store.write_reward(0, 1, "def compute_reward(s, a, p):\n    return 0.0, {}\n")
    result = CandidateResult(status="ok", fitness=1.5, evaluations=[{"timesteps": 10, "fitness": 1.5}])
    store.write_result(0, 1, result)
    (store.cand_dir(0, 1) / "policy.zip").write_bytes(b"zip")
    record = store.read_record(0, 1)
    assert record is not None and record.result.fitness == 1.5
    assert record.response == "answer one"
    assert store.read_record(0, 0) is None  # answer saved, not trained yet
    assert store.read_responses(0)[1]["text"] == "answer one"
    store.save_best(record)
    assert (store.best_dir / "reward.py").read_text().startswith("def compute_reward")
    assert (store.best_dir / "policy.zip").read_bytes() == b"zip"
    assert json.loads((store.best_dir / "origin.json").read_text())["candidate"] == "gen_000/cand_01"
    kinds = [e["event"] for e in store.events()]
    assert kinds == ["run_started", "responses_saved", "candidate_done", "best_updated"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_open_rejects_foreign_and_old_directories(tmp_path):
    with pytest.raises(RunDirError, match="not a rewardgen run directory"):
        RunStore.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 0, "rewardgen_version": "0.0.1"}))
    with pytest.raises(RunDirError, match=r"written by rewardgen 0\.0\.1"):
        RunStore.open(tmp_path)


def test_record_label():
    record = CandidateRecord(3, 7, None, CandidateResult(status="rejected", reason="x"))
    assert record.label == "gen_003/cand_07"


def test_run_lock_refuses_a_second_holder_in_one_line(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunDirError, match=rf"in use by another rewardgen process \(pid {os.getpid()} ") as info:
            RunLock(tmp_path).acquire()
        assert "\n" not in str(info.value) and "rewardgen-resume" in str(info.value)
    with RunLock(tmp_path):  # released: free again
        pass


def test_run_lock_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from rewardgen.runs.lock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"pid {holder.pid} "):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(tmp_path).acquire().release()  # kill -9 left the file, not the lock


def test_create_refuses_another_runs_directory(tmp_path):
    RunStore.create(tmp_path, {"task": "hopper", "method": "eureka", "seed": 0})
    RunStore.create(tmp_path, {"task": "hopper", "method": "eureka", "seed": 0})  # same run: fine
    with pytest.raises(RunDirError, match=r"holds a run with task=hopper seed=0, not task=ant seed=1"):
        RunStore.create(tmp_path, {"task": "ant", "method": "eureka", "seed": 1})


def test_version_mismatch_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99, "rewardgen_version": "9.0"}))
    with pytest.raises(RunDirError, match=r"run-directory format 99\); this is rewardgen .* \(format 1\)") as info:
        RunStore.create(tmp_path, {"task": "hopper"})
    assert "\n" not in str(info.value)


def _fake_worker(job: Path) -> subprocess.Popen[bytes]:
    """A process whose command line looks like a sandbox worker of ``job`` (as ps shows it)."""
    job.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "-m", "rewardgen.sandbox.child", str(job), "x:y"], start_new_session=True)


def test_recover_kills_stale_workers_and_temp_files_of_this_run_only(tmp_path):
    store = RunStore.create(tmp_path / "run", {"task": "hopper"})
    ours = _fake_worker(store.cand_dir(0, 1) / "job.json")
    theirs = _fake_worker(tmp_path / "other" / "gen_000" / "cand_00" / "job.json")
    try:
        deadline = time.monotonic() + 10
        while not stale_workers(store.root) and time.monotonic() < deadline:
            time.sleep(0.02)
        (store.best_dir).mkdir()
        (store.best_dir / ".reward.py.tmp").write_text("half")
        (store.gen_dir(0) / ".responses.json.abc.tmp").write_text("half")
        report = store.recover()
        assert report == {"killed_workers": [ours.pid], "temp_files": 2}
        assert ours.wait(timeout=5) == -signal.SIGKILL
        assert theirs.poll() is None  # another run's worker is none of our business
        assert not list(store.root.rglob("*.tmp"))
        assert store.events()[-1]["event"] == "recovered"
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def test_clear_interrupted_keeps_inputs_and_finished_results(tmp_path):
    store = RunStore.create(tmp_path, {"task": "hopper"})
    cand = store.cand_dir(0, 0)
    (cand / "tb").mkdir(parents=True)
    for name in ("response.md", "reward.py", "job.json", "progress.json", "tb/events"):
        (cand / name).write_text("x")
    assert store.clear_interrupted(cand, keep=("response.md", "reward.py"))
    assert sorted(p.name for p in cand.iterdir()) == ["response.md", "reward.py"]
    assert store.events()[-1]["removed"] == ["job.json", "progress.json", "tb"]
    assert not store.clear_interrupted(cand, keep=("response.md", "reward.py"))  # nothing left
    store.write_result(0, 0, CandidateResult(status="ok", fitness=1.0), recovered=True)
    assert not store.clear_interrupted(cand)  # finished: never touched
    assert store.events()[-1]["recovered"] is True
    assert store.logged_candidates() == {(0, 0)}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_fitness_is_never_the_best(bad):
    from rewardgen.runs.store import best_record

    def rec(g, i, f):
        return CandidateRecord(g, i, "", CandidateResult("ok", fitness=f))

    history = [[rec(0, 0, bad), rec(0, 1, -5.0)], [rec(1, 0, -7.0), rec(1, 1, bad)]]
    assert best_record(history, "all_time").label == "gen_000/cand_01"
    assert best_record(history, "iteration").label == "gen_001/cand_00"
    assert best_record([[rec(0, 0, bad)]], "all_time") is None
    assert best_record([[rec(0, 0, 1.0)], [rec(1, 0, bad)]], "iteration").label == "gen_000/cand_00"


def _deep_chain(root: Path, depth: int) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open(".bait.tmp", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_recovery_and_clearing_survive_what_a_worker_left_in_train(tmp_path):
    store = RunStore.create(tmp_path / "run", {"task": "hopper"})
    cand = store.cand_dir(0, 0)
    train = cand / "train"
    train.mkdir(parents=True)
    _deep_chain(train, 1500)  # rglob and shutil.rmtree raised RecursionError on this
    os.mkfifo(train / ".result.json.x.tmp")
    (train / "link.tmp").symlink_to(tmp_path / "outside.tmp")
    (tmp_path / "outside.tmp").write_text("not the run's")
    (cand / ".result.json.abc.tmp").write_text("half")  # the parent's own, in its own folder
    (cand / "reward.py").write_text("x")
    assert store.recover() == {"killed_workers": [], "temp_files": 1}
    assert (train / ".result.json.x.tmp").exists()  # nothing below train/ is the parent's
    assert store.clear_interrupted(cand, keep=("reward.py",))
    assert sorted(p.name for p in cand.iterdir()) == ["reward.py"]
    assert (tmp_path / "outside.tmp").read_text() == "not the run's"
