"""The run's last lines: the fresh-seed final is the headline, and every `next:` hint works."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from rewardgen.reporting.summary import best_lines, finish_run, next_steps
from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.outcome import LoopOutcome
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore

FINAL = {
    "best": "gen_000/cand_00",
    "timesteps": 300_000,
    "seeds": [1000, 2000],
    "search_seeds": [0],
    "human_normalised_score": None,
    "human_normalised_reason": "no sparse fitness",
    "variants": {
        "generated": {
            "fitness_mean": 2.02,
            "fitness_std": 0.5,
            "fitness_iqm": 2.02,
            "fitness_iqm_ci": None,
            "success_mean": None,
            "n_ok": 2,
            "fitness_iqm_ci_reason": "no 95% CI with 2 seeds: needs at least 5",
        }
    },
}


def _outcome(tmp_path: Path, method: str, final: dict | None = None) -> LoopOutcome:
    store = RunStore.create(
        tmp_path / method,
        {
            "task": "inverted_pendulum",
            "method": method,
            "seed": 0,
            "config": {"method": {"name": method}, "loop": {"selection": "max"}},
        },
    )
    best = CandidateRecord(0, 0, "def f(): pass", CandidateResult("ok", fitness=3.408))
    return LoopOutcome(store=store, history=[[best]], best=best, final=final)


def test_the_fresh_seed_final_is_the_headline_and_the_search_peak_is_labelled(tmp_path: Path):
    """Issue 26: the terminal said ``best reward: ... (fitness 3.408)``, the search's peak."""
    out = io.StringIO()
    ui = RunUI(console=Console(file=out, width=200))
    summary = finish_run(_outcome(tmp_path, "eureka", FINAL), ui)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert (
        "final fitness 2.02 (no 95% CI with 2 seeds: needs at least 5) (IQM over 2 fresh "
        "seeds, 300,000 steps each)" in text
    )
    assert "search: 3.408 (search peak, 1 seed, loop.selection=max), not a fresh-seed" in text
    assert "(fitness 3.408" not in text
    assert summary["headline"]["source"] == "final" and summary["headline"]["fitness"] == 2.02
    alone = best_lines(
        {**summary, "headline": {"source": "search", "text": "3.408 (search peak, 1 seed)"}}
    )
    assert alone[1] == (
        "  fitness 3.408 (search peak, 1 seed); no final phase retrained it on fresh seeds"
    )


def test_a_progress_run_hints_no_rewardgen_eval_it_cannot_run(tmp_path: Path):
    """Issue 26: the progress run's ``rewardgen-eval ... reward_file=best/reward.py`` failed
    (rewardgen-eval trains compute_reward programs)."""
    progress = "\n".join(next_steps(_outcome(tmp_path, "progress"), has_report=False))
    assert "rewardgen-eval" not in progress.replace("rewardgen-eval trains", "")
    assert "rewardgen-export" in progress and "final/summary.json" in progress
    eureka = "\n".join(next_steps(_outcome(tmp_path, "eureka"), has_report=False))
    assert "rewardgen-eval task=inverted_pendulum reward_file=" in eureka
    l2r = "\n".join(next_steps(_outcome(tmp_path, "l2r"), has_report=False))
    assert "rewardgen-export" not in l2r and "train RL on it" in l2r


def test_the_reward_kinds_named_here_are_the_methods_own():
    from rewardgen.methods import METHODS, method_class
    from rewardgen.reporting.summary import _REWARD_KINDS, _reward_kind

    code_methods = list(METHODS)  # the methods that write reward code
    for name in code_methods:
        assert _reward_kind(name) == method_class(name).reward_kind, name
    assert set(_REWARD_KINDS) <= set(code_methods)
