"""One owner per run directory: the ``flock`` on ``RUN_DIR/.lock`` and the workers a killed
owner left behind (see docs/crash-safety.md)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import TracebackType

from rewardgen.errors import RunDirError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
WORKER_MODULE = b"rewardgen.sandbox.child"


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock``, held for a whole run or resume.

    The kernel drops the lock when its holder dies (even by ``kill -9``), so a stale lock file
    never blocks a resume; a live holder makes :meth:`acquire` fail with one line naming it.
    The file descriptor is close-on-exec, so worker processes never hold the lock.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunDirError` (never waits: waiting would double-train)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunDirError(
                    f"cannot lock {self.path}: {e}; the file system may not support locks "
                    "(flock); put the run directory on a local disk or NFS v4"
                ) from e
            raise RunDirError(
                f"{self.root} is in use by another rewardgen process ({holder}); wait for it to "
                f"finish or stop it, then continue with `rewardgen-resume {self.root}`"
            ) from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def stale_workers(root: str | Path) -> list[int]:
    """Pids of sandbox workers whose job lies in ``root``: left behind by a killed run.

    Workers run in their own session (so a timeout kills their whole tree), which also means a
    ``kill -9`` of the run's process group does not reach them. Only called under the run's
    lock, when no live run can own a worker writing there.
    """
    root = Path(root).resolve()
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if WORKER_MODULE not in argv:
            continue
        for arg in argv:
            if arg.endswith(b"job.json") and Path(os.fsdecode(arg)).is_relative_to(root):
                found.append(int(entry.name))
                break
    return sorted(found)


def reap_stale_workers(root: str | Path, wait_s: float = 5.0) -> list[int]:
    """Kill the session of every stale worker of ``root`` (it would race the resumed training)."""
    pids = stale_workers(root)
    for pid in pids:
        for kill in (os.killpg, os.kill):  # the worker leads its own process group
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while pids and stale_workers(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pids:
        log.warning("killed %d worker(s) left running by an earlier, killed run of %s: pids %s",
                    len(pids), root, pids)
    return pids
