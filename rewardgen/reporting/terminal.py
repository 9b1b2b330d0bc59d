"""The terminal: rich progress while a run goes, and summary tables at the end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.errors import MarkupError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from rewardgen.runs.records import PROGRESS_FILE, TRAIN_DIR
from rewardgen.runs.store import CandidateRecord
from rewardgen.runs.untrusted import load_json
from rewardgen.sandbox.contract import clean_text, markup_safe

log = logging.getLogger(__name__)


def _fit(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class RunUI:
    """Progress of one run: generation, candidates done, best fitness so far."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.best: float | None = None
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._stop_watch: threading.Event | None = None
        self._steps: tuple[TaskID, int] | None = None  # the env-steps bar and one budget

    def say(self, text: str, *, soft_wrap: bool = False) -> None:
        """Print one status line: ``text`` is rich markup, so what a candidate, the LLM or a path
        put into it must come through :func:`markup_safe`. The log gets the plain text.
        ``soft_wrap``: never break the line (a command to paste)."""
        text = clean_text(text)
        try:
            plain = Text.from_markup(text).plain
        except MarkupError:  # a caller forgot to escape: show it literally rather than die
            text = markup_safe(text)
            plain = Text.from_markup(text).plain
        log.info(plain)
        if self.enabled:
            self.console.print(text, soft_wrap=soft_wrap)

    def start_generation(self, generation: int, total: int, n_candidates: int,
                         title: str | None = None) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._progress.start()
        label = title or f"generation {generation + 1}/{total}"
        self._task_id = self._progress.add_task(
            f"{label} candidates", total=n_candidates, note=f"best fitness {_fit(self.best)}"
        )

    def watch_steps(self, out_dirs: Sequence[Path], total_steps: int) -> None:
        """Show env steps of the running candidates, read from their progress files."""
        if self._progress is None or total_steps <= 0:
            return
        progress = self._progress
        steps_id = progress.add_task("env steps", total=total_steps, note="")
        self._steps = (steps_id, total_steps // max(1, len(out_dirs)))
        stop = self._stop_watch = threading.Event()

        def poll() -> None:
            while not stop.wait(1.0):
                done = 0
                for out in out_dirs:
                    try:
                        raw = load_json(out / TRAIN_DIR / PROGRESS_FILE, 1)
                        done += max(0, int(raw["timesteps"]))
                    except (OSError, ValueError, KeyError, TypeError):
                        continue
                progress.update(steps_id, completed=done)

        threading.Thread(target=poll, name="rewardgen-progress", daemon=True).start()

    def candidate_done(self, record: CandidateRecord, label: str | None = None) -> None:
        result = record.result
        label = label or record.label
        if result.ok and result.fitness is not None and (self.best is None or result.fitness > self.best):
            self.best = result.fitness
        reason = clean_text(result.reason, keep_newlines=False)
        status = result.status if result.ok else f"{result.status}: {reason[:90]}"
        log.info("%s %s fitness=%s", label, status, _fit(result.fitness))
        if self._progress is not None:
            self._progress.update(self._task_id, advance=1, note=f"best fitness {_fit(self.best)}")
            if self._steps is not None and not result.ok:
                # it ends short of its budget (pruned, rejected, failed): the bar's total follows
                steps_id, budget = self._steps
                task = next(t for t in self._progress.tasks if t.id == steps_id)
                total = int(task.total or 0)
                short = max(0, budget - int(result.env_steps or 0))
                self._progress.update(steps_id, total=max(0, total - short))
            line = f"  {label}  fitness {_fit(result.fitness):>9}  {status}"
            self._progress.console.print(markup_safe(line, keep_newlines=False))

    def end_generation(self) -> None:
        self._steps = None
        if self._stop_watch is not None:
            self._stop_watch.set()
            self._stop_watch = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def generation_table(self, records: Sequence[CandidateRecord]) -> Table:
        table = Table(title="candidates", show_lines=False)
        for col in ("candidate", "status", "fitness", "success", "steps", "wall s", "reason"):
            table.add_column(col)
        for r in records:
            res = r.result
            table.add_row(r.label, res.status, _fit(res.fitness), _fit(res.success_rate),
                          str(res.env_steps), f"{res.wall_time_s:.0f}",
                          markup_safe(res.reason, keep_newlines=False, max_chars=60))
        return table

    def final_table(self, final: dict[str, Any]) -> Table:
        """Per reward: IQM [95% bootstrap CI] and mean ± std of the fitness over the final seeds."""
        from rich.markup import escape

        from rewardgen.reporting.statistics import format_interval

        seeds = final.get("seeds") or []
        what = ("final MPC episodes" if final.get("planner") == "mpc" else
                f"final retraining: {int(final.get('timesteps') or 0):,} steps")
        table = Table(title=f"{what}, seeds {seeds} (search seed {final.get('search_seeds', '?')})")
        for col in ("reward", "fitness IQM [95% CI]", "mean ± std", "success", "ok seeds"):
            table.add_column(col)
        for name, row in final["variants"].items():
            fitness = "-" if row["fitness_mean"] is None else f"{row['fitness_mean']:.3f} ± {row['fitness_std']:.3f}"
            iqm = format_interval(row.get("fitness_iqm"), row.get("fitness_iqm_ci"),
                                  row.get("fitness_iqm_ci_reason"))
            table.add_row(name, escape(iqm), fitness, _fit(row.get("success_mean")),
                          f"{row['n_ok']}/{len(seeds)}")
        return table

    def show(self, renderable: Any) -> None:
        if self.enabled:
            self.console.print(renderable)
