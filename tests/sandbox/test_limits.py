"""apply_limits and enter_network_namespace, applied in real forked children (preexec_fn)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable

import pytest

from rewardgen.config import SandboxConfig
from rewardgen.sandbox import limits
from rewardgen.sandbox.limits import apply_limits, enter_network_namespace

REPORT = (
    "import json, resource; print(json.dumps({n: resource.getrlimit(getattr(resource, n)) "
    "for n in ('RLIMIT_AS', 'RLIMIT_DATA', 'RLIMIT_CPU', 'RLIMIT_NPROC', 'RLIMIT_NOFILE', "
    "'RLIMIT_FSIZE', 'RLIMIT_CORE')}))"
)
MB = 1024 * 1024
INF = resource.RLIM_INFINITY


def _limits_in_child(preexec: Callable[[], None]) -> dict[str, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", REPORT],
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_cpu_limits() -> None:
    cfg = SandboxConfig(memory_mb=2048, cpu_time_s=30, max_processes=64, max_open_files=128)
    got = _limits_in_child(lambda: apply_limits(cfg, gpu=False))
    assert got["RLIMIT_AS"] == [2048 * MB, 2048 * MB]
    assert got["RLIMIT_CPU"] == [30, 30 + limits.CPU_GRACE_S]
    assert got["RLIMIT_NPROC"] == [64, 64]
    assert got["RLIMIT_NOFILE"] == [128, 128]
    assert got["RLIMIT_FSIZE"] == [cfg.max_file_size_mb * MB] * 2
    assert got["RLIMIT_CORE"] == [0, 0]


def test_gpu_limits_cap_data_not_address_space() -> None:
    cfg = SandboxConfig(memory_mb=3000)
    before_as = resource.getrlimit(resource.RLIMIT_AS)
    got = _limits_in_child(lambda: apply_limits(cfg, gpu=True))
    assert got["RLIMIT_DATA"] == [3000 * MB, 3000 * MB]
    assert got["RLIMIT_AS"] == list(before_as)
    assert got["RLIMIT_CPU"][0] == resource.getrlimit(resource.RLIMIT_CPU)[0]  # no cpu_time_s


def _netns_in_child(preexec_first: Callable[[], None] | None = None) -> tuple[str, str]:
    """(the child's network namespace, enter_network_namespace's failure reason or '')."""
    read_fd, write_fd = os.pipe()

    def preexec() -> None:
        if preexec_first is not None:
            preexec_first()
        ok = enter_network_namespace()
        os.write(write_fd, b"" if ok else (limits.network_failure_reason or "failed").encode())

    try:
        out = subprocess.run(
            ["/bin/sh", "-c", "readlink /proc/self/ns/net"],
            preexec_fn=preexec,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.close(write_fd)
    reason = os.read(read_fd, 4096).decode()
    os.close(read_fd)
    return out.stdout.strip(), reason


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="network namespaces need Linux")
def test_network_namespace_is_new() -> None:
    child_ns, reason = _netns_in_child()
    if reason:
        pytest.skip(f"no network namespace here: {reason}")
    assert child_ns != os.readlink("/proc/self/ns/net")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user first")
def test_unprivileged_user_gets_a_user_and_network_namespace() -> None:
    def drop() -> None:
        os.setgid(65534)
        os.setuid(65534)

    child_ns, reason = _netns_in_child(drop)
    if reason.startswith("unshare"):
        pytest.skip(f"unprivileged user namespaces are disabled here: {reason}")
    assert reason == ""
    assert child_ns != os.readlink("/proc/self/ns/net")
