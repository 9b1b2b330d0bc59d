"""Layer 3 of isolation, the OS boundary: bubblewrap around every worker that loads reward code.

Python-level restrictions are a lint; this is the boundary. A worker that loads a reward program
runs as ``bwrap ... -- python -m rewardgen.sandbox.child JOB TARGET`` with:

- new user, pid, network, ipc, uts and cgroup namespaces (``--unshare-all``), as uid/gid 65534
  with no capabilities, its own session (``--new-session``: no TIOCSTI into our terminal) and
  ``--die-with-parent``;
- a read-only view of the root file system, a private ``/tmp``, a minimal ``/dev`` and its own
  ``/proc``; only the job's output folder is writable; credential folders of the invoking user
  are masked;
- a seccomp filter (:func:`seccomp_filter`) that makes the calls a sandbox escape needs fail
  with EPERM: namespaces (setns, unshare, clone with namespace flags), mounts, ptrace and
  process_vm_readv/writev, bpf, keyrings, perf_event_open, kernel modules, kexec, reboot.

The rlimits of :mod:`.limits` still apply (they are set before ``exec`` and inherited). Where
bwrap cannot run, :func:`check_available` says so in one line and the user may choose
``sandbox.backend=process`` explicitly, which keeps rlimits and the network namespace only.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rewardgen.errors import SandboxError

BACKENDS = ("bwrap", "process")
SANDBOX_UID = 65534  # nobody
# Calls a reward program never needs and a sandbox escape does.
DENIED_SYSCALLS = (
    "setns", "unshare", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "bpf", "keyctl", "add_key", "request_key", "perf_event_open",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
    "quotactl", "lookup_dcookie", "syslog", "personality",
)  # fmt: skip
CLONE_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
MASKED_HOME_ENTRIES = (".ssh", ".aws", ".gnupg", ".config", ".netrc", ".docker", ".kube",
                       ".azure", ".git-credentials", ".pypirc")
START_CHECK_TIMEOUT_S = 20.0


@functools.lru_cache(maxsize=1)
def seccomp_filter() -> bytes:
    """The BPF program bwrap loads before ``exec``: deny :data:`DENIED_SYSCALLS` with EPERM.

    ``clone`` is denied only with a namespace flag (threads and forks still work); ``clone3``
    hides its flags in memory a filter cannot read, so it answers ENOSYS and glibc falls back
    to ``clone``, as in Docker's default profile.

    Raises:
        SandboxError: libseccomp (``pyseccomp``) is not available.
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as e:  # the wheel is pure Python over libseccomp.so.2
        raise SandboxError(
            f"the seccomp filter needs libseccomp ({e}); install it (Debian: libseccomp2) or "
            "set sandbox.backend=process"
        ) from e
    filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            continue  # a call this architecture does not have
    filt.add_rule(seccomp.ERRNO(errno.EPERM), "clone",
                  seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NAMESPACE_FLAGS, CLONE_NAMESPACE_FLAGS))
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x08000000, 0x04000000, 0x02000000,
                 0x00020000):  # any single namespace flag, not only all of them at once
        filt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("rewardgen-seccomp")
    try:
        with os.fdopen(os.dup(fd), "wb") as handle:
            filt.export_bpf(handle)
        os.lseek(fd, 0, os.SEEK_SET)
        size = os.fstat(fd).st_size
        return os.read(fd, size)
    finally:
        os.close(fd)


def filter_fd() -> int:
    """A fresh read-only-at-offset-0 fd holding the seccomp program (the caller closes it)."""
    data = seccomp_filter()
    fd = os.memfd_create("rewardgen-seccomp")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _masks() -> list[str]:
    """Arguments hiding the invoking user's credential folders and files."""
    out: list[str] = []
    home = Path(os.path.expanduser("~"))
    for name in MASKED_HOME_ENTRIES:
        path = home / name
        if path.is_dir() and not path.is_symlink():
            out += ["--tmpfs", str(path)]
        elif path.is_file() and not path.is_symlink():
            out += ["--ro-bind", "/dev/null", str(path)]
    return out


def _devices(gpu: str | None) -> list[str]:
    """GPU device nodes a CUDA worker needs (none on CPU)."""
    if not gpu:
        return []
    out: list[str] = []
    for dev in sorted(Path("/dev").glob("nvidia*")) + [Path("/dev/dri")]:
        if dev.exists():
            out += ["--dev-bind", str(dev), str(dev)]
    return out


def _under_private_tmp(paths: Sequence[str]) -> list[str]:
    """Read-only binds for the paths the worker needs that the private ``/tmp`` would hide.

    The interpreter, the virtual environment, ``sys.path`` and task folders may live under
    ``/tmp`` (a clone in a temporary folder, pytest's ``tmp_path``); they are bound back read-only.
    """
    wanted = {sys.prefix, sys.exec_prefix, sys.base_prefix, os.path.realpath(sys.executable),
              *(p for p in sys.path if p), *paths}
    out: list[str] = []
    for path in sorted(wanted):
        real = os.path.realpath(path)
        if (real == "/tmp" or real.startswith("/tmp/")) and os.path.exists(real):
            out += ["--ro-bind", real, real]
    return out


def command(argv: Sequence[str], *, writable: Sequence[str], seccomp_fd: int,
            gpu: str | None = None, network: bool = False,
            readable: Sequence[str] = ()) -> list[str]:
    """The bwrap command line that runs ``argv`` in the sandbox.

    Args:
        argv: the worker's command (``python -m rewardgen.sandbox.child ...``).
        writable: folders bound read-write (the job's output folder); everything else is
            read-only.
        seccomp_fd: an fd from :func:`filter_fd`, passed to the child (``pass_fds``).
        gpu: when set, the GPU device nodes are bound in.
        network: keep the host network (never for reward code; vision labellers only).
        readable: extra files or folders the worker reads (task files); they are readable
            anyway, except under the private ``/tmp``, where they are bound back read-only.
    """
    exe = bwrap_path()
    if exe is None:
        raise SandboxError(not_available_reason("bwrap is not installed"))
    cmd = [exe, "--unshare-all"]
    if network:
        cmd.append("--share-net")
    cmd += ["--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc", "--tmpfs", "/tmp", *_under_private_tmp(readable), *_masks(),
            *_devices(gpu)]
    for folder in writable:
        cmd += ["--bind", folder, folder]
    cmd += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--chdir", "/tmp",
            "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
            "--seccomp", str(seccomp_fd), "--", *argv]
    return cmd


def not_available_reason(detail: str) -> str:
    return (
        f"the bubblewrap sandbox cannot run here ({detail}); install it (`make sysdeps`, Debian "
        "package bubblewrap) or set sandbox.backend=process, which runs reward programs with "
        "rlimits and a network namespace only: no read-only root, no separate uid or pid "
        "namespace, no seccomp filter"
    )


@functools.lru_cache(maxsize=1)
def _probe() -> str:
    """'' when a trivial sandbox starts, else why not (run once per process)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if bwrap_path() is None:
        return "bwrap is not installed"
    try:
        fd = filter_fd()
    except SandboxError as e:
        return str(e)
    try:
        cmd = command([sys.executable, "-c", "pass"], writable=[], seccomp_fd=fd)
        proc = subprocess.run(cmd, pass_fds=(fd,), capture_output=True, text=True,
                              timeout=START_CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        os.close(fd)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"bwrap failed: {last[:200]}"
    return ""


def check_backend(backend: str) -> None:
    """Refuse to go on when ``sandbox.backend`` cannot run here (before anything is spent).

    Raises:
        SandboxError: an unknown backend, or ``bwrap`` that cannot start a sandbox.
    """
    if backend not in BACKENDS:
        raise SandboxError(f"sandbox.backend={backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "bwrap" and (reason := _probe()):
        raise SandboxError(not_available_reason(reason))
