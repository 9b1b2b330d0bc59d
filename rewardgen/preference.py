"""The person (or the trusted metric) in the loop: ICPL rankings and free-text feedback.

ICPL (Yu et al. 2024) ranks a generation's trained candidates by their rollouts and puts the
ranking, with the winners' and losers' code, into the next prompt. ``feedback.preference``:
``human`` asks in the terminal (rollout video paths are shown), ``file`` reads the order from
``feedback.preference_file`` (works over ssh and in batch jobs), ``fitness`` ranks by the trusted
metric (ICPL's synthetic-preference setting); ``vlm`` by the win rates of the loop's pairwise
VLM tournament on rollout frames (rewardgen/judge.py, run for every generation when set).

Text2Reward's human feedback (``feedback.mode=interactive``) is also read here: a summary and the
video path are shown, the person's text goes into the next prompt.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from rewardgen.config import FeedbackConfig
from rewardgen.errors import ConfigError
from rewardgen.store import CandidateRecord

log = logging.getLogger(__name__)

PREFERENCE_SOURCES = ("human", "file", "fitness", "vlm")
FEEDBACK_MODES = ("auto", "interactive", "file")
_ASK_ATTEMPTS = 3
CandDir = Callable[[CandidateRecord], Path]


def rollout_path(cand_dir: Path) -> str:
    """Where a person can watch a candidate's policy: its video, else its saved policy."""
    for name in ("video.mp4", "policy.zip"):
        if (cand_dir / name).is_file():
            return str(cand_dir / name)
    return f"{cand_dir} (no video or policy saved)"


def _trained(records: Sequence[CandidateRecord]) -> list[CandidateRecord]:
    return [r for r in records if r.result.ok and r.source]


def _ask_order(options: list[CandidateRecord], cand_dir: CandDir, stdin: TextIO,
               stdout: TextIO) -> list[CandidateRecord]:
    stdout.write("Rank the policies of this generation (watch the rollouts):\n")
    for i, record in enumerate(options):
        stdout.write(f"  [{i}] {record.label}: {rollout_path(cand_dir(record))}\n")
    for _ in range(_ASK_ATTEMPTS):
        stdout.write(f"Order, best first (e.g. {' '.join(str(i) for i in range(len(options)))}): ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            break
        picks = [int(tok) for tok in re.findall(r"\d+", line)]
        if sorted(picks) == list(range(len(options))):
            return [options[i] for i in picks]
        stdout.write(f"Please name each of 0..{len(options) - 1} exactly once.\n")
    raise ConfigError(
        "feedback.preference=human got no valid ranking from the terminal; rank in a file with "
        "feedback.preference=file feedback.preference_file=PATH instead"
    )


def _file_order(options: list[CandidateRecord], path_text: str | None) -> list[CandidateRecord]:
    if not path_text:
        raise ConfigError("feedback.preference=file needs feedback.preference_file=PATH")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ConfigError(f"feedback.preference_file={path_text!r} does not exist; write the "
                          "candidate labels there, best first, one per line")
    by_label = {r.label: r for r in options}
    named = [line.strip() for line in path.read_text().splitlines()]
    order = [by_label[label] for label in dict.fromkeys(named) if label in by_label]
    if not order:
        raise ConfigError(
            f"feedback.preference_file={path_text!r} names none of {sorted(by_label)}; "
            "list them best first, one label per line"
        )
    rest = [r for r in options if r not in order]  # unranked ones go last, in their order
    return order + rest


def rank_candidates(records: Sequence[CandidateRecord], source: str, cand_dir: CandDir,
                    *, preference_file: str | None = None, stdin: TextIO | None = None,
                    stdout: TextIO | None = None) -> list[CandidateRecord]:
    """The generation's trained candidates, best first, by ``source``.

    Raises:
        ConfigError: an unknown source, ``vlm`` without the loop's VLM tournament, a missing
            or unusable preference file, or no valid answer in the terminal.
    """
    if source not in PREFERENCE_SOURCES:
        raise ConfigError(f"feedback.preference={source!r} is not one of {PREFERENCE_SOURCES}")
    options = _trained(records)
    if len(options) < 2:
        return options
    if source == "fitness":
        return sorted(options, key=lambda r: r.result.fitness or 0.0, reverse=True)
    if source == "file":
        return _file_order(options, preference_file)
    if source == "human":
        return _ask_order(options, cand_dir, stdin or sys.stdin, stdout or sys.stdout)
    from rewardgen.judge import vlm_win_rate

    rated = [(vlm_win_rate(r.result), r) for r in options]
    if any(rate is None for rate, _ in rated):
        raise ConfigError(
            "feedback.preference=vlm ranks by the loop's VLM tournament, which has not judged "
            f"{[r.label for rate, r in rated if rate is None]}; run it inside the loop "
            "(rewardgen ... feedback.preference=vlm) or use human, file or fitness")
    return [r for _, r in sorted(rated, key=lambda p: -(p[0] or 0.0))]


def preference_text(ranking: Sequence[CandidateRecord], limit_chars: int = 3000) -> str:
    """ICPL's feedback: the ranking, with the best and the worst candidate's code."""
    if len(ranking) < 2:
        return ""
    best, worst = ranking[0], ranking[-1]
    order = " > ".join(r.label for r in ranking)
    room = max(200, (limit_chars - len(order) - 300) // 2)
    return (
        f"The policies of the last generation were ranked (best first): {order}.\n"
        f"Most preferred reward ({best.label}):\n```python\n{(best.source or '')[:room]}\n```\n"
        f"Least preferred reward ({worst.label}):\n```python\n{(worst.source or '')[:room]}\n```\n"
        "Write a reward that keeps what makes the preferred one better and fixes what the least "
        "preferred one gets wrong."
    )


def generation_summary(records: Sequence[CandidateRecord], cand_dir: CandDir) -> str:
    """A few lines a person can judge the last generation by (fitness, rollouts, failures)."""
    lines = []
    for r in records:
        if r.result.ok:
            fitness = "n/a" if r.result.fitness is None else f"{r.result.fitness:.2f}"
            lines.append(f"{r.label}: task score {fitness}; rollout: {rollout_path(cand_dir(r))}")
        else:
            lines.append(f"{r.label}: {r.result.status}: {r.result.reason}")
    return "\n".join(lines)


def ask_human(summary: str, stdin: TextIO | None = None, stdout: TextIO | None = None) -> str | None:
    """Show ``summary`` and read the person's feedback until an empty line or end of input."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    stdout.write(f"\n{summary}\nYour feedback on these policies (end with an empty line):\n")
    stdout.flush()
    lines: list[str] = []
    while True:
        line = stdin.readline()
        if not line or not line.strip():
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines).strip() or None


def collect_feedback(cfg: FeedbackConfig, history: Sequence[Sequence[CandidateRecord]],
                     cand_dir: CandDir, *, stdin: TextIO | None = None,
                     stdout: TextIO | None = None,
                     process: Callable[[CandidateRecord], str] | None = None) -> str | None:
    """All extra feedback for the next prompt, each part under its own heading.

    Human text (``feedback.human``, ``feedback.human_file``, or asked in the terminal with
    ``feedback.mode=interactive``), the ICPL ranking of the last generation
    (``feedback.preference``) and CARD's process feedback (``feedback.process``, made by
    ``process(best_record)``, which scores the best candidate's reward along its stored episode
    in a sandboxed worker).
    """
    from rewardgen.feedback import human_feedback

    parts = []
    text = human_feedback(cfg)
    last = history[-1] if history else []
    if cfg.mode == "interactive" and last:
        asked = ask_human(generation_summary(last, cand_dir), stdin, stdout)
        text = "\n".join(t for t in (text, asked) if t) or None
    if text:
        parts.append(text)
    if cfg.preference and last:
        ranking = rank_candidates(last, cfg.preference, cand_dir,
                                  preference_file=cfg.preference_file, stdin=stdin, stdout=stdout)
        ranked = preference_text(ranking, limit_chars=1800)
        if ranked:
            parts.append(f"Preference ({cfg.preference}):\n{ranked}")
    if cfg.process and history and process is not None:
        from rewardgen.methods.eureka import best_record

        best = best_record(history)
        text = process(best) if best else ""
        if text:
            parts.append(f"Process feedback ({best.label if best else ''}):\n{text}")
    return "\n\n".join(parts) or None


def check_feedback_config(cfg: FeedbackConfig) -> None:
    """Fail at start, not after the first generation, on unusable feedback settings.

    Raises:
        ConfigError: an unknown mode or preference source, or ``file`` without its file
            (``vlm``'s endpoint is checked by :func:`rewardgen.judge.check_judge_config`).
    """
    if cfg.mode not in FEEDBACK_MODES:
        raise ConfigError(f"feedback.mode={cfg.mode!r} is not one of {FEEDBACK_MODES}")
    if cfg.mode == "file" and not cfg.human_file:
        raise ConfigError("feedback.mode=file needs feedback.human_file=PATH (read every generation)")
    pref = cfg.preference
    if pref is not None and pref not in PREFERENCE_SOURCES:
        raise ConfigError(f"feedback.preference={pref!r} is not one of {PREFERENCE_SOURCES}")
    if pref == "file" and not cfg.preference_file:
        raise ConfigError("feedback.preference=file needs feedback.preference_file=PATH")


__all__ = [
    "FEEDBACK_MODES",
    "PREFERENCE_SOURCES",
    "ask_human",
    "check_feedback_config",
    "collect_feedback",
    "generation_summary",
    "preference_text",
    "rank_candidates",
    "rollout_path",
]
