"""The one reader of a worker's folder: every hostile shape is a one-line error, never a hang."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardgen.runs.untrusted import (
    Entry,
    TooManyEntriesError,
    UnsafeFileError,
    json_shape,
    list_dir,
    load_json,
    parse_json,
    read_regular_file,
    remove_tree,
    walk,
)


@pytest.fixture(autouse=True)
def _remove_deep_folders(tmp_path: Path) -> Iterator[None]:
    """Folder chains thousands deep break pytest's own clean-up (shutil.rmtree recurses)."""
    yield
    with contextlib.suppress(UnsafeFileError):
        remove_tree(tmp_path)


def _chain(root: Path, depth: int, name: str = "d") -> Path:
    """A folder chain ``depth`` deep below ``root``, built by descriptor (past PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("leaf.json", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("{}")
    finally:
        os.close(fd)
    return root / name


# ---------------------------------------------------------------- files
def test_a_small_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'{"x": 1}')
    assert read_regular_file(tmp_path / "a.json", 1) == b'{"x": 1}'
    assert load_json(tmp_path / "a.json", 1, under=tmp_path) == {"x": 1}


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "result.json")
    start = time.monotonic()
    with pytest.raises(UnsafeFileError, match=r"result.json is not a regular file \(a FIFO\)"):
        read_regular_file(tmp_path / "result.json", 1)
    assert time.monotonic() - start < 1.0


def test_a_symlink_is_refused_even_to_a_readable_file(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("{}")
    (tmp_path / "result.json").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeFileError, match="result.json is a symbolic link"):
        read_regular_file(tmp_path / "result.json", 1)


def test_a_link_on_the_way_below_a_trusted_root_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "events").write_text("secret")
    train = tmp_path / "cand" / "train"
    train.mkdir(parents=True)
    (train / "tb").symlink_to(elsewhere)
    assert read_regular_file(train / "tb" / "events", 1) == b"secret"  # no root: the link counts
    with pytest.raises(UnsafeFileError, match="is not a folder, or lies below a link"):
        read_regular_file(train / "tb" / "events", 1, under=tmp_path / "cand")


def test_a_folder_a_device_and_a_hard_link_are_refused(tmp_path: Path) -> None:
    (tmp_path / "worker.log").mkdir()
    with pytest.raises(UnsafeFileError, match=r"worker.log is not a regular file \(a folder\)"):
        read_regular_file(tmp_path / "worker.log", 1)
    with pytest.raises(UnsafeFileError, match=r"null is not a regular file \(a character device\)"):
        read_regular_file("/dev/null", 1)
    (tmp_path / "a").write_text("x")
    os.link(tmp_path / "a", tmp_path / "b")
    with pytest.raises(UnsafeFileError, match="b has 2 hard links"):
        read_regular_file(tmp_path / "b", 1)


def test_a_huge_file_is_refused_by_its_size_without_reading_it(tmp_path: Path) -> None:
    with open(tmp_path / "result.json", "wb") as f:
        f.truncate(3 << 30)  # 3 GB, sparse
    start = time.monotonic()
    with pytest.raises(UnsafeFileError, match=r"result.json is 3072 MB \(limit 64 MB\)"):
        read_regular_file(tmp_path / "result.json", 64)
    assert time.monotonic() - start < 1.0


def test_a_missing_file_and_a_path_outside_the_root_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="cannot be opened"):
        read_regular_file(tmp_path / "nothing", 1)
    with pytest.raises(UnsafeFileError, match="not a path below"):
        read_regular_file("/etc/hostname", 1, under=tmp_path)


# ---------------------------------------------------------------- JSON
def test_deep_json_is_refused_before_the_parser_recurses() -> None:
    raw = b"[" * 200_000 + b"]" * 200_000
    start = time.monotonic()
    with pytest.raises(UnsafeFileError, match=r"result.json is nested 200000 deep \(limit 64\)"):
        parse_json(raw, "result.json")
    assert time.monotonic() - start < 2.0
    with pytest.raises(UnsafeFileError, match="nested 65 deep"):
        parse_json(b'{"a":' * 65 + b"1" + b"}" * 65, "x")
    assert parse_json(b'{"a":' * 64 + b"1" + b"}" * 64, "x") is not None


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"reason": "[[[[{{{{" * 1000 + '\\"]]]', "x": [[1]]}).encode()
    assert json_shape(text)[0] == 3
    assert parse_json(text, "x")["x"] == [[1]]


def test_a_400_digit_integer_is_refused_and_a_seed_is_not() -> None:
    with pytest.raises(UnsafeFileError, match=r"holds an integer of 400 digits \(limit 32\)"):
        parse_json(b'{"env_steps": ' + b"9" * 400 + b"}", "result.json")
    with pytest.raises(UnsafeFileError, match="integer of 400 digits"):
        parse_json(b"[-" + b"9" * 400 + b"]", "result.json")
    assert parse_json(b'{"seed": 18446744073709551615}', "x") == {"seed": 2**64 - 1}


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_non_finite_numbers_are_refused_unless_the_reader_drops_them(text: bytes) -> None:
    with pytest.raises(UnsafeFileError, match="not a finite number|too large for a float"):
        parse_json(b'{"fitness": ' + text + b"}", "result.json")
    value = parse_json(b'{"fitness": ' + text + b"}", "result.json", finite=False)["fitness"]
    assert isinstance(value, float) and not math.isfinite(value)


def test_long_floats_too_many_values_bad_utf8_and_broken_json_are_refused() -> None:
    with pytest.raises(UnsafeFileError, match="a number of 302 characters"):
        parse_json(b"[0." + b"0" * 300 + b"]", "x")
    with pytest.raises(UnsafeFileError, match=r"holds about 1002 values \(limit 1000\)"):
        parse_json(b"[" + b"1," * 1000 + b"1]", "x", max_items=1000)
    with pytest.raises(UnsafeFileError, match=r"x is not UTF-8 text \(byte 1\)"):
        parse_json(b'"\xff"', "x")
    with pytest.raises(UnsafeFileError, match="x is not JSON"):
        parse_json(b'{"a": ', "x")


# ---------------------------------------------------------------- folders
def test_list_dir_reports_kinds_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to("/etc")
    os.mkfifo(tmp_path / "p")
    assert list_dir(tmp_path) == [Entry("d", "dir"), Entry("f", "file"), Entry("l", "link"),
                                  Entry("p", "other")]  # fmt: skip
    with pytest.raises(UnsafeFileError, match="l is not a folder, or lies below a link"):
        list_dir(tmp_path / "l")


def test_a_folder_of_100k_files_is_refused_by_its_count(tmp_path: Path) -> None:
    flood = tmp_path / "flood"
    flood.mkdir()
    fd = os.open(flood, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(100_000):
            os.close(os.open(f"f{i}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    start = time.monotonic()
    with pytest.raises(TooManyEntriesError, match="flood holds more than 10000 entries"):
        list_dir(flood)
    found = walk(tmp_path, max_depth=3, max_entries=50_000)
    assert len(found.files) < 50_000 and "stopped" in found.skipped[-1]
    assert time.monotonic() - start < 10.0
    remove_tree(flood)
    assert not flood.exists()


def test_walk_skips_worker_folders_and_stops_at_its_depth(tmp_path: Path) -> None:
    (tmp_path / "gen_000" / "cand_00" / "train").mkdir(parents=True)
    (tmp_path / "gen_000" / "cand_00" / ".result.json.x.tmp").write_text("")
    (tmp_path / "gen_000" / "cand_00" / "train" / ".planted.tmp").write_text("")
    _chain(tmp_path / "gen_000", 1200)  # past the recursion limit
    found = walk(tmp_path, max_depth=4, skip=("train",))
    assert Path("gen_000/cand_00/.result.json.x.tmp") in found.files
    assert not any("train" in p.parts for p in found.files)
    assert any("deeper than 4 folders" in line for line in found.skipped)


def test_remove_tree_removes_a_3000_deep_chain_and_unreadable_folders(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    _chain(train, 3000)
    (train / "locked" / "inner").mkdir(parents=True)
    (train / "locked" / "inner" / "f").write_text("x")
    os.chmod(train / "locked" / "inner", 0)
    os.chmod(train / "locked", 0)
    (train / "link").symlink_to(tmp_path / "keep")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious").write_text("x")
    os.mkfifo(train / "fifo")
    start = time.monotonic()
    remove_tree(train)
    assert not train.exists()
    assert (tmp_path / "keep" / "precious").is_file()  # the link went, not its target
    assert time.monotonic() - start < 30.0
    remove_tree(train)  # missing: nothing to do
    (tmp_path / "file").write_text("x")
    remove_tree(tmp_path / "file")
    assert not (tmp_path / "file").exists()
