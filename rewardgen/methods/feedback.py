"""Turn what happened to candidates into text for the next prompt.

Eureka's reward reflection (each component's statistics at the evaluation points, fitness,
success, episode lengths), one-line failure reasons with trimmed tracebacks, and human feedback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rewardgen.config import FeedbackConfig
from rewardgen.errors import ConfigError
from rewardgen.prompts import render
from rewardgen.runs.store import CandidateRecord
from rewardgen.sandbox.contract import clean_text

log = logging.getLogger(__name__)
_MAX_POINTS = 10  # evaluation points shown per series (evenly subsampled)
_TRACEBACK_LINES = 8


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _series_line(name: str, values: Sequence[float | None]) -> str:
    clean = [v for v in values if v is not None]
    if not clean:
        return f"{name}: n/a"
    if len(values) > _MAX_POINTS:
        step = (len(values) - 1) / (_MAX_POINTS - 1)
        values = [values[round(i * step)] for i in range(_MAX_POINTS)]
    shown = ", ".join(_fmt(v) for v in values)
    return (
        f"{name}: [{shown}], Max: {max(clean):.2f}, Mean: {sum(clean) / len(clean):.2f}, "
        f"Min: {min(clean):.2f}"
    )


def reward_reflection(record: CandidateRecord, fitness_doc: str, eval_freq: int, *,
                      show_score: bool = True) -> str:
    """Eureka's policy feedback for one trained candidate.

    ``show_score=False`` (ICPL, whenever a preference mode ranks the candidates) leaves out the
    task_score and success_rate lines: ICPL's code shows the task score only with
    ``use_sparse_reward`` (icpl.py:483-488), so the LLM learns from the preferences alone.
    """
    result = record.result
    evaluations = result.evaluations
    lines = [_series_line(clean_text(name, keep_newlines=False), values)
             for name, values in result.component_stats.items()]
    if show_score:
        lines.append(_series_line("task_score", [e.get("fitness") for e in evaluations]))
        if any(e.get("success_rate") is not None for e in evaluations):
            lines.append(_series_line("success_rate", [e.get("success_rate") for e in evaluations]))
    lines.append(_series_line("episode_length", [e.get("length") for e in evaluations]))
    return render("eureka", "reflection", fitness_doc=fitness_doc, eval_freq=eval_freq, lines=lines,
                  show_score=show_score)


def failure_line(record: CandidateRecord) -> str:
    """One candidate's status and reason, with the tail of its traceback when there is one and
    what it teaches beyond that (a screened-out reward's preference feedback).

    Both are the candidate's own words: kept, but without control characters or escapes.
    """
    reason = clean_text(record.result.reason, keep_newlines=False) or "no reason given"
    text = f"- {record.label}: {record.result.status}: {reason}"
    tb = clean_text(record.result.traceback).strip()
    if tb:
        tail = tb.splitlines()[-_TRACEBACK_LINES:]
        text += "\n  " + "\n  ".join(tail)
    detail = clean_text(record.result.feedback).strip()  # bounded by its maker (screening)
    if detail:
        text += "\n  " + "\n  ".join(detail.splitlines())
    return text


def failure_summary(records: Sequence[CandidateRecord], limit_chars: int = 3000) -> str:
    """All failed candidates of a generation, most informative first, bounded in length."""
    failed = [r for r in records if not r.result.ok]
    lines: list[str] = []
    used = 0
    for record in failed:
        line = failure_line(record)
        if used + len(line) > limit_chars:
            lines.append(f"- ... and {len(failed) - len(lines)} more failures of the same kinds")
            break
        lines.append(line)
        used += len(line)
    return "\n".join(lines)


def human_feedback(cfg: FeedbackConfig) -> str | None:
    """Free-text feedback from config or from a file read afresh at every generation."""
    parts = []
    if cfg.human:
        parts.append(str(cfg.human).strip())
    if cfg.human_file:
        path = Path(cfg.human_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"feedback.human_file={cfg.human_file!r} does not exist")
        text = path.read_text().strip()
        if text:
            parts.append(text)
    return "\n".join(parts) or None
