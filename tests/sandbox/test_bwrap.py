"""The bubblewrap boundary around workers that load reward code (real bwrap, real seccomp)."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

import pytest

from rewardgen.config import SandboxConfig
from rewardgen.errors import SandboxError
from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox import bwrap
from rewardgen.sandbox.worker import run_isolated

PROBE = "tests.sandbox.targets:probe_sandbox"


def _probe(tmp_path: Path, backend: str) -> dict:
    with socket.socket() as listener:  # a service on the host's loopback
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        job = CandidateJob(task="hopper", out_dir=str(tmp_path / backend),
                           vision={"port": listener.getsockname()[1]})
        result = run_isolated(job, SandboxConfig(backend=backend, timeout_s=60), target=PROBE)
    assert result.ok, result.reason
    return json.loads((tmp_path / backend / "probe.json").read_text())


def test_bwrap_worker_is_nobody_in_its_own_namespaces_with_seccomp(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "bwrap")
    assert probe["uid"] == probe["gid"] == bwrap.SANDBOX_UID
    assert probe["visible_pids"] <= 5  # its own pid namespace: none of the host's processes
    assert probe["seccomp"] == "2"  # a filter is loaded
    assert probe["unshare"] == [-1, errno.EPERM] and probe["setns"] == [-1, errno.EPERM]
    # Its own loopback only: the host's listener is not there (refused, not reached).
    assert probe["connect"] == f"OSError: {errno.ECONNREFUSED}"
    assert probe["home"] == "/tmp"


def test_process_backend_keeps_the_network_namespace_only(tmp_path: Path) -> None:
    probe = _probe(tmp_path, "process")
    assert probe["uid"] == os.getuid() and probe["seccomp"] == "0"
    assert probe["connect"] == f"OSError: {errno.ENETUNREACH}"


def test_bwrap_hides_credential_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("secret")
    (home / ".netrc").write_text("machine x password y")
    monkeypatch.setenv("HOME", str(home))
    args = bwrap._masks()
    assert ["--tmpfs", str(home / ".ssh")] == args[args.index("--tmpfs"):][:2]
    assert ["--ro-bind", "/dev/null", str(home / ".netrc")] == args[-3:]


def test_check_backend_refuses_when_bwrap_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap.check_backend("bwrap")  # installed by `make sysdeps`
    bwrap.check_backend("process")
    with pytest.raises(SandboxError, match="sandbox.backend='vm' is not one of bwrap, process"):
        bwrap.check_backend("vm")
    monkeypatch.setenv("PATH", "/nonexistent")
    bwrap._probe.cache_clear()
    try:
        with pytest.raises(SandboxError, match=r"bwrap is not installed.*sandbox.backend=process"):
            bwrap.check_backend("bwrap")
        bwrap.check_backend("process")
    finally:
        bwrap._probe.cache_clear()


def test_seccomp_filter_is_a_bpf_program() -> None:
    program = bwrap.seccomp_filter()
    assert len(program) % 8 == 0 and len(program) > 8 * len(bwrap.DENIED_SYSCALLS)


def _marked(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if name.isdigit() and marker.encode() in cmdline:
            found.append(int(name))
    return found


def test_timeout_kills_double_forked_processes_in_the_sandbox(tmp_path: Path) -> None:
    out = tmp_path / "cand"
    job = CandidateJob(task="hopper", out_dir=str(out))
    result = run_isolated(job, SandboxConfig(timeout_s=4), target="tests.sandbox.targets:sleep_forever_marked")
    assert result.status == "timeout"
    assert (out / "started").read_text() == "yes"
    deadline = time.monotonic() + 5
    while _marked(str(out.resolve())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(str(out.resolve())) == []
