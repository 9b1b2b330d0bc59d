"""Layer 3 of isolation, the OS boundary: bubblewrap around every worker that loads reward code.

Python-level restrictions are a lint; this is the boundary. A worker that loads a reward program
runs as ``bwrap ... -- python -m rewardgen.sandbox.child JOB TARGET`` with:

- a **real unprivileged host identity**: started by an ordinary user, the worker is that user
  in a new user namespace; started by root, bwrap runs without a user namespace (one would map
  the sandbox's uid to host root) and ``setpriv`` drops to host uid/gid :data:`SANDBOX_UID`
  (``nobody``), no groups, no capabilities, before the interpreter starts;
- new pid, network, ipc, uts and cgroup namespaces, its own session (``--new-session``: no
  TIOCSTI into our terminal) and ``--die-with-parent``;
- **nothing of the host but what it needs**, read-only: /usr (and the /bin, /lib links), a few
  /etc files, the interpreter and its environment, rewardgen's package and data folders, the
  target's package and the task's folder (:func:`worker_paths`). No home, ``/root``, ``/run``,
  ``/var``, LLM cache, run directory or other candidates' folders, so no host path socket
  either. Only the job's output folder is writable; ``/tmp`` and ``/dev/shm`` are private
  tmpfs of bounded size;
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
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rewardgen.errors import SandboxError

log = logging.getLogger(__name__)

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
NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
              "--unshare-cgroup-try")  # all but the user namespace (started as root)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the dynamic loader, glibc and EGL read from /etc; never passwd/shadow/ssh/ssl/hosts.
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives",
               "glvnd", "nsswitch.conf")
GPU_SYS_PATHS = ("/sys/bus/pci", "/sys/devices", "/sys/module/nvidia")  # CUDA enumerates these
MB = 1024 * 1024
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


def setpriv_path() -> str | None:
    return shutil.which("setpriv")


def starts_as_root() -> bool:
    """Whether rewardgen runs as host root, so the sandbox must drop to :data:`SANDBOX_UID`.

    Started by root, bubblewrap maps its ``--uid`` inside to uid 0 outside: the worker would own
    every root-owned file. As root we therefore run bwrap *without* a user namespace (root may
    create the other namespaces itself) and drop to the real host identity
    :data:`SANDBOX_UID` with ``setpriv`` right before the worker's interpreter starts.
    """
    return os.geteuid() == 0


def _ancestors(path: str) -> list[str]:
    """``/a``, ``/a/b`` for ``/a/b/c``: the folders bwrap must create (world-readable) first."""
    parts = Path(path).parts[1:-1]
    return [str(Path("/", *parts[: i + 1])) for i in range(len(parts))]


def _system_binds() -> list[str]:
    """The OS the interpreter needs, read-only: /usr and its top-level links, a few /etc files."""
    out: list[str] = []
    for top in SYSTEM_DIRS:
        path = Path(top)
        if path.is_symlink():
            out += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            out += ["--ro-bind", top, top]
    out += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_ENTRIES:
        path = Path("/etc", name)
        if path.exists():
            out += ["--ro-bind", str(path), str(path)]
    return out


def _identity_files(uid: int, gid: int) -> tuple[list[str], list[int]]:
    """A one-line /etc/passwd and /etc/group naming only the sandbox user (``getpass`` works)."""
    args: list[str] = []
    fds: list[int] = []
    for name, text in (("passwd", f"sandbox:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\n"),
                       ("group", f"sandbox:x:{gid}:\n")):
        fd = os.memfd_create(f"rewardgen-{name}")
        os.write(fd, text.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        fds.append(fd)
        args += ["--perms", "0644", "--file", str(fd), f"/etc/{name}"]
    return args, fds


def _devices(gpu: str | None) -> list[str]:
    """GPU device nodes and the driver's sysfs a CUDA worker needs (none on CPU)."""
    if not gpu:
        return []
    out: list[str] = []
    for dev in sorted(Path("/dev").glob("nvidia*")) + [Path("/dev/dri")]:
        if dev.exists():
            out += ["--dev-bind", str(dev), str(dev)]
    for path in GPU_SYS_PATHS:
        if Path(path).exists():
            out += ["--ro-bind", path, path]
    return out


def _binds(flag: str, paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    made: set[str] = set()
    for path in paths:
        for folder in _ancestors(path):
            if folder not in made:
                out += ["--perms", "0755", "--dir", folder]
                made.add(folder)
        out += [flag, path, path]
    return out


def command(argv: Sequence[str], *, readable: Sequence[str], writable: Sequence[str],
            seccomp_fd: int, gpu: str | None = None, network: bool = False,
            tmp_mb: int = 256, shm_mb: int = 64,
            run_as: tuple[int, int] | None = None) -> tuple[list[str], list[int]]:
    """The bwrap command line that runs ``argv`` in the sandbox, and the fds it must inherit.

    Nothing of the host is visible but what is named: the OS (:func:`_system_binds`), the
    ``readable`` paths (interpreter, environment, rewardgen, task assets: :func:`worker_paths`)
    read-only, the ``writable`` folders (the job's own output folder), a private ``/tmp`` and
    ``/dev/shm`` of bounded size, a minimal ``/dev`` and its own ``/proc``. No home, ``/root``,
    ``/run``, ``/var``, caches or other candidates' folders, and so no host path socket.

    Args:
        argv: the worker's command (``python -m rewardgen.sandbox.child ...``).
        readable: files or folders bound read-only at the same path.
        writable: folders bound read-write (the job's output folder).
        seccomp_fd: an fd from :func:`filter_fd`, passed to the child (``pass_fds``).
        gpu: when set, the GPU device nodes are bound in.
        network: keep the host network (never for reward code; vision labellers only).
        tmp_mb, shm_mb: sizes of the private ``/tmp`` and ``/dev/shm`` (tmpfs holds host RAM
            that no address-space limit counts).
        run_as: ``(uid, gid)`` of the ordinary user who will start this command (default: this
            process's identity; as root, the sandbox drops to :data:`SANDBOX_UID`).

    Returns:
        The command and the fds to pass to it (the caller closes them after the start).
    """
    exe = bwrap_path()
    if exe is None:
        raise SandboxError(not_available_reason("bwrap is not installed"))
    root = run_as is None and starts_as_root()
    uid, gid = run_as or ((SANDBOX_UID, SANDBOX_UID) if root else (os.getuid(), os.getgid()))
    if root and setpriv_path() is None:
        raise SandboxError(not_available_reason(
            "started as root, the sandbox drops to uid 65534 with setpriv (util-linux), which "
            "is not installed"))
    identity, fds = _identity_files(uid, gid)
    # As root: no user namespace (it would map the sandbox's uid to host root); the other
    # namespaces are created by root itself and setpriv drops to SANDBOX_UID before exec.
    cmd = [exe, *(NAMESPACES if root else ("--unshare-all",))]
    if network:
        cmd.append("--share-net")
    cmd += ["--die-with-parent", "--new-session", *_system_binds(), *identity,
            "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(int(tmp_mb) * MB), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(int(shm_mb) * MB), "--tmpfs", "/dev/shm",
            *_binds("--ro-bind", _unique(readable)), *_binds("--bind", _unique(writable)),
            *_devices(gpu), "--remount-ro", "/", "--chdir", "/tmp",
            "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
            "--seccomp", str(seccomp_fd)]
    if root:
        cmd += ["--cap-add", "CAP_SETUID,CAP_SETGID", "--", setpriv_path() or "setpriv",
                "--reuid", str(SANDBOX_UID), "--regid", str(SANDBOX_UID), "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--", *argv]
    else:
        cmd += ["--uid", str(uid), "--gid", str(gid), "--", *argv]
    return cmd, fds


def _unique(paths: Sequence[str]) -> list[str]:
    """Existing absolute paths, deduplicated, a path inside another bound one dropped."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.exists(p)})
    out: list[str] = []
    for path in real:
        if path == "/":
            raise SandboxError("refusing to bind the host's root folder into the sandbox")
        if not any(path == kept or path.startswith(kept + os.sep) for kept in out):
            out.append(path)
    return out


def python_paths() -> list[str]:
    """The interpreter and its environment: base prefix, venv, and where rewardgen is imported
    from (in a checkout only the package and its data folders, never the checkout itself)."""
    import rewardgen
    from rewardgen.resources import RESOURCE_NAMES, resource_dir

    paths = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)),
             str(Path(rewardgen.__file__).resolve().parent)]
    for name in RESOURCE_NAMES:
        paths.append(str(resource_dir(name)))
    return [p for p in paths if p not in SYSTEM_DIRS]


def package_path(target: str) -> str | None:
    """The folder of the top-level package a worker target lives in (test targets, plugins)."""
    top = target.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return str(Path(next(iter(spec.submodule_search_locations))).resolve())
    return str(Path(spec.origin).resolve()) if spec.origin else None


def worker_paths(target: str, extra: Sequence[str] = ()) -> list[str]:
    """Everything a worker running ``target`` reads: :func:`python_paths`, the target's
    package, and ``extra`` (a task file's folder, ``$REWARDGEN_TASK_DIRS``)."""
    own = package_path(target)
    return [*python_paths(), *([own] if own else []), *extra]


def not_available_reason(detail: str) -> str:
    return (
        f"the bubblewrap sandbox cannot run here ({detail}); install it (`make sysdeps`, Debian "
        "package bubblewrap) or set sandbox.backend=process, which runs reward programs with "
        "rlimits and a network namespace only: the worker sees the host's files as the user "
        "who started rewardgen (as root: everything), no pid namespace, no seccomp filter"
    )


@functools.lru_cache(maxsize=1)
def _probe() -> str:
    """'' when a trivial sandbox starts, else why not (run once per process)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if bwrap_path() is None:
        return "bwrap is not installed"
    if starts_as_root() and setpriv_path() is None:
        return "started as root, the sandbox drops to uid 65534 with setpriv (util-linux), " \
            "which is not installed"
    try:
        fd = filter_fd()
    except SandboxError as e:
        return str(e)
    fds: list[int] = []
    try:
        cmd, fds = command([sys.executable, "-c", "import rewardgen"],
                           readable=python_paths(), writable=[], seccomp_fd=fd)
        proc = subprocess.run(cmd, pass_fds=(fd, *fds), capture_output=True, text=True,
                              timeout=START_CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path[1:])))
    except (OSError, subprocess.SubprocessError, SandboxError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        for handle in (fd, *fds):
            os.close(handle)
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
    if backend == "process" and starts_as_root():
        _warn_process_as_root()


@functools.lru_cache(maxsize=1)
def _warn_process_as_root() -> None:
    log.warning("sandbox.backend=process started as root: reward programs run as host root with "
                "rlimits and a network namespace only; prefer sandbox.backend=bwrap")
