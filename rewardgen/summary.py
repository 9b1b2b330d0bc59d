"""The end of a run: summary.json and the tables that say where the results are."""

from __future__ import annotations

from typing import Any

from rewardgen.config import ReportConfig
from rewardgen.loop import LoopOutcome
from rewardgen.ui import RunUI


def build_summary(outcome: LoopOutcome) -> dict[str, Any]:
    """Everything a reader of the run needs first; ``stopped`` says why a search ended early."""
    records = [r for gen in outcome.history for r in gen]
    best = outcome.best
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.result.status] = statuses.get(r.result.status, 0) + 1
    return {
        "run_dir": str(outcome.store.root),
        "generations": len(outcome.history),
        "candidates": len(records),
        "statuses": statuses,
        "rl_runs_saved": statuses.get("screened_out", 0),  # CARD screening skipped their RL
        "best": None if best is None else {
            "candidate": best.label,
            "fitness": best.result.fitness,
            "success_rate": best.result.success_rate,
            "reward_file": str(outcome.store.best_dir / "reward.py"),
            "reward_fitness_correlation": best.result.reward_fitness_correlation,
        },
        "best_fitness_per_generation": [
            max((r.result.fitness for r in gen if r.result.ok and r.result.fitness is not None),
                default=None)
            for gen in outcome.history
        ],
        "env_steps": sum(r.result.env_steps for r in records),
        "train_wall_time_s": sum(r.result.wall_time_s for r in records),
        "llm_usage": outcome.usage,
        "final": outcome.final,
        "stopped": outcome.stopped,
    }


def finish_run(outcome: LoopOutcome, ui: RunUI, report: ReportConfig | None = None) -> dict[str, Any]:
    """Write summary.json (also for a stopped run: the best so far), the HTML report, and print
    where things are."""
    summary = build_summary(outcome)
    outcome.store.write_summary(summary)
    report = report or ReportConfig()
    if report.enabled:
        from rewardgen.report import report_at_end

        page = report_at_end(outcome.store.root, videos=report.videos, video_steps=report.video_steps)
        if page is not None:
            ui.say(f"report: {page}")
    if outcome.stopped is None:
        outcome.store.event("run_finished", best=(summary["best"] or {}).get("candidate"))
    else:
        ui.say("[bold red]search stopped early[/]: summary.json holds the best so far")
    if outcome.final is not None:
        ui.show(ui.final_table(outcome.final))
        hns = outcome.final.get("human_normalised_score")
        if hns is not None:
            ui.say(f"human-normalised score: {hns:.3f}  ((generated - sparse) / |native - sparse|)")
    ui.say(f"run directory: {outcome.store.root}")
    if summary["best"]:
        ui.say(f"best reward: {summary['best']['reward_file']}  (fitness {summary['best']['fitness']:.3f}, "
               f"{summary['best']['candidate']})")
    else:
        ui.say("[bold red]no candidate trained successfully[/]; see the reasons in the table above")
    return summary
