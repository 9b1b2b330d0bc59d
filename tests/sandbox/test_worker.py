"""run_isolated: real worker processes, real limits, real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from rewardgen.config import SandboxConfig
from rewardgen.errors import SandboxError
from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox import worker
from rewardgen.sandbox.worker import (
    ENV_ALLOWLIST,
    GPU_MEMORY_VAR,
    death_reason,
    run_isolated,
    sanitised_env,
)

T = "tests.sandbox.targets:"


def _cfg(**overrides: object) -> SandboxConfig:
    """The process backend: these tests read host pids and paths the worker reports.

    The same mechanics under bubblewrap are checked in tests/sandbox/test_bwrap.py.
    """
    base: dict[str, object] = {"timeout_s": 20.0, "memory_mb": 1024, "output_limit_kb": 64,
                               "backend": "process"}
    return SandboxConfig(**{**base, **overrides})  # type: ignore[arg-type]


def _job(tmp_path: Path, **overrides: object) -> CandidateJob:
    return CandidateJob(task="hopper", out_dir=str(tmp_path / "cand_00"), seed=7, **overrides)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def _wait_gone(pids: list[int], within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def test_normal_result_is_read_back_and_files_written(tmp_path: Path) -> None:
    job = _job(tmp_path, reward_source="def compute_reward(s, a, p):\n    return 0.0, {}\n")
    result = run_isolated(job, _cfg(), target=T + "normal")
    assert result.status == "ok" and result.fitness == 1.5 and result.env_steps == 10
    assert result.wall_time_s == 0.25  # the child's own value is kept
    assert result.seed == 7 and result.reward_sha256 and len(result.reward_sha256) == 64
    out = tmp_path / "cand_00"
    # the parent's own files lie beside the sandboxed worker's folder, not in it
    assert json.loads((tmp_path / "cand_00.job.json").read_text())["out_dir"] == str(out.resolve())
    assert json.loads((out / "result.json").read_text())["fitness"] == 1.5
    assert "== stderr" in (tmp_path / "cand_00.worker.log").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]


def test_dict_result_and_wall_time_filled(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "returns_dict")
    assert result.status == "ok" and result.fitness == 2.0
    assert result.wall_time_s > 0


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_isolated(_job(tmp_path), _cfg(timeout_s=3), target=T + "sleep_forever")
    assert result.status == "timeout"
    assert result.reason == "exceeded the wall-clock limit of 3 s"
    assert 3 <= result.wall_time_s < 10 and time.monotonic() - start < 12
    pids = [int(p) for p in (tmp_path / "cand_00" / "pids.txt").read_text().split()]
    assert _wait_gone(pids) == []
    assert not (tmp_path / "cand_00" / "result.json").exists()  # never written into its folder


def test_grandchildren_are_killed_after_a_clean_exit(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "leave_orphans")
    assert result.status == "ok"
    pids = [int(p) for p in (tmp_path / "cand_00" / "pids.txt").read_text().split()]
    assert _wait_gone(pids) == []


def test_memory_limit(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(memory_mb=1024), target=T + "allocate_8gb")
    assert result.status == "failed"
    assert result.reason == "exceeded the memory limit of 1024 MB"
    assert "MemoryError" in result.traceback


def test_resident_memory_watch_on_gpu(tmp_path: Path) -> None:
    # gpu="0" selects RLIMIT_DATA + the parent's RSS watch; no CUDA is touched by the target.
    result = run_isolated(
        _job(tmp_path), _cfg(memory_mb=300), gpu="0", target=T + "hog_resident_memory"
    )
    assert result.status == "failed"
    assert result.reason.startswith("exceeded the memory limit of 300 MB (resident")


def test_cpu_time_limit(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(cpu_time_s=1), target=T + "burn_cpu")
    assert result.status == "failed"
    assert result.reason == "exceeded the CPU time limit of 1 s (SIGXCPU)"


def test_exception_becomes_failed_result_with_traceback(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "raises")
    assert result.status == "failed"
    assert result.reason == "ValueError: bad seed 7"
    assert "_inner" in result.traceback and "ValueError: bad seed 7" in result.traceback


def test_reward_program_frames_are_kept_in_the_traceback(tmp_path: Path) -> None:
    source = (
        "import numpy as np\n\n"
        "def helper(x):\n"
        "    return 1.0 / x\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    return helper(0), {}\n"
    )
    result = run_isolated(
        _job(tmp_path, reward_source=source), _cfg(), target=T + "run_reward_program"
    )
    assert (
        result.status == "failed" and result.reason == "ZeroDivisionError: float division by zero"
    )
    assert 'File "<reward program>", line 7, in compute_reward' in result.traceback
    assert 'File "<reward program>", line 4, in helper' in result.traceback
    assert "return 1.0 / x" in result.traceback  # the program's own source line


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(output_limit_kb=64), target=T + "print_10mb")
    assert result.status == "ok"
    log_text = (tmp_path / "cand_00.worker.log").read_text()
    assert len(log_text) < 64 * 1024 + 1024
    assert "HEAD-OF-STDOUT" in log_text and "TAIL-OF-STDOUT" in log_text
    assert "bytes omitted" in log_text and "some stderr" in log_text


def test_no_network_inside_the_worker(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    worker._warned_network = False
    try:
        with caplog.at_level(logging.WARNING, logger="rewardgen.sandbox.worker"):
            port = server.getsockname()[1]
            result = run_isolated(_job(tmp_path, rl={"port": port}), _cfg(), target=T + "connect")
        if "WITH network" in caplog.text:
            pytest.skip(f"this OS gives no network namespace: {caplog.text}")
        assert result.status == "ok"
        assert "unreachable" in result.reason.lower() or "refused" in result.reason.lower()
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_network_allowed_when_configured(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    try:
        job = _job(tmp_path, rl={"port": server.getsockname()[1]})
        result = run_isolated(job, _cfg(network=True), target=T + "connect")
        assert result.reason == "connected"
    finally:
        server.close()


def test_environment_is_sanitised_and_workdir_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = ["OPENAI_API_KEY", "HF_TOKEN", "MY_SECRET_THING", "AWS_ACCESS_KEY_ID", "DB_PASSWORD"]
    for name in secrets:
        monkeypatch.setenv(name, "hunter2")
    monkeypatch.setenv("REWARDGEN_HARMLESS", "1")
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    job = _job(tmp_path, rl={"names": [*secrets, "REWARDGEN_HARMLESS"]})
    result = run_isolated(
        job, _cfg(max_open_files=256, max_file_size_mb=8), target=T + "report_env"
    )
    report = json.loads(result.reason)
    assert report["present"] == []  # an allowlist: an unknown variable does not pass either
    assert report["env"] == {"MUJOCO_GL": "egl", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    assert Path(report["cwd"]).name.startswith("rewardgen-worker-")
    assert not Path(report["cwd"]).exists()
    assert report["limits"]["RLIMIT_AS"] == 1024 * 1024 * 1024
    assert report["limits"]["RLIMIT_NOFILE"] == 256
    assert report["limits"]["RLIMIT_FSIZE"] == 8 * 1024 * 1024
    assert report["limits"]["RLIMIT_CORE"] == 0


def test_exit_code_and_last_stderr_line(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "exit_3")
    assert result.status == "failed"
    assert result.reason == "exit code 3: giving up now"
    assert "giving up now" in result.traceback
    assert not (tmp_path / "cand_00" / "result.json").exists()  # the parent writes none there
    trusted = run_isolated(_job(tmp_path), _cfg(), target=T + "exit_3", sandboxed=False)
    assert trusted.status == "failed"  # a trusted worker's folder gets the parent's result
    assert json.loads((tmp_path / "cand_00" / "result.json").read_text())["status"] == "failed"


def test_killed_by_signal(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "killed_by_signal")
    assert result.status == "failed" and result.reason == "killed by SIGKILL (memory or CPU limit?)"


def test_bad_target_is_a_failed_result(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target="tests.sandbox.targets")
    assert result.status == "failed"
    assert "is not of the form 'package.module:function'" in result.reason


def test_unstartable_worker_raises(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot start the candidate worker"):
        run_isolated(_job(tmp_path), _cfg(max_open_files=-5), target=T + "normal")


@pytest.mark.parametrize(
    ("returncode", "stderr", "expected"),
    [
        (-signal.SIGKILL, "", "killed by SIGKILL (memory or CPU limit?)"),
        (-signal.SIGXCPU, "", "exceeded the CPU time limit of 5 s (SIGXCPU)"),
        (-signal.SIGSEGV, "", "killed by SIGSEGV"),
        (1, "Traceback...\nMemoryError\n", "exceeded the memory limit of 1024 MB"),
        (2, "", "exit code 2"),
        (0, "", "the worker exited without writing result.json"),
    ],
)
def test_death_reason(returncode: int, stderr: str, expected: str) -> None:
    assert death_reason(returncode, stderr, _cfg(cpu_time_s=5)) == expected


@pytest.mark.parametrize("returncode", [-signal.SIGSEGV, 128 + signal.SIGSEGV])  # bwrap: 128 + N
def test_death_reason_blames_the_reward_program_for_an_interpreter_crash(returncode: int) -> None:
    reason = death_reason(returncode, "", _cfg(), runs_reward=True)
    assert reason.startswith("killed by SIGSEGV: the reward program crashed the Python interpreter")
    assert death_reason(returncode, "", _cfg()) == "killed by SIGSEGV"  # a trusted worker


def test_sanitised_env_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    for name in ("GITHUB_TOKEN", "OPENAI_APIKEY", "PGPASSWORD", "SSHPASS", "GITHUB_PAT",
                 "DATABASE_URL", "HOME", "USER", "SOMETHING_ELSE"):
        monkeypatch.setenv(name, "x")
    env = sanitised_env("1", {"VLM_API_KEY": "given"}, gpu_memory_fraction=0.25)
    assert env["OMP_NUM_THREADS"] == "4" and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["VLM_API_KEY"] == "given" and env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.250"
    assert set(env) <= ENV_ALLOWLIST | {"VLM_API_KEY", "CUDA_VISIBLE_DEVICES", "PYTHONPATH",
                                        "PYTHONUNBUFFERED", "MUJOCO_GL", GPU_MEMORY_VAR,
                                        "XLA_PYTHON_CLIENT_MEM_FRACTION"}
    assert os.environ["GITHUB_TOKEN"] == "x"
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in sanitised_env(None)


@pytest.mark.parametrize(("target", "reason"), [
    ("result_fifo", r"result\.json is not a regular file \(a FIFO\)"),
    ("result_folder", r"result\.json is not a regular file \(a folder\)"),
    ("result_symlink", r"result\.json is a symbolic link"),
    ("result_deep", r"result\.json is nested 200000 deep \(limit 64\)"),
    ("result_huge_int", r"result\.json holds an integer of 400 digits"),
    ("result_wrong_types", r"unreadable result\.json: ValueError: unknown candidate status"),
])  # fmt: skip
def test_a_hostile_result_json_is_a_failed_result_and_is_discarded(target: str, reason: str,
                                                                  tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_isolated(_job(tmp_path), _cfg(), target=T + target)
    assert time.monotonic() - start < 15  # a FIFO never blocks the parent
    assert result.status == "failed" and result.fitness is None
    assert re.search(reason, result.reason), result.reason
    assert "\n" not in result.reason
    out = tmp_path / "cand_00"
    assert not (out / "result.json").exists() and not (out / "result.json").is_symlink()


def test_the_parents_files_survive_a_worker_that_takes_their_old_names(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "log_as_folder")
    assert result.status == "ok" and result.fitness == 1.0
    assert (tmp_path / "cand_00.worker.log").is_file()
    assert (tmp_path / "cand_00" / "worker.log").is_dir()  # the worker's, left alone


def test_a_deep_chain_in_the_working_directory_is_removed(tmp_path: Path) -> None:
    result = run_isolated(_job(tmp_path), _cfg(), target=T + "deep_chain_in_cwd")
    assert result.status == "ok" and result.fitness == 1.0
    assert not Path(result.reason).exists()  # shutil.rmtree raised RecursionError here
