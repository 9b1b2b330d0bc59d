"""The terminal's env-steps bar ends at 100 % when candidates stop short of their budget."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.records import PROGRESS_FILE, TRAIN_DIR, CandidateResult
from rewardgen.runs.store import CandidateRecord


def test_a_pruned_or_failed_candidate_takes_its_unspent_budget_off_the_steps_bar(tmp_path: Path):
    dirs = [tmp_path / f"cand_{i:02d}" for i in range(3)]
    ui = RunUI(console=Console(file=io.StringIO(), force_terminal=True, width=100))
    ui.start_generation(0, 1, len(dirs))
    ui.watch_steps(dirs, 3 * 1000)
    results = [CandidateResult("ok", fitness=1.0, env_steps=1000),
               CandidateResult("pruned", reason="stopped early at rung 0", fitness=0.1,
                               env_steps=200),
               CandidateResult("rejected", reason="smoke test: NaN", env_steps=0)]
    for i, (out, result) in enumerate(zip(dirs, results, strict=True)):
        (out / TRAIN_DIR).mkdir(parents=True)
        (out / TRAIN_DIR / PROGRESS_FILE).write_text(json.dumps({"timesteps": result.env_steps}))
        ui.candidate_done(CandidateRecord(0, i, "src", result))
    progress = ui._progress
    assert progress is not None
    steps = next(t for t in progress.tasks if t.description == "env steps")
    assert steps.total == 1000 + 200 + 0  # what the three really ran, so the bar can finish
    ui.end_generation()
