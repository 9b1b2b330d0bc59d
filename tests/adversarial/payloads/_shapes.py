"""Helpers the parent-reading payloads share (not a payload itself)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def chain(root: Path, depth: int, name: str = "d") -> None:
    """A folder chain ``depth`` deep below ``root``, built by descriptor (past PATH_MAX), with a
    temporary-file lookalike at its bottom (bait for a recovery walk)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open(".result.json.bait.tmp", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def replace_result(text: str) -> None:
    """Make the worker's own result.json write leave ``text`` instead (the escaped program owns
    the process, so it owns what the process writes last)."""
    import sys

    def write(path: Any, obj: Any) -> Path:
        Path(path).write_text(text)
        return Path(path)

    # the worker runs as `python -m rewardgen.sandbox.child`: its module is __main__
    sys.modules["__main__"].atomic_write_json = write  # type: ignore[attr-defined]


def planted_run(root: Path, seed: int, fitness: float) -> None:
    """A fake run directory as the sweep report reads one, claiming a great result."""
    (root / "final").mkdir(parents=True)
    manifest = {"task": "inverted_pendulum", "seed": seed, "format_version": 1}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "summary.json").write_text(json.dumps({"best": {"fitness": fitness}}))
    variants = {"generated": {"fitness_mean": fitness}, "native": {"fitness_mean": 1.0},
                "sparse": {"fitness_mean": 0.0}}  # fmt: skip
    (root / "final" / "summary.json").write_text(json.dumps({"variants": variants}))
