"""Run the adversarial corpus once and print the figures table of docs/security.md.

    .venv/bin/python -m tests.adversarial.summarise [--workers 2] [--table]

Same path as test_corpus.py: the static check here, the real isolated worker for the rest.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from tests.adversarial.corpus import figures, load_corpus, markdown_table, run_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="worker processes at a time")
    parser.add_argument("--table", action="store_true", help="also print one row per program")
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rewardgen-adversarial-") as tmp:
        canary = Path(tmp) / "canary"
        canary.mkdir()
        outcomes = run_corpus(load_corpus(canary), Path(tmp) / "workers", args.workers)
        touched = sorted(p.name for p in canary.iterdir())
    counts = figures(outcomes)
    print("| outcome | programs |\n|---|---|")
    for key, value in counts.items():
        print(f"| {key} | {value} |")
    print(f"| files created in the canary directory | {len(touched)} |")
    print(f"\nwall time {time.monotonic() - start:.0f} s with {args.workers} workers")
    if args.table:
        print("\n" + markdown_table(outcomes))


if __name__ == "__main__":
    main()
