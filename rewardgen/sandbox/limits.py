"""Layer 3 of isolation, inside the worker: resource limits and a private network namespace.

Both functions run in the forked child *before* ``exec`` (``subprocess.Popen(preexec_fn=...)``),
so the limits bind the candidate's interpreter and everything it spawns, and nothing it imports
can undo them. Code in a ``preexec_fn`` must not log, allocate much, or take locks another thread
may hold at fork time; hence plain ``resource``/``ctypes`` calls and a failure *reason* that the
caller reports from the parent.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys

from rewardgen.config import SandboxConfig

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CPU_GRACE_S = 5  # SIGXCPU at the soft limit; SIGKILL only this much later (hard limit)
PR_SET_PDEATHSIG = 1
MB = 1024 * 1024

network_failure_reason = ""  # why enter_network_namespace() last returned False


def _set(limit: int, soft: int, hard: int | None = None) -> None:
    """Set a limit without raising the current hard limit (an unprivileged process cannot)."""
    _, cur_hard = resource.getrlimit(limit)
    hard = soft if hard is None else hard
    if cur_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, cur_hard), min(hard, cur_hard)
    resource.setrlimit(limit, (soft, hard))


def apply_limits(cfg: SandboxConfig, *, gpu: bool) -> None:
    """Bind the current process (and its future children) to the sandbox's resource limits.

    On CPU the address space is capped at ``cfg.memory_mb`` (torch + SB3 + MuJoCo need about
    4 GB of it). CUDA reserves far more *virtual* memory than it uses, so with a GPU the data
    segment is capped instead and the parent watches the resident set size.

    Args:
        cfg: the sandbox limits.
        gpu: whether the worker may use a GPU.
    """
    memory = int(cfg.memory_mb) * MB
    _set(resource.RLIMIT_DATA if gpu else resource.RLIMIT_AS, memory)
    if cfg.cpu_time_s:
        _set(resource.RLIMIT_CPU, int(cfg.cpu_time_s), int(cfg.cpu_time_s) + CPU_GRACE_S)
    if cfg.max_processes:
        _set(resource.RLIMIT_NPROC, int(cfg.max_processes))
    _set(resource.RLIMIT_NOFILE, int(cfg.max_open_files))
    _set(resource.RLIMIT_FSIZE, int(cfg.max_file_size_mb) * MB)
    _set(resource.RLIMIT_CORE, 0)
    die_with_parent()


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when the thread that started it dies.

    The worker leads its own session, so ``kill -9`` of the run's process group does not reach
    it; without this it would train on, orphaned, and write into a run directory that a resume
    is already retraining. Linux only; elsewhere the resume kills such leftovers instead.
    """
    if _LIBC is not None and sys.platform.startswith("linux") and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _load_libc() -> ctypes.CDLL | None:
    # Resolved at import, in the parent: find_library may spawn ldconfig, which must not happen
    # inside a preexec_fn. The interpreter itself links libc, so its own symbols suffice.
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_network_namespace() -> bool:
    """Move the current process into a new network namespace that holds only a down loopback.

    As root this is ``unshare(CLONE_NEWNET)``; otherwise a user namespace is created with it
    (``CLONE_NEWUSER | CLONE_NEWNET``) mapping the caller's uid/gid to themselves, so files the
    worker writes keep their owner. Every socket then fails with "network is unreachable",
    including connections to servers on the host's 127.0.0.1.

    Returns:
        True when the process is now in a fresh namespace; False when the OS refuses (not Linux,
        user namespaces disabled, seccomp in a container), with the reason left in
        :data:`network_failure_reason` for the caller to report.
    """
    global network_failure_reason
    network_failure_reason = ""
    if not sys.platform.startswith("linux"):
        network_failure_reason = "network namespaces need Linux"
        return False
    libc = _LIBC
    if libc is None or not hasattr(libc, "unshare"):
        network_failure_reason = "libc has no unshare(); network namespaces are unavailable"
        return False
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0 and libc.unshare(CLONE_NEWNET) == 0:
        return True
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        network_failure_reason = (
            f"unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: {errno.errorcode.get(err, err)} "
            f"({os.strerror(err)}); enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1) or run as root"
        )
        return False
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    except OSError as e:
        # The namespace exists and has no network; only the id mapping failed (files the worker
        # writes would show as nobody), which is still isolation.
        network_failure_reason = f"uid/gid map of the user namespace failed: {e}"
    return True
