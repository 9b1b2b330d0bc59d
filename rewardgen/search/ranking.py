"""The person (or the trusted metric) in the loop: ICPL rankings and free-text feedback.

ICPL (Yu et al. 2024) ranks a generation's trained candidates by their rollouts; the most
preferred one becomes the reward the next prompt improves, the least preferred one's code and
training feedback and the reward trace (how the preferred reward changed from generation to
generation) go into the next prompt (:mod:`rewardgen.search.icpl`, which also picks the run's
best: by fitness, as ICPL's code). The loop ranks each generation once, right after it trained
(:func:`rank_generation`, saved to ``gen_XXX/ranking.json`` so a resume never asks twice), and
marks the records (``CandidateRecord.preference_rank``); :func:`rewardgen.methods.eureka.best_record`
follows the marks. ``feedback.preference``:
``human`` asks in the terminal (rollout video paths are shown), ``file`` reads the order from
``feedback.preference_file`` (works over ssh and in batch jobs), ``fitness`` ranks by the trusted
metric (ICPL's synthetic-preference setting); ``vlm`` by the win rates of the loop's pairwise
VLM tournament on rollout frames (rewardgen/judge.py, run for every generation when set).

Text2Reward's human feedback (``feedback.mode=interactive``) is also read here: a summary and the
video path are shown, the person's text goes into the next prompt.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from rewardgen.config import FeedbackConfig
from rewardgen.errors import ConfigError
from rewardgen.runs.atomic import read_json
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.sandbox.contract import clean_text
from rewardgen.search.icpl import (
    PREFERENCE_BESTS,
    preference_feedback,
    preference_text,
    reward_trace,
    run_best,
    samples_per_generation,
)

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


def reward_line(record: CandidateRecord, cand_dir: Path, shown: int = 8) -> str:
    """The reward a candidate trained on: its file and its components' mean episode sums at the
    end of training (names are the program's: cleaned)."""
    stats = record.result.component_stats or {}
    parts = [f"{clean_text(name, keep_newlines=False)[:40]} {values[-1]:.3g}"
             for name, values in list(stats.items())[:shown]
             if isinstance(values, list) and values and isinstance(values[-1], int | float)]
    more = f", +{len(stats) - shown} more" if len(stats) > shown else ""
    about = f" (components, mean episode sum: {', '.join(parts)}{more})" if parts else ""
    return f"{cand_dir / 'reward.py'}{about}"


def _ask_order(options: list[CandidateRecord], cand_dir: CandDir, stdin: TextIO,
               stdout: TextIO, video: Callable[[CandidateRecord], str] | None = None
               ) -> list[CandidateRecord]:
    stdout.write("Rank the policies of this generation: watch each video; the reward it was "
                 "trained on is below it.\n")
    for i, record in enumerate(options):
        watch = video(record) if video else rollout_path(cand_dir(record))
        stdout.write(f"  [{i}] {record.label}\n      video:  {watch}\n"
                     f"      reward: {reward_line(record, cand_dir(record))}\n")
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


def _vlm_order(options: list[CandidateRecord], cand_dir: CandDir,
               incumbent: CandidateRecord | None) -> list[CandidateRecord]:
    from rewardgen.search.judge import TOURNAMENT_FILE, vlm_win_rate

    rated = [(vlm_win_rate(r.result), r) for r in options]
    if any(rate is None for rate, _ in rated):
        raise ConfigError(
            "feedback.preference=vlm ranks by the loop's VLM tournament, which has not judged "
            f"{[r.label for rate, r in rated if rate is None]}; run it inside the loop "
            "(rewardgen ... feedback.preference=vlm) or use human, file or fitness")
    tournament = cand_dir(options[0]).parent / TOURNAMENT_FILE
    saved = read_json(tournament) if tournament.is_file() else {}
    if saved.get("ranking"):  # the tournament's own order, the incumbent included
        by_label = {r.label: r for r in options}
        if incumbent is not None:
            by_label.setdefault(incumbent.label, incumbent)
        order = [by_label[label] for label in saved["ranking"] if label in by_label]
        return order + [r for r in options if r not in order]
    return [r for _, r in sorted(rated, key=lambda p: -(p[0] or 0.0))]


def rank_candidates(records: Sequence[CandidateRecord], source: str, cand_dir: CandDir,
                    *, incumbent: CandidateRecord | None = None,
                    preference_file: str | None = None, stdin: TextIO | None = None,
                    stdout: TextIO | None = None,
                    video: Callable[[CandidateRecord], str] | None = None) -> list[CandidateRecord]:
    """The generation's trained candidates, best first, by ``source``.

    ``human`` shows each candidate's ``video`` (default: :func:`rollout_path`) and its reward.

    ``vlm`` follows the loop's tournament, which also played ``incumbent`` (the reward the
    generation was asked to improve): it is in the ranking, and when it stays on top no new
    candidate is preferred. The other sources rank the generation alone, as ICPL does.

    Raises:
        ConfigError: an unknown source, ``vlm`` without the loop's VLM tournament, a missing
            or unusable preference file, or no valid answer in the terminal.
    """
    if source not in PREFERENCE_SOURCES:
        raise ConfigError(f"feedback.preference={source!r} is not one of {PREFERENCE_SOURCES}")
    options = _trained(records)
    if source == "vlm" and options:
        return _vlm_order(options, cand_dir, incumbent)
    if len(options) < 2:
        return options
    if source == "fitness":
        return sorted(options, key=lambda r: r.result.fitness or 0.0, reverse=True)
    if source == "file":
        return _file_order(options, preference_file)
    return _ask_order(options, cand_dir, stdin or sys.stdin, stdout or sys.stdout, video)


def mark_ranking(records: Sequence[CandidateRecord], labels: Sequence[str]) -> list[CandidateRecord]:
    """``records`` with their place in the ranking ``labels`` (best first; unranked: None)."""
    place = {label: i for i, label in enumerate(labels)}
    return [dataclasses.replace(r, preference_rank=place.get(r.label)) for r in records]


def rank_generation(cfg: FeedbackConfig, store: RunStore, generation: int,
                    records: Sequence[CandidateRecord], incumbent: CandidateRecord | None = None,
                    *, stdin: TextIO | None = None, stdout: TextIO | None = None,
                    video_steps: int = 300) -> list[CandidateRecord]:
    """Rank a finished generation by ``feedback.preference`` (once: the ranking is saved) and
    return its records marked with their places; unchanged when preferences are off.

    ``human``: a candidate without a video gets one first, ``video_steps`` long, recorded from
    its trusted ``policy.zip`` (:func:`rewardgen.reporting.video.candidate_video`).

    The mark is what steers the search: the preferred candidate becomes the next prompt's
    reward and the reflected one (:func:`rewardgen.methods.eureka.best_record`); the run's best
    is :func:`rewardgen.search.icpl.run_best`'s (by fitness unless ``feedback.preference_best``
    says ``preferred``).
    """
    if not cfg.preference:
        return list(records)
    labels = store.read_ranking(generation, cfg.preference)
    if labels is None:
        from rewardgen.reporting.video import candidate_video

        ranking = rank_candidates(records, cfg.preference,
                                  lambda r: store.cand_dir(r.generation, r.index),
                                  incumbent=incumbent, preference_file=cfg.preference_file,
                                  stdin=stdin, stdout=stdout,
                                  video=lambda r: candidate_video(store, r, max_steps=video_steps))
        labels = [r.label for r in ranking]
        store.write_ranking(generation, cfg.preference, labels)
    return mark_ranking(records, labels)


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
                     process: Callable[[CandidateRecord], str] | None = None,
                     context: str = "iteration") -> str | None:
    """Extra text feedback for the next prompt, each part under its own heading.

    Human text (``feedback.human``, ``feedback.human_file``, or asked in the terminal with
    ``feedback.mode=interactive``) and CARD's process feedback (made by ``process(record)`` for
    the reward the prompt improves, ``best_record(history, context)``, which scores it along its
    stored episodes in a sandboxed worker; the caller passes ``process`` when it is on,
    :func:`rewardgen.search.scoring.process_feedback_on`, and ``feedback.process=false`` keeps
    it off). ICPL's ranking text has
    its own budget: :func:`preference_feedback`.
    """
    from rewardgen.methods.feedback import human_feedback

    parts = []
    text = human_feedback(cfg)
    last = history[-1] if history else []
    if cfg.mode == "interactive" and last:
        asked = ask_human(generation_summary(last, cand_dir), stdin, stdout)
        text = "\n".join(t for t in (text, asked) if t) or None
    if text:
        parts.append(text)
    if cfg.process is not False and history and process is not None:
        from rewardgen.methods.eureka import best_record

        best = best_record(history, context)
        text = process(best) if best else ""
        if text:
            parts.append(f"Process feedback ({best.label if best else ''}):\n{text}")
    return "\n\n".join(parts) or None


def check_feedback_config(cfg: FeedbackConfig) -> None:
    """Fail at start, not after the first generation, on unusable feedback settings.

    Raises:
        ConfigError: an unknown mode or preference source, or ``file`` without its file
            (``vlm``'s endpoint is checked by :func:`rewardgen.search.judge.check_judge_config`).
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
    if int(cfg.preference_chars) < 0:
        raise ConfigError(f"feedback.preference_chars={cfg.preference_chars} must be at least 0 "
                          "(the ICPL text's bound; e.g. 12000)")
    if str(cfg.preference_best) not in PREFERENCE_BESTS:
        raise ConfigError(f"feedback.preference_best={cfg.preference_best!r} is not one of "
                          f"{PREFERENCE_BESTS}")
    samples = cfg.preference_samples
    if samples is not None and (isinstance(samples, bool) or int(samples) < 1):
        raise ConfigError(f"feedback.preference_samples={samples} must be at least 1 (ICPL: 6) "
                          "or null (loop.samples)")


__all__ = [
    "FEEDBACK_MODES",
    "PREFERENCE_SOURCES",
    "ask_human",
    "check_feedback_config",
    "collect_feedback",
    "generation_summary",
    "mark_ranking",
    "preference_feedback",
    "preference_text",
    "rank_candidates",
    "rank_generation",
    "reward_trace",
    "rollout_path",
    "run_best",
    "samples_per_generation",
]
