"""The run directory: manifest, events, atomic artifacts, version check."""

from __future__ import annotations

import json

import pytest

from rewardgen.errors import RunDirError
from rewardgen.results import CandidateResult
from rewardgen.store import FORMAT_VERSION, CandidateRecord, RunStore


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
