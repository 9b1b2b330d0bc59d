"""The sweep report (``rewardgen-report --sweep DIR``): files, plot and terminal table.

The runs of a sweep are found and grouped by :mod:`rewardgen.reporting.sweep`; this module
writes ``sweep_summary.json``, ``sweep_summary.csv`` and ``sweep_report.png`` next to them and
prints the table (see that module's docstring for what the numbers are).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardgen.reporting import statistics as stats_summary
from rewardgen.reporting.sweep import (
    COST_LABELS,
    COSTS,
    LABELS,
    METRICS,
    VARIANTS,
    SweepGroup,
    find_runs,
    group_runs,
    suite_totals,
)
from rewardgen.runs.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from rewardgen.sandbox.contract import markup_safe

log = logging.getLogger(__name__)


def _cell(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.3f} ± {std or 0.0:.3f}"


def groups_csv(groups: list[SweepGroup]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["group", "task", "runs", "finished", *(f"{m}_{s}" for m in METRICS
                                                            for s in ("mean", "std", "n")),
                     "beats_human", *(f"{m}_mean" for m in COSTS),
                     *(f"{v}_{s}" for v in VARIANTS for s in ("iqm", "iqm_ci_low", "iqm_ci_high")),
                     "p_generated_over_native", "p_ci_low", "p_ci_high",
                     "human_normalised_undefined", "final_timesteps", "final_seeds"])
    for g in groups:
        row: list[Any] = [g.name, g.task, len(g.seeds), g.finished]
        for m in METRICS:
            row += [g.mean[m], g.std[m], len(g.values[m])]
        row += [g.beats_human, *(g.mean[m] for m in COSTS)]
        for v in VARIANTS:
            stat = g.final_iqm.get(v) or {}
            row += [stat.get("iqm"), *(stat.get("ci") or [None, None])]
        poi = g.p_improvement or {}
        row += [poi.get("value"), *(poi.get("ci") or [None, None])]
        row += [len(g.human_normalised_undefined), " ".join(map(str, g.final_timesteps)),
                " ".join(map(str, g.final_seeds))]
        writer.writerow(row)
    return buffer.getvalue()


def plot_groups(groups: list[SweepGroup], sweep_name: str) -> bytes:
    """PNG: one panel per group (fitness of search, final and baselines), one for the score."""
    from rewardgen.reporting.plots import sweep_panels

    panels = [(f"{g.name}\n({len(g.seeds)} seeds)",
               {LABELS[m]: (g.mean[m], g.std[m], g.values[m]) for m in METRICS[:4]})
              for g in groups]
    m = "human_normalised"
    scores = {g.name: (g.mean[m], g.std[m], g.values[m]) for g in groups}
    return sweep_panels(panels, scores, f"sweep {sweep_name}")


def _budget(g: SweepGroup) -> str:
    """The final phase's budget and seeds beside its numbers, e.g. ``128 steps, seeds 1000 2000``."""
    if not g.final_seeds:
        return "-"
    steps = " / ".join(f"{t:,}" for t in g.final_timesteps) or "?"
    shown = " ".join(map(str, g.final_seeds[:6]))
    more = f" (+{len(g.final_seeds) - 6})" if len(g.final_seeds) > 6 else ""
    return f"{steps} steps, seeds {shown}{more}"


def _human_normalised_cell(g: SweepGroup) -> str:
    undefined = len(g.human_normalised_undefined)
    if g.mean["human_normalised"] is None:
        return "undefined" if undefined else "-"
    cell = _cell(g.mean["human_normalised"], g.std["human_normalised"])
    return f"{cell} ({undefined} undefined)" if undefined else cell


def _cells(g: SweepGroup) -> list[tuple[str, str]]:
    """One group's row as (column, value) pairs; values are escaped for rich."""
    from rich.markup import escape

    beats = "-" if g.beats_human is None else "yes" if g.beats_human else "no"
    # the headline first: the fresh-seed final IQM; the search's peak after it, labelled as such
    cells = [("group", markup_safe(g.name)), ("runs (finished)", f"{len(g.seeds)} ({g.finished})")]
    for v in VARIANTS:
        stat = g.final_iqm.get(v) or {}
        cells.append((f"{v} IQM [95% CI]", escape(stats_summary.format_interval(
            stat.get("iqm"), stat.get("ci"), stat.get("ci_reason")))))
    poi = g.p_improvement or {}
    cells += [("P(generated > native) [95% CI]", escape(stats_summary.format_interval(
                  poi.get("value"), poi.get("ci"), poi.get("ci_reason"), digits=2))),
              (LABELS["search_fitness"] + " (mean ± std over runs)",
               _cell(g.mean["search_fitness"], g.std["search_fitness"])),
              (LABELS["human_normalised"], _human_normalised_cell(g)), ("beats human", beats),
              ("final budget", escape(_budget(g)))]
    cells += [(COST_LABELS[m] + " (mean)",
               "-" if g.mean[m] is None else f"{g.mean[m]:,.{4 if m == 'llm_cost_usd' else 0}f}")
              for m in COSTS]
    return cells


def _table(groups: list[SweepGroup], title: str) -> Any:
    """One row per group, one column per number (a wide terminal)."""
    from rich.table import Table

    table = Table(title=markup_safe(title))
    rows = [_cells(g) for g in groups]  # a sweep has at least one group (find_runs)
    for i, (name, _) in enumerate(rows[0]):
        table.add_column(name, no_wrap=i == 0,
                         justify="left" if name in ("group", "final budget") else
                         "center" if name == "beats human" else "right")
    for row in rows:
        table.add_row(*(value for _, value in row))
    return table


def _vertical_table(groups: list[SweepGroup], title: str) -> Any:
    """A section per group, one line per number (a terminal too narrow for :func:`_table`)."""
    from rich.table import Table

    table = Table(title=markup_safe(title), show_header=False)
    table.add_column("", no_wrap=True, style="bold")
    table.add_column("", overflow="fold")
    for i, g in enumerate(groups):
        if i:
            table.add_section()
        for name, value in _cells(g):
            table.add_row(name, f"[bold]{value}[/]" if name == "group" else value)
    return table


def sweep_table(groups: list[SweepGroup], title: str, console: Any) -> Any:
    """The wide table when it fits ``console`` unwrapped, else the vertical one (never ellipses,
    as ``rewardgen-tasks`` keeps its table readable at 80 columns)."""
    from rich.measure import Measurement

    wide = _table(groups, title)
    needed = Measurement.get(console, console.options.update_width(100_000), wide).maximum
    return wide if needed <= console.width else _vertical_table(groups, title)


def main_sweep(sweep_dir: str | Path, *, show: bool = True) -> dict[str, Any]:
    """Aggregate a sweep directory: write its summary files and plot, print its table.

    Args:
        sweep_dir: the folder of a ``rewardgen --multirun`` sweep (holding one run per job).
        show: print the table on the terminal.

    Returns:
        The content of ``sweep_summary.json``: ``runs``, ``groups`` and the output ``files``.

    Raises:
        RunDirError: the folder is missing or holds no run directories.
    """
    root = Path(sweep_dir).resolve()
    runs = find_runs(root)
    groups = group_runs(runs)
    files = {
        "json": str(root / "sweep_summary.json"),
        "csv": str(root / "sweep_summary.csv"),
        "plot": str(root / "sweep_report.png"),
    }
    summary: dict[str, Any] = {
        "sweep_dir": str(root),
        "runs": [{**asdict(r), "group": r.group} for r in runs],
        "groups": [asdict(g) for g in groups],
        "suite": suite_totals(groups),
        "statistics": stats_summary.describe(),
        "files": files,
    }
    atomic_write_text(files["csv"], groups_csv(groups))
    atomic_write_bytes(files["plot"], plot_groups(groups, root.name))
    atomic_write_json(files["json"], summary)
    unfinished = [r.run_dir for r in runs if not r.finished]
    if unfinished:
        log.warning("%d run(s) of the sweep have no summary.json yet (unfinished or failed): %s",
                    len(unfinished), ", ".join(Path(u).name for u in unfinished))
    if show:
        from rich.console import Console

        console = Console(stderr=True)
        console.print(sweep_table(groups, f"sweep {root} ({len(runs)} runs)", console))
        console.print(f"IQM [CI], P(generated > native): {stats_summary.METHOD}; they pool every "
                      f"final training of a group (its runs x their final seeds).",
                      markup=False, highlight=False)
        for g in groups:
            for line in g.human_normalised_undefined:
                console.print(f"human-normalised score undefined for {line}", markup=False,
                              highlight=False)
        suite = summary["suite"]
        if suite["fraction_beats_human"] is not None:
            console.print(f"generated beats human on {suite['tasks_beating_human']}/"
                          f"{suite['tasks_judged']} tasks ({suite['fraction_beats_human']:.0%}); "
                          f"LLM tokens {suite['total_llm_tokens']:,.0f}, cost "
                          f"${suite['total_llm_cost_usd']:.4f}, env steps "
                          f"{suite['total_env_steps']:,.0f}")
        console.print(markup_safe(f"table: {files['csv']}\nplot: {files['plot']}"))
    return summary

