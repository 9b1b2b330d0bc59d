"""The report's TensorBoard curves: SB3's event files decoded by hand, hostile ones survived."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from rewardgen.reporting.report import COMPONENT_TAG, tensorboard_components
from rewardgen.reporting.tb_events import parse_events, read_scalars


def _write_real_events(run_dir: Path) -> None:
    """Event files as SB3's logger writes them (torch's SummaryWriter)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    for step in range(4):
        writer.add_scalar(COMPONENT_TAG + "alive", 1.0 + step, step * 64)
        writer.add_scalar(COMPONENT_TAG + "eff\u202eort\x1b[2J", -0.5 * step, step * 64)
        writer.add_scalar("train/loss", 3.0, step)
    writer.close()


def test_real_event_files_give_the_same_points_as_tensorboard(tmp_path: Path) -> None:
    _write_real_events(tmp_path / "train" / "tb" / "PPO_1")
    curves = tensorboard_components(tmp_path)
    assert curves == {
        "alive": [(0.0, 1.0), (64.0, 2.0), (128.0, 3.0), (192.0, 4.0)],
        "effort": [(0.0, -0.0), (64.0, -0.5), (128.0, -1.0), (192.0, -1.5)],
    }  # names cleaned: no bidi override, no terminal escape


def test_fifos_links_and_junk_in_tb_are_skipped_without_blocking(tmp_path: Path) -> None:
    tb = tmp_path / "train" / "tb"
    _write_real_events(tb / "PPO_1")
    (tb / "PPO_0").mkdir()
    os.mkfifo(tb / "PPO_0" / "events.out.tfevents.0.fifo")
    os.mkfifo(tb / "events.out.tfevents.1")
    (tb / "PPO_9").symlink_to(tb / "PPO_1")  # would double every point if followed
    (tb / "PPO_2").mkdir()
    (tb / "PPO_2" / "events.out.tfevents.2").write_bytes(os.urandom(5000))
    start = time.monotonic()
    curves = read_scalars(tmp_path, COMPONENT_TAG)
    assert time.monotonic() - start < 5.0
    assert len(curves["alive"]) == 4


def test_a_linked_tb_folder_or_train_folder_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    _write_real_events(elsewhere / "PPO_1")
    (tmp_path / "cand" / "train").mkdir(parents=True)
    (tmp_path / "cand" / "train" / "tb").symlink_to(elsewhere)
    assert read_scalars(tmp_path / "cand", COMPONENT_TAG) == {}
    assert read_scalars(tmp_path / "nothing", COMPONENT_TAG) == {}


def _record(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + b"\0" * 4 + data + b"\0" * 4


def _varint(n: int) -> bytes:
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def _event(step: int, tag: bytes, value: float) -> bytes:
    value_msg = b"\x0a" + _varint(len(tag)) + tag + b"\x15" + struct.pack("<f", value)
    summary = b"\x0a" + _varint(len(value_msg)) + value_msg
    return b"\x10" + _varint(step) + b"\x2a" + _varint(len(summary)) + summary


def test_lying_lengths_cut_records_and_non_finite_values_end_cleanly() -> None:
    good = _record(_event(5, b"p/a", 2.0))
    assert parse_events(good, "p/") == {"a": [(5.0, 2.0)]}
    lying = struct.pack("<Q", 2**63) + b"\0" * 20
    assert parse_events(good + lying, "p/") == {"a": [(5.0, 2.0)]}
    bad_field = _record(b"\x2a\xff\xff\xff\xff\x0f")  # a summary longer than the record
    assert parse_events(good + bad_field + good, "p/") == {"a": [(5.0, 2.0)]}
    assert parse_events(_record(_event(1, b"p/a", float("nan"))), "p/") == {}
    groups = _record(b"\x0b\x0c")  # wire types 3 and 4: never in an event file
    assert parse_events(groups + good, "p/") == {}
    many = b"".join(_record(_event(1, b"p/%d" % i, 1.0)) for i in range(200))
    assert len(parse_events(many, "p/")) == 64
