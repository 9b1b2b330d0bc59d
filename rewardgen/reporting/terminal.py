"""The terminal: rich progress while a run goes, and summary tables at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
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
WIDE_TABLE = 120  # columns from which the candidates table holds the reasons itself


def _fit(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _read_steps(out: Path) -> int:
    """Env steps a running candidate reported (its progress file; an MPC episode writes it in
    its own folder, a training under train/); 0 when there is none yet or it is unreadable."""
    for path in (out / TRAIN_DIR / PROGRESS_FILE, out / PROGRESS_FILE):
        try:
            return max(0, int(load_json(path, 1)["timesteps"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def eta_text(seconds: float | None) -> str:
    """``"ETA 1h05m"``, ``"ETA 4m10s"``, ``"ETA 12s"``; ``"ETA ?"`` before anything was measured.

    Example:
        >>> eta_text(3900), eta_text(250), eta_text(12.4), eta_text(None)
        ('ETA 1h05m', 'ETA 4m10s', 'ETA 12s', 'ETA ?')
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "ETA ?"
    s = int(round(seconds))
    if s >= 3600:
        return f"ETA {s // 3600}h{s % 3600 // 60:02d}m"
    return f"ETA {s // 60}m{s % 60:02d}s" if s >= 60 else f"ETA {s}s"


class RunUI:
    """Progress of one run: generation, candidates done, best fitness so far, env steps and the
    run's ETA (from the env steps trained so far per second of this run)."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.best: float | None = None
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._stop_watch: threading.Event | None = None
        self._steps_id: TaskID | None = None
        self._jobs: dict[str, tuple[Path, int]] = {}  # running: label -> (out dir, budget)
        self._finished: dict[str, int] = {}  # label -> env steps it really ran
        self._lock = threading.Lock()
        # the run's budget (:meth:`plan`): what is left of it, and the throughput measured here
        self._run_left: int | None = None
        self._started = time.monotonic()
        self._trained = 0  # env steps finished by candidates of this process
        self._per_candidate = 0

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

    def plan(self, total_steps: int, lines: Sequence[str] = (), per_candidate: int = 0) -> None:
        """Say what the run will train (``lines``, plain text) and keep ``total_steps`` for the
        ETA, which then follows the env steps per second measured while it runs.
        ``per_candidate``: a search candidate's budget, taken off when one never trains
        (rejected, screened out) or finished before a resume."""
        from rich.markup import escape

        for line in lines:
            self.say(escape(line))
        self._run_left = max(0, int(total_steps))
        self._per_candidate = max(0, int(per_candidate))
        self._started = time.monotonic()
        self._trained = 0

    def eta_seconds(self, running: int = 0) -> float | None:
        """Seconds left for the run's budget at the throughput measured so far (None: unknown).

        ``running``: env steps the running candidates have trained and not yet reported."""
        done = self._trained + running
        if self._run_left is None or done <= 0:
            return None
        rate = done / max(1e-6, time.monotonic() - self._started)
        return max(0, self._run_left - running) / rate

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

    def watch_steps(self, jobs: Mapping[str, tuple[Path, int]]) -> None:
        """Show env steps of the running candidates (label -> (out dir, budget)), read from their
        progress files; a finished candidate counts the steps it really ran, so the bar ends at
        100 % whether candidates were pruned, failed or ran whole rollouts past their budget."""
        self._jobs, self._finished = dict(jobs), {}
        total = sum(budget for _, budget in self._jobs.values())
        if self._progress is None or total <= 0:
            return
        progress = self._progress
        self._steps_id = progress.add_task("env steps", total=total, note="")
        stop = self._stop_watch = threading.Event()

        def poll() -> None:
            while not stop.wait(1.0):
                self._refresh_steps(progress, read=True)

        threading.Thread(target=poll, name="rewardgen-progress", daemon=True).start()

    def _refresh_steps(self, progress: Progress, read: bool = False) -> None:
        """The steps bar: finished candidates' real steps plus the running ones' progress."""
        if self._steps_id is None:
            return
        running = 0
        with self._lock:
            jobs = [(label, out, budget) for label, (out, budget) in self._jobs.items()
                    if label not in self._finished]
            finished = sum(self._finished.values())
        for _, out, budget in jobs:
            if read:
                running += min(budget, _read_steps(out))
        note = eta_text(self.eta_seconds(running)) if self._run_left is not None else ""
        progress.update(self._steps_id, completed=finished + running,
                        total=finished + sum(b for _, _, b in jobs), note=note)

    def candidate_done(self, record: CandidateRecord, label: str | None = None) -> None:
        result = record.result
        label = label or record.label
        if result.ok and result.fitness is not None and (self.best is None or result.fitness > self.best):
            self.best = result.fitness
        reason = clean_text(result.reason, keep_newlines=False)
        status = result.status if result.ok else f"{result.status}: {reason}"
        log.info("%s %s fitness=%s", label, status, _fit(result.fitness))
        if label in self._jobs:
            steps = max(0, int(result.env_steps or 0))
            with self._lock:
                self._finished[label] = steps
            self._trained += steps
            if self._run_left is not None:  # its budget is spent, or saved (pruned, rejected)
                self._run_left = max(0, self._run_left - max(steps, self._jobs[label][1]))
        elif self._run_left is not None:  # rejected, screened out, or finished before a resume
            self._run_left = max(0, self._run_left - self._per_candidate)
        if self._progress is not None:
            self._progress.update(self._task_id, advance=1, note=f"best fitness {_fit(self.best)}")
            self._refresh_steps(self._progress)
            line = f"  {label}  fitness {_fit(result.fitness):>9}  {status}"
            self._progress.console.print(markup_safe(line, keep_newlines=False))

    def end_generation(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
            self._stop_watch = None
        if self._progress is not None:
            self._refresh_steps(self._progress, read=True)
            self._progress.stop()
            self._progress = None
        if self._run_left is not None and self._trained:
            self.say(f"env steps trained: {self._trained:,}; {self._run_left:,} left in the "
                     f"budget, {eta_text(self.eta_seconds())} at "
                     f"{self._trained / max(1e-6, time.monotonic() - self._started):,.0f} steps/s")
        self._steps_id = None
        self._jobs, self._finished = {}, {}

    def generation_table(self, records: Sequence[CandidateRecord]) -> Any:
        """The generation's candidates. A reason is wrapped, never cut (its figures are what the
        screen or the pruner used): in its column on a wide terminal, else as lines below."""
        from rich.console import Group

        inline = self.console.width >= WIDE_TABLE
        table = Table(title="candidates", show_lines=False)
        for col in ("candidate", "status", "fitness", "success", "steps", "wall s"):
            table.add_column(col, no_wrap=True)
        if inline:
            table.add_column("reason", overflow="fold", ratio=1, min_width=40)
        below: list[str] = []
        for r in records:
            res = r.result
            reason = markup_safe(res.reason, keep_newlines=False)
            cells = [r.label, res.status, _fit(res.fitness), _fit(res.success_rate),
                     str(res.env_steps), f"{res.wall_time_s:.0f}"]
            table.add_row(*cells, *([reason] if inline else []))
            if reason and not inline:
                below.append(f"  {r.label}: {reason}")
        return Group(table, *below) if below else table

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
