"""The worker entry point, in process (run, traceback trimming) and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rewardgen.errors import RewardCodeError
from rewardgen.runs.atomic import atomic_write_json, read_json
from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox import child
from rewardgen.sandbox.child import failure_reason, load_target, run
from rewardgen.sandbox.contract import trimmed_traceback


def _deep(n: int) -> None:
    if n == 0:
        raise KeyError("missing")
    _deep(n - 1)


def test_load_target_errors() -> None:
    with pytest.raises(ValueError, match="is not of the form 'package.module:function'"):
        load_target("tests.sandbox.targets")
    with pytest.raises(ValueError, match="has no function 'nope'"):
        load_target("tests.sandbox.targets:nope")
    with pytest.raises(ModuleNotFoundError):
        load_target("tests.sandbox.no_such_module:fn")


def test_trimmed_traceback_keeps_only_the_last_frames() -> None:
    try:
        _deep(10)
    except KeyError as e:
        text = trimmed_traceback(e)
    assert text.count("in _deep") == 3 and "  ...\n" in text
    assert text.rstrip().endswith("KeyError: 'missing'")


def test_failure_reasons() -> None:
    assert failure_reason(RewardCodeError("line 3: bad")) == "line 3: bad"
    assert failure_reason(RuntimeError("a\n  b")) == "RuntimeError: a b"
    assert failure_reason(SystemExit()) == "SystemExit"
    assert "memory" in failure_reason(MemoryError())


def test_failed_mapping_under_a_memory_limit_names_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(child, "memory_limit_mb", lambda: 8192)
    error = ImportError("libtorch_cpu.so: failed to map segment from shared object")
    reason = failure_reason(error)
    assert reason.startswith("exceeded the memory limit of 8192 MB (ImportError: libtorch_cpu.so")


def test_run_in_process(tmp_path: Path) -> None:
    job = CandidateJob(task="hopper", out_dir=str(tmp_path), seed=3)
    assert run(job, "tests.sandbox.targets:normal").fitness == 1.5
    failed = run(job, "tests.sandbox.targets:raises")
    assert failed.status == "failed" and failed.reason == "ValueError: bad seed 3"
    assert failed.seed == 3


def test_child_process_writes_result(tmp_path: Path) -> None:
    job_path = atomic_write_json(
        tmp_path / "job.json", CandidateJob(task="hopper", out_dir=str(tmp_path)).to_dict()
    )
    cmd = [sys.executable, "-m", "rewardgen.sandbox.child", str(job_path)]
    proc = subprocess.run([*cmd, "tests.sandbox.targets:normal"], capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert read_json(tmp_path / "result.json")["status"] == "ok"
    usage = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage:" in usage.stderr
