"""Scalars from the TensorBoard event files a training worker wrote, read as hostile input.

The files lie in the worker's folder (``cand_XX/train/tb/<run>/events.out.tfevents.*``), so
TensorBoard's own reader, which opens whatever it finds (a FIFO blocks it forever) and parses
without bounds, never touches them. Here every folder is listed once with a count cap and every
file read through :mod:`rewardgen.runs.untrusted` (regular files only, size cap); the records
(TFRecord frames: length, CRC, data, CRC) and the few protobuf fields a scalar needs
(``Event.step``, ``Event.summary.value[].tag`` and ``simple_value``, as SB3's logger writes
them) are decoded by hand with every length checked against the bytes left. A malformed file
ends that file's points; nothing raises.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator
from pathlib import Path

from rewardgen.runs.records import TRAIN_DIR
from rewardgen.runs.untrusted import UnsafeFileError, list_dir, read_regular_file
from rewardgen.sandbox.contract import MAX_COMPONENTS, clean_text

log = logging.getLogger(__name__)

TB_DIR = "tb"  # train/tb/: SB3's TensorBoard runs (PPO_1/, ...)
EVENTS_PREFIX = "events.out.tfevents."
MAX_RUNS = 64  # run folders looked at in tb/
MAX_FILES = 64  # event files per run folder
MAX_FILE_MB = 64.0
MAX_POINTS = 100_000  # points per tag


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        if pos >= end:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _Malformed


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field, wire type, start, stop)`` of each field of one message (varints: value, -1)."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, -1
            continue
        if wire == 2:
            size, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise _Malformed  # groups: never in an event file
        if pos + size > end:
            raise _Malformed
        yield number, wire, pos, pos + size
        pos += size


def _records(data: bytes) -> Iterator[memoryview]:
    """The payloads of a TFRecord file (8-byte length, 4-byte CRC, data, 4-byte CRC)."""
    buf = memoryview(data)
    pos = 0
    while pos + 12 <= len(buf):
        (size,) = struct.unpack_from("<Q", buf, pos)
        start = pos + 12
        if start + size + 4 > len(buf):
            return  # cut short (a worker killed mid-write) or a lying length
        yield buf[start : start + size]
        pos = start + size + 4


def _scalars(event: memoryview) -> Iterator[tuple[int, str, float]]:
    """``(step, tag, value)`` of each simple value in one serialised ``Event``."""
    step, summaries = 0, []
    for number, wire, a, b in _fields(event, 0, len(event)):
        if number == 2 and wire == 0:
            step = a - (1 << 64) if a >= 1 << 63 else a
        elif number == 5 and wire == 2:
            summaries.append((a, b))
    for start, stop in summaries:
        for number, wire, a, b in _fields(event, start, stop):
            if number != 1 or wire != 2:
                continue
            tag, value = None, None
            for field, kind, c, d in _fields(event, a, b):
                if field == 1 and kind == 2:
                    tag = bytes(event[c:d]).decode("utf-8", errors="replace")
                elif field == 2 and kind == 5:
                    (value,) = struct.unpack_from("<f", event, c)
            if tag is not None and value is not None and math.isfinite(value):
                yield step, tag, float(value)


def parse_events(data: bytes, prefix: str) -> dict[str, list[tuple[float, float]]]:
    """Scalars whose tag starts with ``prefix``, by tag without it: ``[(step, value), ...]``."""
    curves: dict[str, list[tuple[float, float]]] = {}
    try:
        for record in _records(data):
            for step, tag, value in _scalars(record):
                if not tag.startswith(prefix):
                    continue
                points = curves.get(tag[len(prefix) :])
                if points is None:
                    if len(curves) >= MAX_COMPONENTS:
                        continue
                    points = curves[tag[len(prefix) :]] = []
                if len(points) < MAX_POINTS:
                    points.append((float(step), value))
    except (_Malformed, struct.error):
        pass  # the points before the damage stand
    return curves


def read_scalars(cand_dir: str | Path, prefix: str) -> dict[str, list[tuple[float, float]]]:
    """``prefix*`` scalars of a candidate's TensorBoard runs (``train/tb/*/events.out.tfevents.*``).

    Names are cleaned (one line, no invisible characters); a folder or file that is not what
    it should be is skipped with a log line. Never raises for anything found in the folder.
    """
    cand_dir = Path(cand_dir)
    tb = cand_dir / TRAIN_DIR / TB_DIR
    curves: dict[str, list[tuple[float, float]]] = {}
    if not (tb.exists() or tb.is_symlink()):
        return curves
    try:
        runs = [
            e.name for e in list_dir(tb, max_entries=MAX_RUNS, under=cand_dir) if e.kind == "dir"
        ]
    except UnsafeFileError as e:
        log.warning("%s: TensorBoard logs not read (%s)", cand_dir.name, e)
        return curves
    for run in runs:
        try:
            files = [
                e.name
                for e in list_dir(tb / run, max_entries=MAX_FILES, under=cand_dir)
                if e.name.startswith(EVENTS_PREFIX)
            ]
        except UnsafeFileError as e:
            log.warning("%s: TensorBoard run not read (%s)", cand_dir.name, e)
            continue
        for file in files:
            try:
                data = read_regular_file(tb / run / file, MAX_FILE_MB, under=cand_dir)
            except UnsafeFileError as e:
                log.warning("%s: TensorBoard file not read (%s)", cand_dir.name, e)
                continue
            for tag, points in parse_events(data, prefix).items():
                name = clean_text(tag, keep_newlines=False)
                if name in curves or len(curves) < MAX_COMPONENTS:
                    kept = curves.setdefault(name, [])
                    kept.extend(points[: max(0, MAX_POINTS - len(kept))])
    return curves
