"""ICPL's part of the next prompt and its choices (``feedback.preference``).

What a ranked generation teaches (:func:`preference_text`: the ranking, the bad example with its
training feedback, the reward trace), how many samples a preference mode asks for
(:func:`samples_per_generation`) and which candidate is the run's best (:func:`run_best`). The
rankings themselves are made in :mod:`rewardgen.search.ranking`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from typing import Any

from rewardgen.config import FeedbackConfig
from rewardgen.runs.store import CandidateRecord


def _code(record: CandidateRecord) -> str:
    return f"```python\n{(record.source or '').rstrip()}\n```"


def reward_trace(preferred: Sequence[CandidateRecord]) -> list[str]:
    """ICPL's reward trace: how each preferred reward differs from the one preferred before it,
    as compact unified diffs (oldest first)."""
    out = []
    for before, after in zip(preferred, preferred[1:], strict=False):
        diff = "\n".join(
            difflib.unified_diff(
                (before.source or "").splitlines(),
                (after.source or "").splitlines(),
                fromfile=before.label,
                tofile=after.label,
                lineterm="",
                n=1,
            )
        )
        out.append(
            f"```diff\n{diff}\n```" if diff else f"{before.label} -> {after.label}: the same code"
        )
    return out


def preference_text(
    history: Sequence[Sequence[CandidateRecord]],
    limit_chars: int = 12_000,
    reflect: Callable[[CandidateRecord], str] | None = None,
) -> str:
    """ICPL's feedback on the last ranked generation, within ``limit_chars``.

    The ranking line; the least preferred reward's code and, as ICPL gives its bad example
    (icpl.py:617-620), its training feedback (``reflect(record)``, without the task score); the
    reward trace, newest diffs first. The most preferred reward is not repeated: it is the
    reward of the previous answer in the conversation (the marks make it so), its feedback
    above. Code is never cut: what does not fit is left out whole, older trace diffs first,
    then the bad example's feedback, then its code, each with a note saying so.
    """
    last = history[-1] if history else []
    ranked = sorted(
        (r for r in last if r.preference_rank is not None), key=lambda r: r.preference_rank or 0
    )
    if not ranked:
        return ""
    preferred = [r for gen in history for r in gen if r.preferred]
    current = preferred[-1] if preferred else None
    head = [
        f"The policies of the last generation were ranked (best first): "
        f"{' > '.join(r.label for r in ranked)}."
    ]
    if ranked[0].preferred:
        head.append(
            f"Most preferred: {ranked[0].label}, the reward function of your previous "
            "answer above (its training feedback is above)."
        )
    elif current is not None:
        head.append(
            f"None of them was preferred over {current.label}, the reward function of "
            "your previous answer above: it stays the one to improve."
        )
    least = ranked[-1] if len(ranked) > 1 else None
    tail = (
        "Write a reward that keeps what makes the preferred one (the good example) better "
        "and fixes what the least preferred one (the bad example) gets wrong; build on the "
        "good example, not on the bad one."
        if least
        else "Improve the preferred reward."
    )
    room = limit_chars - sum(len(t) + 1 for t in (*head, tail))
    body: list[str] = []
    if least is not None:
        block = f"Least preferred reward ({least.label}):\n{_code(least)}"
        seen = reflect(least).strip() if reflect is not None else ""
        with_feedback = f"{block}\nIts training feedback:\n{seen}" if seen else block
        if len(with_feedback) + 1 <= room:
            block = with_feedback
        elif len(block) + 1 > room:
            block = (
                f"(The least preferred reward, {least.label}, is left out: its code does "
                "not fit feedback.preference_chars.)"
            )
        body.append(block)
        room -= len(block) + 1
    diffs = reward_trace(preferred)
    if diffs:
        header = (
            "Reward trace: how the most preferred reward changed from generation to "
            "generation (unified diffs, oldest first):"
        )
        dropped = "({n} earlier change(s) of the trace left out: over feedback.preference_chars)"
        room -= len(header) + 1
        if sum(len(d) + 1 for d in diffs) > room:
            room -= len(dropped) + len(str(len(diffs))) + 1
        shown: list[str] = []
        for diff in reversed(diffs):  # the newest changes matter most
            if len(diff) + 1 > room:
                break
            shown.insert(0, diff)
            room -= len(diff) + 1
        left = len(diffs) - len(shown)
        body.append("\n".join([header, *([dropped.format(n=left)] if left else []), *shown]))
    return "\n".join([*head, *body, tail])


def preference_feedback(
    cfg: FeedbackConfig,
    history: Sequence[Sequence[CandidateRecord]],
    *,
    eval_freq: int = 0,
    fitness_doc: str = "",
) -> str | None:
    """The ICPL part of the next prompt (``feedback.preference``), bounded by
    ``feedback.preference_chars`` and never cutting code; None when preferences are off.

    With ``eval_freq`` the bad example carries its training feedback (Eureka's reflection
    without the task score, as ICPL's prompt has it)."""
    if not cfg.preference or not history:
        return None
    from rewardgen.methods.feedback import reward_reflection

    def reflect(record: CandidateRecord) -> str:
        return reward_reflection(
            record, fitness_doc or "higher is better", eval_freq, show_score=False
        )

    heading = f"Preference ({cfg.preference}):\n"
    text = preference_text(
        history,
        limit_chars=int(cfg.preference_chars) - len(heading),
        reflect=reflect if eval_freq > 0 else None,
    )
    return heading + text if text else None


ICPL_SAMPLES = 6  # ICPL's samples per iteration (icpl/cfg/config.yaml:31)
PREFERENCE_BESTS = ("fitness", "preferred")


def samples_per_generation(cfg: Any) -> int:
    """Reward programs asked per generation: ``feedback.preference_samples`` (ICPL's 6) when a
    preference mode is on and it is set, else ``loop.samples``."""
    feedback = cfg.feedback
    chosen = feedback.get("preference_samples")
    if feedback.get("preference") and chosen is not None:
        return int(chosen)
    return int(cfg.loop.samples)


def run_best(
    history: Sequence[Sequence[CandidateRecord]], cfg: FeedbackConfig
) -> CandidateRecord | None:
    """The run's best, what the final phase retrains.

    With a preference mode and ``feedback.preference_best=fitness`` (the default) the best by
    trusted fitness over every generation, as ICPL's code keeps ``max_success_overall``
    (icpl.py:652-661) while the preferences steer the prompts; ``preferred``: the latest
    preferred candidate (our earlier choice). Without preferences: the best by fitness.
    """
    from rewardgen.runs.store import best_record

    if cfg.preference and str(cfg.preference_best) == "fitness":
        plain = [[dataclasses.replace(r, preference_rank=None) for r in gen] for gen in history]
        found = best_record(plain, "all_time")
        if found is None:
            return None
        return next(r for gen in history for r in gen if r.label == found.label)
    return best_record(history, "all_time")


__all__ = [
    "ICPL_SAMPLES",
    "PREFERENCE_BESTS",
    "preference_feedback",
    "preference_text",
    "reward_trace",
    "run_best",
    "samples_per_generation",
]
