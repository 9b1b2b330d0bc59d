"""Ctrl-C: the first stops within seconds and keeps what finished; a second exits at once.

The real console script runs in its own session (as a shell's foreground job) and gets SIGINT
the way a terminal sends it: to its whole process group, while its candidates train in isolated
workers (their own sessions, out of the terminal's reach).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.runs.test_crash import (
    BASE,
    _events,
    _finish,
    _no_workers_left,
    _start,
    _wait_for,
    _workers,
)

LONG = ["train.timesteps=1000000", "sandbox.timeout_s=900", "llm=offline", "loop.generations=1",
        "loop.samples=2", "executor.workers=2"]


def _training(run_dir: Path) -> bool:
    """Both candidates' workers are past start-up: they write training progress."""
    return all((run_dir / "gen_000" / f"cand_{i:02d}" / "train" / "progress.json").is_file()
               for i in range(2))


def test_first_ctrl_c_stops_within_seconds_and_resume_retrains(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(tmp_path, "rewardgen", *BASE, *LONG, f"hydra.run.dir={run_dir}")
    _wait_for("training to start", lambda: _training(run_dir), proc, timeout=240)
    assert len(_workers(run_dir)) >= 2
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    rc, err = _finish(proc, timeout=60)
    assert time.monotonic() - start < 20, "Ctrl-C waited for the trainings"
    assert rc == 130
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == (f"rewardgen: stopped by the user; finished work is kept in {run_dir}: "
                    f"continue with `rewardgen-resume {run_dir}`")
    _no_workers_left(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "stopped by the user (Ctrl-C) in generation 0"
    for i in range(2):  # interrupted: not a finished result, so resume must train it again
        assert not (run_dir / "gen_000" / f"cand_{i:02d}" / "result.json").exists()
    assert _events(run_dir, "candidate_done") == []
    assert _events(run_dir)[-1]["event"] == "run_stopped"

    resumed = _start(tmp_path, "rewardgen-resume", str(run_dir), "train.timesteps=256")
    rc, err = _finish(resumed)
    assert rc == 0, err[-3000:]
    done = sorted((e["generation"], e["index"]) for e in _events(run_dir, "candidate_done"))
    assert done == [(0, 0), (0, 1)]
    assert len(_events(run_dir, "llm_request")) == 1  # the saved answers were reused
    assert json.loads((run_dir / "summary.json").read_text())["stopped"] is None


def test_second_ctrl_c_exits_at_once(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(tmp_path, "rewardgen", *BASE, *LONG, f"hydra.run.dir={run_dir}")
    _wait_for("training to start", lambda: _training(run_dir), proc, timeout=240)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    rc, err = _finish(proc, timeout=60)
    assert time.monotonic() - start < 20
    assert rc == 130 and "Traceback" not in err
    _no_workers_left(run_dir, within_s=10)
