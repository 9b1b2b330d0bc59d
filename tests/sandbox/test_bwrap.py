"""The bubblewrap boundary around workers that load reward code (real bwrap, real seccomp)."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

import pytest

import rewardgen
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


def test_bwrap_binds_only_what_a_worker_needs(tmp_path: Path) -> None:
    """No host root, home, /run, /var or run directory: only the OS, the interpreter and its
    environment, rewardgen's package and data folders, the target's package, the task folder."""
    fd = bwrap.filter_fd()
    readable = bwrap.worker_paths(PROBE, [str(tmp_path / "tasks")])
    try:
        cmd, fds = bwrap.command(["python"], readable=readable, writable=[str(tmp_path)],
                                 seccomp_fd=fd)
    finally:
        os.close(fd)
    for handle in fds:
        os.close(handle)
    sources = [cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("--ro-bind", "--bind")]
    assert "/" not in sources and not any(s.startswith(("/home", "/run", "/var")) for s in sources)
    checkout = Path(rewardgen.__file__).resolve().parent.parent
    assert str(checkout) not in sources  # in a checkout: the package, never the whole tree
    assert str(checkout / "rewardgen") in sources and str(checkout / "tests") in sources
    assert "/etc/shadow" not in sources and "/etc/passwd" not in sources
    assert cmd[cmd.index("--bind") + 1] == str(tmp_path)  # the only writable folder
    if os.geteuid() == 0:  # root: no user namespace (it would map to host root), setpriv drops
        assert "--unshare-user" not in cmd and "--unshare-all" not in cmd
        assert cmd[cmd.index("--reuid") + 1] == str(bwrap.SANDBOX_UID)


def test_bwrap_refuses_to_bind_the_host_root() -> None:
    with pytest.raises(SandboxError, match="refusing to bind the host's root folder"):
        bwrap.command(["python"], readable=["/"], writable=[], seccomp_fd=0)


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
