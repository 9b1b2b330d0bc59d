"""The terminal: the steps bar ends at 100 %, the run's budget and ETA, reasons never cut."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from rewardgen.reporting.terminal import RunUI, eta_text
from rewardgen.runs.records import PROGRESS_FILE, TRAIN_DIR, CandidateResult
from rewardgen.runs.store import CandidateRecord

LONG_REASON = ("screened out: trajectory preference agreement 0.62 is below the threshold 0.8 "
               "(loop.screening_threshold); 13 of 21 pairs agreed, successes ranked above failures")


def _ui(width: int = 100) -> tuple[RunUI, io.StringIO]:
    out = io.StringIO()
    return RunUI(console=Console(file=out, force_terminal=True, width=width)), out


def _plain(out: io.StringIO) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())


def _steps(ui: RunUI):
    assert ui._progress is not None
    return next(t for t in ui._progress.tasks if t.description == "env steps")


def _run(ui: RunUI, tmp_path: Path, budgets: list[int], results: list[CandidateResult],
         mpc: bool = False) -> None:
    dirs = [tmp_path / f"cand_{i:02d}" for i in range(len(budgets))]
    ui.start_generation(0, 1, len(dirs))
    ui.watch_steps({f"gen_000/cand_{i:02d}": (d, b)
                    for i, (d, b) in enumerate(zip(dirs, budgets, strict=True))})
    for i, (out, result) in enumerate(zip(dirs, results, strict=True)):
        folder = out if mpc else out / TRAIN_DIR  # an MPC episode writes its own folder's file
        folder.mkdir(parents=True)
        (folder / PROGRESS_FILE).write_text(json.dumps({"timesteps": result.env_steps}))
        ui.candidate_done(CandidateRecord(0, i, "src", result))


def test_a_pruned_or_failed_candidate_takes_its_unspent_budget_off_the_steps_bar(tmp_path: Path):
    ui, _ = _ui()
    _run(ui, tmp_path, [1000] * 3, [
        CandidateResult("ok", fitness=1.0, env_steps=1000),
        CandidateResult("pruned", reason="stopped early at rung 0", fitness=0.1, env_steps=200),
        CandidateResult("rejected", reason="smoke test: NaN", env_steps=0)])
    steps = _steps(ui)
    assert steps.total == 1000 + 200 + 0 and steps.completed == steps.total
    ui.end_generation()


def test_the_steps_bar_ends_at_100_percent_past_or_short_of_the_budget(tmp_path: Path):
    """Whole rollouts past the budget (3008/3000), halving's stops (5855/7168 before), an MPC
    episode that ended early (110/400 before): the bar counts what really ran."""
    for budgets, results, mpc in [
        ([3000], [CandidateResult("ok", fitness=1.0, env_steps=3008)], False),
        ([200, 200], [CandidateResult("ok", fitness=1.0, env_steps=110),
                      CandidateResult("ok", fitness=2.0, env_steps=200)], True),
        ([4096, 4096], [CandidateResult("ok", fitness=1.0, env_steps=4096),
                        CandidateResult("pruned", reason="rung 1", env_steps=1024)], False),
    ]:
        ui, _ = _ui()
        _run(ui, tmp_path / str(budgets[0]) / str(len(results)), budgets, results, mpc)
        steps = _steps(ui)
        assert steps.completed == steps.total == sum(r.env_steps for r in results)
        ui.end_generation()


def test_plan_says_the_budget_and_the_eta_follows_measured_throughput(tmp_path: Path):
    ui, out = _ui()
    ui.plan(10_000, ["budget: search 1 generations x 2 candidates x 3,008 = 6,016 env steps"],
            per_candidate=3008)
    assert ui.eta_seconds() is None  # nothing measured yet
    _run(ui, tmp_path, [3008, 3008], [CandidateResult("ok", fitness=1.0, env_steps=3008),
                                      CandidateResult("rejected", reason="x", env_steps=0)])
    left = 10_000 - 3008 - 3008
    assert ui._run_left == left
    eta = ui.eta_seconds()
    assert eta is not None and eta > 0
    ui.end_generation()
    text = _plain(out)
    assert "budget: search 1 generations x 2 candidates x 3,008" in text
    assert re.search(rf"env steps trained: 3,008; {left:,} left in the budget, ETA \d", text)
    assert eta_text(3900) == "ETA 1h05m" and eta_text(None) == "ETA ?"


@pytest.mark.parametrize("width", [80, 160])
def test_reasons_wrap_and_are_never_cut(tmp_path: Path, width: int):
    """Before: the line cut the reason at 90 characters, the table at 60 (``is below the``)."""
    ui, out = _ui(width=width)
    record = CandidateRecord(0, 0, "src", CandidateResult("screened_out", reason=LONG_REASON))
    ui.start_generation(0, 1, 1)
    ui.candidate_done(record)
    ui.end_generation()
    ui.show(ui.generation_table([record]))
    words = " ".join(re.sub(r"[│┃┏┓┗┛━─╇╈┡┩┳┻╭╮╰╯╷╵┃|]", " ", _plain(out)).split())
    assert words.count("successes ranked above failures") == 2, words
    assert words.count("below the threshold 0.8") == 2 or width > 100  # folded in its column
    assert "0.62" in words.split("candidates candidate")[-1]
