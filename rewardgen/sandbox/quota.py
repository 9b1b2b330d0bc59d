"""Layer 3 of isolation, parent side: a bound on what a worker may leave in its output folder.

The sandbox's only writable folder is on the host's disk, which no rlimit counts as a whole
(``RLIMIT_FSIZE`` bounds one file). The parent measures the folder while the worker runs and
kills it when the folder holds more than ``sandbox.output_mb`` megabytes, more than
``sandbox.output_files`` entries, or folders nested deeper than :data:`MAX_DEPTH`. The scan
never follows a link, stops as soon as a limit is passed, and survives anything the worker
does to the folder meanwhile (entries vanishing, FIFOs, devices it cannot create anyway).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_DEPTH = 16  # train/tb/PPO_1/events... is 3 deep
MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """What a scan found (exact up to the first limit passed)."""

    bytes: int
    entries: int
    too_deep: bool


def usage(folder: str | Path, max_bytes: int, max_entries: int) -> Usage:
    """Bytes (allocated blocks, so sparse files count what they take) and entries under
    ``folder``, scanning at most ``max_entries + 1`` entries and :data:`MAX_DEPTH` levels."""
    total = entries = 0
    stack: list[tuple[str, int]] = [(str(folder), 0)]
    while stack:
        path, depth = stack.pop()
        try:
            with os.scandir(path) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += max(info.st_blocks * 512, 0)
                    if stat.S_ISDIR(info.st_mode):
                        if depth + 1 >= MAX_DEPTH:
                            return Usage(total, entries, True)
                        stack.append((entry.path, depth + 1))
                    if entries > max_entries or total > max_bytes:
                        return Usage(total, entries, False)
        except OSError:
            continue
    return Usage(total, entries, False)


def over_limit(folder: str | Path, output_mb: int, output_files: int) -> str:
    """'' while ``folder`` is within its limits, else the one-line reason to kill its worker."""
    found = usage(folder, int(output_mb) * MB, int(output_files))
    if found.too_deep:
        return f"nested folders deeper than {MAX_DEPTH} levels in its output folder"
    if found.entries > output_files:
        return (f"wrote more than {output_files} files to its output folder "
                "(sandbox.output_files)")
    if found.bytes > int(output_mb) * MB:
        return f"wrote more than {output_mb} MB to its output folder (sandbox.output_mb)"
    return ""
