"""A worker's process tree as the parent sees it: captured output and every descendant.

The parent reads the worker's stdout/stderr with a cap (:class:`Capture`) and remembers every
process the worker started, so that one that left the group with ``setsid`` or was re-parented
is still killed at the end (:class:`ProcessTree`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO


class Capture:
    """Drain one pipe in a thread, keeping its first and last ``limit/2`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.head_cap, self.tail_cap = limit // 2, limit - limit // 2
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        self._fd = stream.fileno()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self._fd, 1 << 16):
            self.total += len(chunk)
            room = self.head_cap - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    def text(self) -> str:
        tail = self.tail[-self.tail_cap :] if self.tail_cap else b""
        dropped = self.total - len(self.head) - len(tail)
        middle = f"\n[... {dropped} bytes omitted ...]\n".encode() if dropped else b""
        return bytes(self.head + middle + tail).decode(errors="replace")


def _proc_stat(pid: int) -> tuple[int, int, int, int] | None:
    """(ppid, pgrp, session, start time) of a live process, None when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[1]), int(rest[2]), int(rest[3]), int(rest[19])


def _all_stats() -> dict[int, tuple[int, int, int, int]]:
    out = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if name.isdigit() and (stat := _proc_stat(int(name))) is not None:
            out[int(name)] = stat
    return out


class ProcessTree:
    """The worker's process tree, remembered while it runs so escapees can still be killed.

    A grandchild that calls ``setsid`` leaves the process group; once its parent dies it is
    re-parented and unreachable through the group. Remembering every descendant seen (with its
    start time, against pid reuse) closes that hole for anything that lived one poll interval.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, int] = {}

    def scan(self) -> list[int]:
        stats = _all_stats()
        members = {self.root} if self.root in stats else set()
        members |= {p for p, s in stats.items() if self.root in (s[1], s[2])}
        grew = True
        while grew:
            new = {p for p, s in stats.items() if s[0] in members and p not in members}
            members |= new
            grew = bool(new)
        for pid in members:
            self.seen.setdefault(pid, stats[pid][3])
        return sorted(members)

    def rss_mb(self) -> float:
        page = os.sysconf("SC_PAGE_SIZE")
        total = 0
        for pid in self.scan():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            except (OSError, IndexError, ValueError):
                continue
        return total / (1024 * 1024)

    def kill(self) -> None:
        for _ in range(3):
            targets = set(self.scan())
            for pid, start in self.seen.items():
                stat = _proc_stat(pid)
                if stat is not None and stat[3] == start:
                    targets.add(pid)
            with contextlib.suppress(OSError):
                os.killpg(self.root, signal.SIGKILL)
            for pid in targets:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if not targets:
                return
            time.sleep(0.05)
