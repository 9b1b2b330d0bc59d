"""The end of a run: summary.json and the tables that say where the results are."""

from __future__ import annotations

from typing import Any

from rewardgen.config import ReportConfig
from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.outcome import LoopOutcome
from rewardgen.sandbox.contract import markup_safe


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
        # Training seeds: the search's, and the final phase's fresh ones (never the same).
        "seeds": {"search": [outcome.store.manifest.get("seed")],
                  "final": (outcome.final or {}).get("seeds")},
        "stopped": outcome.stopped,
    }


def finish_run(outcome: LoopOutcome, ui: RunUI, report: ReportConfig | None = None) -> dict[str, Any]:
    """Write summary.json (also for a stopped run: the best so far), the HTML report, and print
    where things are."""
    summary = build_summary(outcome)
    summary["headline"] = run_headline(outcome, summary)
    outcome.store.write_summary(summary)
    if outcome.interrupted:  # Ctrl-C: no report, no tables; the CLI prints how to resume
        return summary
    report = report or ReportConfig()
    page = None
    if report.enabled:
        from rewardgen.reporting.report import report_at_end

        page = report_at_end(outcome.store.root, videos=report.videos, video_steps=report.video_steps)
        if page is not None:
            ui.say(f"report: {markup_safe(str(page))}")
    if outcome.stopped is None:
        outcome.store.event("run_finished", best=(summary["best"] or {}).get("candidate"))
    else:
        ui.say("[bold red]search stopped early[/]: summary.json holds the best so far")
    if outcome.final is not None:
        from rich.markup import escape

        from rewardgen.reporting.statistics import comparison_lines

        ui.show(ui.final_table(outcome.final))
        for line in comparison_lines(outcome.final):
            ui.say(escape(line))
    ui.say(f"run directory: {markup_safe(str(outcome.store.root))}")
    if summary["best"]:
        for line in best_lines(summary):
            ui.say(markup_safe(line))
    elif outcome.history:
        ui.say("[bold red]no candidate trained successfully[/]; see the reasons in the table above")
    else:
        ui.say("[bold red]no candidate was trained[/]")
    for line in next_steps(outcome, page is not None):
        ui.say(line, soft_wrap=True)
    return summary


def _selection(outcome: LoopOutcome) -> str | None:
    loop = (outcome.store.manifest.get("config") or {}).get("loop") or {}
    return None if loop.get("selection") is None else str(loop["selection"])


def run_headline(outcome: LoopOutcome, summary: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json's ``headline``: the final phase's IQM over fresh seeds where it ran, else
    the search peak, labelled (:func:`rewardgen.reporting.statistics.headline`)."""
    from rewardgen.reporting.statistics import headline

    if not summary["best"]:
        return None
    return headline(outcome.final, summary["best"]["fitness"], _selection(outcome))


def best_lines(summary: dict[str, Any]) -> list[str]:
    """The lines that say what the best reward scored: fresh seeds first, the search peak as such.

    Example:
        >>> best_lines({"best": {"reward_file": "r/best/reward.py", "candidate": "gen_000/cand_01"},
        ...             "headline": {"source": "search", "text": "3.408 (search peak, 1 seed)",
        ...                          "search_text": "3.408 (search peak, 1 seed)"}})
        ['best reward: r/best/reward.py  (gen_000/cand_01)', '  fitness 3.408 (search peak, 1 seed); no final phase retrained it on fresh seeds']
    """
    best, head = summary["best"], summary.get("headline") or {}
    lines = [f"best reward: {best['reward_file']}  ({best['candidate']})"]
    if head.get("source") == "final":
        lines.append(f"  final fitness {head['text']}")
        if head.get("search_text"):
            lines.append(f"  search: {head['search_text']}, not a fresh-seed result")
    else:
        lines.append(f"  fitness {head.get('text', '-')}; no final phase retrained it on fresh "
                     "seeds")
    return lines


def next_steps(outcome: LoopOutcome, has_report: bool) -> list[str]:
    """What to run next, as commands to paste (rich markup, paths escaped)."""
    root = markup_safe(str(outcome.store.root))
    if outcome.stopped is not None:
        return [f"next: continue the search with [bold]rewardgen-resume {root}[/]"]
    lines = ["next:", f"  open {root}/report.html" if has_report else
             f"  rewardgen-report {root}      (report.html with plots and videos)"]
    if outcome.best is not None:
        manifest = outcome.store.manifest
        task = markup_safe(str(manifest.get("task", "TASK")))
        seed = int(manifest.get("seed", 0))
        fresh = ",".join(str(seed + k) for k in (1, 2, 3))  # not the seed it won with
        method = ((manifest.get("config") or {}).get("method") or {}).get("name")
        kind = _reward_kind(method)
        if kind != "mpc":  # an MPC candidate has no policy to package
            lines.append(f"  rewardgen-export {root} --out exported/      (the best reward as a "
                         "package)")
        if kind == "progress":  # rewardgen-eval trains compute_reward programs only
            lines.append(f"  {root}/final/summary.json      (the progress function retrained on "
                         "fresh seeds; rewardgen-eval trains compute_reward programs, not "
                         "progress functions)")
        else:
            lines.append(f"  rewardgen-eval task={task} reward_file={root}/best/reward.py "
                         f"seeds=\\[{fresh}]      "
                         f"({'train RL on it' if kind == 'mpc' else 'retrain it'} on other seeds)")
    return lines


# What a method's programs are, where it is not a compute_reward program trained by RL (the
# methods' ``reward_kind``; named here because reporting sits below no method).
_REWARD_KINDS = {"l2r": "mpc", "progress": "progress"}


def _reward_kind(method: str | None) -> str:
    """``program``, ``progress`` or ``mpc`` for the manifest's method."""
    return _REWARD_KINDS.get(str(method), "program")
