"""Layer 5 of isolation: the one reader of what a worker left in its folder.

A sandboxed worker can write anything into its own folder (``cand_XX/train/``): links, FIFOs,
directories where files are expected, files of gigabytes, JSON nested 200,000 deep, numbers of
400 digits, folder chains thousands deep, a hundred thousand files. The parent reads that folder
only through this module:

- files: regular files only (``O_NOFOLLOW | O_NONBLOCK``, then ``fstat``: a FIFO never blocks,
  a link is never followed, a device is never read), one link count, a size cap; below a
  trusted root (``under``) every folder on the way is opened without following links too;
- JSON: depth and item count measured before the parser recurses, integers and floats capped
  in size, NaN and Infinity refused;
- folders: one level at a time with a count cap; :func:`walk` is iterative, capped in depth and
  count, never follows links and does not enter folders it is told to skip (the workers'
  folders, when walking a run directory); :func:`remove_tree` removes any depth by descriptor.

Every failure is an :class:`UnsafeFileError` with a one-line message naming the file, which the
caller turns into a candidate result (or a log line): a hostile folder is a result, never a
crash or a hang of the parent. No recursive walk, glob or third-party reader is used here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 64  # JSON nesting; our own results nest 4 deep
MAX_ITEMS = 4_000_000  # JSON values (a result's lists of episodes and points are far fewer)
MAX_DIGITS = 32  # digits of a JSON integer (a seed or a step count has at most 20)
MAX_FLOAT_CHARS = 64  # characters of a JSON float
MAX_ENTRIES = 10_000  # entries of one listed folder
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_CHUNK = 1 << 22
_NAME_TAKEN = (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR)  # rename: try another


class UnsafeFileError(ValueError):
    """Something a worker left that is not what the parent may read (one-line message)."""


class TooManyEntriesError(UnsafeFileError):
    """A folder holds more entries than the caller allows."""


def _reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "is a symbolic link"
    if e.errno == errno.ENOTDIR:
        return "is not a folder, or lies below a link"
    return f"cannot be opened ({e.strerror or e})"


@contextlib.contextmanager
def _opened(path: str | Path, flags: int, under: str | Path | None) -> Iterator[int]:
    """A descriptor of ``path`` opened with ``flags``; below ``under`` no link is followed."""
    path = Path(path)
    try:
        if under is None:
            fd = os.open(path, flags)
        else:
            parts = path.relative_to(under).parts
            if not parts or ".." in parts:
                raise UnsafeFileError(f"{path.name}: not a path below {under}")
            parent = os.open(under, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for part in parts[:-1]:
                    child = os.open(part, DIR_FLAGS, dir_fd=parent)
                    os.close(parent)
                    parent = child
                fd = os.open(parts[-1], flags, dir_fd=parent)
            finally:
                os.close(parent)
    except OSError as e:
        raise UnsafeFileError(f"{path.name} {_reason(e)}") from e
    except ValueError as e:  # relative_to
        raise UnsafeFileError(f"{path.name}: not a path below {under}") from e
    try:
        yield fd
    finally:
        os.close(fd)


def read_regular_file(
    path: str | Path, limit_mb: float, *, under: str | Path | None = None
) -> bytes:
    """The bytes of a plain file, refusing links, FIFOs, devices, folders and files over ``limit_mb``.

    Args:
        path: the file.
        limit_mb: the largest size read.
        under: a trusted folder above ``path``: no component between them may be a link.

    Raises:
        UnsafeFileError: anything but a small regular file with one link.
    """
    name = Path(path).name
    with _opened(path, FILE_FLAGS, under) as fd:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{name} is not a regular file ({_kind(st.st_mode)})")
        if st.st_nlink != 1:
            raise UnsafeFileError(f"{name} has {st.st_nlink} hard links (a link to another file?)")
        limit = int(limit_mb * 1024 * 1024)
        if st.st_size > limit:
            raise UnsafeFileError(f"{name} is {st.st_size >> 20} MB (limit {limit_mb:g} MB)")
        chunks, left = [], st.st_size
        try:
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as e:
            raise UnsafeFileError(f"{name} cannot be read ({e.strerror or e})") from e
        return b"".join(chunks)


def _kind(mode: int) -> str:
    kinds = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
             stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}  # fmt: skip
    return kinds.get(stat.S_IFMT(mode), "not a file")


# ---------------------------------------------------------------- JSON
class _Refused(Exception):
    pass


def json_shape(raw: bytes) -> tuple[int, int]:
    """Nesting depth and number of values of a JSON text, measured without parsing it.

    Brackets inside strings do not count. The values are counted from commas and opening
    brackets, enough to bound what parsing would build.
    """
    import numpy as np

    stripped = _STRING.sub(b'""', raw)
    depth = deepest = items = 0
    for start in range(0, len(stripped), _CHUNK):
        a = np.frombuffer(
            stripped, dtype=np.uint8, count=min(_CHUNK, len(stripped) - start), offset=start
        )
        opens = (a == 0x5B) | (a == 0x7B)
        step = opens.astype(np.int64) - ((a == 0x5D) | (a == 0x7D))
        levels = np.cumsum(step) + depth
        if levels.size:
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        items += int(np.count_nonzero(a == 0x2C)) + int(np.count_nonzero(opens))
    return deepest, items + 1


def parse_json(
    raw: bytes,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
    max_digits: int = MAX_DIGITS,
    finite: bool = True,
) -> Any:
    """Parse JSON that a worker wrote, refusing what could exhaust the parent.

    ``finite=False`` lets NaN, Infinity and floats beyond the float range through as floats,
    for a reader that drops them itself (a worker's reported statistics).

    Raises:
        UnsafeFileError: not UTF-8 JSON, nested deeper than ``max_depth``, more than
            ``max_items`` values, an integer of more than ``max_digits`` digits, a float of more
            than 64 characters; with ``finite``, a float out of range, NaN or Infinity.

    Example:
        >>> parse_json(b'{"a": [1, 2.5]}', "x.json")
        {'a': [1, 2.5]}
        >>> parse_json(b"[" * 100 + b"]" * 100, "x.json")
        Traceback (most recent call last):
        ...
        rewardgen.runs.untrusted.UnsafeFileError: x.json is nested 100 deep (limit 64)
    """
    depth, items = json_shape(raw)
    if depth > max_depth:
        raise UnsafeFileError(f"{what} is nested {depth} deep (limit {max_depth})")
    if items > max_items:
        raise UnsafeFileError(f"{what} holds about {items} values (limit {max_items})")

    def integer(text: str) -> int:
        if len(text.lstrip("-")) > max_digits:
            raise _Refused(f"an integer of {len(text.lstrip('-'))} digits (limit {max_digits})")
        return int(text)

    def number(text: str) -> float:
        if len(text) > MAX_FLOAT_CHARS:
            raise _Refused(f"a number of {len(text)} characters")
        value = float(text)
        if finite and not math.isfinite(value):
            raise _Refused(f"{text[:20]}, too large for a float")
        return value

    def constant(name: str) -> Any:
        if finite:
            raise _Refused(f"{name}, not a finite number")
        return float(name)

    try:
        return json.loads(
            raw.decode("utf-8"), parse_int=integer, parse_float=number, parse_constant=constant
        )
    except _Refused as e:
        raise UnsafeFileError(f"{what} holds {e}") from e
    except UnicodeDecodeError as e:
        raise UnsafeFileError(f"{what} is not UTF-8 text (byte {e.start})") from e
    except (ValueError, RecursionError) as e:
        raise UnsafeFileError(f"{what} is not JSON ({str(e)[:120]})") from e


def load_json(
    path: str | Path, limit_mb: float, *, under: str | Path | None = None, **caps: Any
) -> Any:
    """:func:`read_regular_file` then :func:`parse_json` (``caps``: its limits).

    Raises:
        UnsafeFileError: see both.
    """
    return parse_json(read_regular_file(path, limit_mb, under=under), Path(path).name, **caps)


# ---------------------------------------------------------------- folders
class Entry(NamedTuple):
    """One name in a listed folder: ``kind`` is file, dir, link or other (FIFO, socket, device)."""

    name: str
    kind: str


def list_dir(
    path: str | Path, *, max_entries: int = MAX_ENTRIES, under: str | Path | None = None
) -> list[Entry]:
    """The entries of one folder (not below it), sorted by name; links are reported, not followed.

    Raises:
        UnsafeFileError: ``path`` is not a folder (or is a link), or holds more than
            ``max_entries`` entries.
    """
    out: list[Entry] = []
    name = Path(path).name
    with _opened(path, DIR_FLAGS, under) as fd:
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if len(out) >= max_entries:
                        raise TooManyEntriesError(f"{name} holds more than {max_entries} entries")
                    out.append(Entry(entry.name, _entry_kind(entry)))
        except OSError as e:
            raise UnsafeFileError(f"{name} cannot be listed ({e.strerror or e})") from e
    return sorted(out)


def _entry_kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


@dataclass
class Walk:
    """What :func:`walk` found: regular files (relative paths) and what it did not look at."""

    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per folder not entered


def walk(
    root: str | Path, *, max_depth: int, max_entries: int = 200_000, skip: Sequence[str] = ()
) -> Walk:
    """Regular files below ``root``, breadth first, without recursion or following links.

    Args:
        root: the folder to walk.
        max_depth: folders deeper than this below ``root`` are not entered (0: only ``root``).
        max_entries: the walk stops after this many entries in all.
        skip: folder names never entered (a worker's folder, when walking a run directory).
    """
    root = Path(root).resolve()
    found = Walk()
    queue: deque[tuple[Path, int]] = deque([(Path(), 0)])
    seen = 0
    while queue:
        rel, depth = queue.popleft()
        try:
            entries = list_dir(
                root / rel,
                max_entries=max(1, max_entries - seen),
                under=root if rel.parts else None,
            )
        except TooManyEntriesError as e:
            found.skipped.append(f"{rel}: {e}; stopped")
            break
        except UnsafeFileError as e:
            found.skipped.append(f"{rel}: {e}")
            continue
        seen += len(entries)
        for entry in entries:
            path = rel / entry.name
            if entry.kind == "file":
                found.files.append(path)
            elif entry.kind == "dir" and entry.name not in skip:
                if depth < max_depth:
                    queue.append((path, depth + 1))
                else:
                    found.skipped.append(f"{path}: deeper than {max_depth} folders")
        if seen >= max_entries:
            found.skipped.append(f"{rel}: stopped after {max_entries} entries")
            break
    return found


def remove_tree(path: str | Path) -> None:
    """Remove ``path`` (a file, link or folder of any depth) without following any link.

    Iterative and by descriptor: a folder chain thousands deep, names past ``PATH_MAX`` and
    folders a worker made unreadable (mode 000, where the parent owns them) go too, where
    ``shutil.rmtree`` would raise RecursionError.

    Raises:
        UnsafeFileError: something could not be removed (one line, with the OS's reason).
    """
    path = Path(path)
    try:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        top = os.open(path, DIR_FLAGS)
        try:
            _empty(top)
        finally:
            os.close(top)
        os.rmdir(path)
    except OSError as e:
        raise UnsafeFileError(f"cannot remove {path.name} ({e.strerror or e})") from e


def _names(fd: int) -> list[str]:
    with os.scandir(fd) as entries:
        return [e.name for e in entries]


def _empty(top: int) -> None:
    """Empty the folder ``top``: files go, sub-folders are removed or their content is hoisted
    into ``top`` one level per pass (one open descriptor at a time, whatever the depth)."""
    counter = 0
    while names := _names(top):
        for name in names:
            try:
                st = os.stat(name, dir_fd=top, follow_symlinks=False)
            except FileNotFoundError:
                continue  # replaced by a hoisted entry of the same name
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=top)
                continue
            with contextlib.suppress(OSError):
                os.chmod(name, 0o700, dir_fd=top)
            sub = os.open(name, DIR_FLAGS, dir_fd=top)
            try:
                for child in _names(sub):
                    while True:
                        counter += 1
                        try:
                            os.rename(
                                child, f".rewardgen-rm-{counter}", src_dir_fd=sub, dst_dir_fd=top
                            )
                            break
                        except OSError as e:
                            if e.errno not in _NAME_TAKEN:
                                raise
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=top)
