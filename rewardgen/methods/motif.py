"""Motif's language side: episode captions, the pair prompt, and preference labels.

An episode is captioned as a few lines of measurements from its States (the task's ``captions``
when its YAML declares them, else a default: progress by the task's fitness, duration and
whether it ended early — a fall —, torso height, uprightness and contacts). A pair of captions is
asked in both orders (Motif removes the position bias the same way); a pair is labelled only
when both answers name the same episode, so "no preference" and order-dependent answers are
kept out. ``llm=offline`` labels pairs by the trusted fitness instead, and says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError
from rewardgen.llm.base import Message, ProposalContext
from rewardgen.prompts import render
from rewardgen.tasks.fitness import NO_INFO, FitnessSpec
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

OFFLINE_LABELLER = "offline (trusted fitness, no language model)"
_CHOICE = re.compile(r"""choice"?\s*[:=]\s*"?(1|2|none)\b""", re.IGNORECASE)


def check_motif_config(m: Any) -> None:
    """Fail at start on unusable ``method=motif`` settings (called by ``cli/check.py``).

    Raises:
        ConfigError: one line naming the setting and the fix.
    """
    lows = {"episodes": 2, "pairs": 1, "states_per_pair": 1, "ensemble": 1, "max_epochs": 1,
            "collect_timesteps": 0, "coefficient": 0, "env_coefficient": 0}
    for name, low in lows.items():
        value = m[name]
        if value is None or isinstance(value, bool) or value < low:
            hint = "; 0 collects with a random policy" if name == "collect_timesteps" else ""
            raise ConfigError(f"method.{name}={value} must be at least {low}{hint}")
    if not m.lr > 0:
        raise ConfigError(f"method.lr={m.lr} must be greater than 0")
    if not 0.0 < m.accuracy_threshold <= 1.0:
        raise ConfigError(f"method.accuracy_threshold={m.accuracy_threshold} must lie in (0, 1]")
    if not 0.0 <= m.threshold_percentile <= 100.0:
        raise ConfigError(f"method.threshold_percentile={m.threshold_percentile} must lie in "
                          "[0, 100] (0 keeps every intrinsic reward)")
    if m.temperature is not None and m.temperature < 0:
        raise ConfigError(f"method.temperature={m.temperature} must be at least 0, or null")
    most = m.episodes * (m.episodes - 1) // 2
    if m.pairs > most:
        raise ConfigError(f"method.pairs={m.pairs} exceeds the {most} distinct pairs of "
                          f"method.episodes={m.episodes}; lower method.pairs or raise "
                          "method.episodes")


# ---------------------------------------------------------------- captions
@dataclass(frozen=True)
class EpisodeRecord:
    """One collected episode as the parent sees it (all numbers from the trusted collector)."""

    states: list[Any]
    fitness: float
    length: int
    ended_early: bool
    native_return: float = 0.0


def _aggregate(spec: FitnessSpec, states: Sequence[Any], dt: float) -> float:
    if spec.aggregate == "duration":
        return (len(states) - 1) * dt
    fn = spec.compile()
    values = np.asarray([float(fn(s, NO_INFO)) for s in states])
    if spec.aggregate in ("final", "delta"):
        return float(values[-1] - (values[0] if spec.aggregate == "delta" else 0.0))
    return float(getattr(np, spec.aggregate)(values))  # mean | sum | max | min


def _fmt(value: float, unit: str = "") -> str:
    return f"{value:.3g}" + (f" {unit}" if unit and unit not in ("", "1") else "")


def default_caption(task: TaskSpec, ep: EpisodeRecord, dt: float, cap: int | None) -> list[str]:
    """Progress, duration and falls, height, uprightness, contacts — what the State has."""
    doc = task.fitness.doc or "task score"
    lines = [f"progress ({doc}): {_fmt(ep.fitness, task.fitness.unit)}"]
    limit = f" of at most {cap}" if cap else ""
    end = ("it ended early: the robot fell or left the allowed region" if ep.ended_early
           else "it lasted until the time limit")
    lines.append(f"duration: {ep.length} steps ({ep.length * dt:.1f} s){limit}; {end}")
    fields = ep.states[0]._fields
    for name in fields:
        if "height" in name and np.ndim(getattr(ep.states[0], name)) == 0:
            values = [float(getattr(s, name)) for s in ep.states]
            lines.append(f"{name.replace('_', ' ')}: mean {np.mean(values):.3g} m, lowest "
                         f"{np.min(values):.3g} m, final {values[-1]:.3g} m")
    if "upright" in fields:
        values = [float(s.upright) for s in ep.states]
        lines.append(f"uprightness (1 upright, -1 upside down): mean {np.mean(values):.2f}, "
                     f"lowest {np.min(values):.2f}, final {values[-1]:.2f}")
    for name in (n for n in fields if "contact" in n):
        norms = np.asarray([float(np.linalg.norm(getattr(s, name))) for s in ep.states])
        lines.append(f"{name.replace('_', ' ')}: in contact on {np.mean(norms > 1e-6):.0%} of "
                     f"steps, mean magnitude {norms.mean():.3g}")
    return lines


def caption(task: TaskSpec, ep: EpisodeRecord, dt: float, cap: int | None = None) -> str:
    """The episode as text: the task's ``captions`` when declared, else the default."""
    if task.captions:
        lines = [f"{spec.doc}: {_fmt(_aggregate(spec, ep.states, dt), spec.unit)}"
                 for spec in task.captions]
    else:
        lines = default_caption(task, ep, dt, cap)
    return "\n".join(f"- {line}" for line in lines)


# ---------------------------------------------------------------- preferences
def pair_messages(task: TaskSpec, first: str, second: str) -> list[Message]:
    """Motif's pair question: which of two captioned episodes shows more progress."""
    return [
        {"role": "system", "content": render("motif", "system")},
        {"role": "user", "content": render("motif", "pair", description=task.description,
                                           first=first, second=second)},
    ]


def parse_choice(answer: str) -> int | None:
    """0 (episode 1), 1 (episode 2) or None (no preference, or no readable choice)."""
    found = _CHOICE.findall(answer or "")
    if not found or found[-1].lower() == "none":
        return None
    return int(found[-1]) - 1


def combine(forward: int | None, backward: int | None) -> int | None:
    """The label of a pair asked as (a, b) and as (b, a); None unless both name the same one."""
    if forward is None or backward is None:
        return None
    return forward if forward == 1 - backward else None


class PairLabeller:
    """Labels pairs of captions with a proposer (chat, replay), both orders, answers kept.

    Args:
        proposer: an :class:`~rewardgen.llm.base.Proposer` that is a language model.
        task: the task (its description goes into every prompt).
        seed: the request seed.
    """

    def __init__(self, proposer: Any, task: TaskSpec, seed: int = 0) -> None:
        self.proposer, self.task, self.seed = proposer, task, seed
        self.requests = 0

    def ask(self, first: str, second: str) -> tuple[int | None, str]:
        ctx = ProposalContext(task=self.task, generation=self.requests, seed=self.seed)
        self.requests += 1
        answers = self.proposer.propose(pair_messages(self.task, first, second), 1, ctx)
        text = answers[0].text if answers else ""
        return parse_choice(text), text

    def label(self, first: str, second: str) -> dict[str, Any]:
        """``{"label", "forward", "backward", "answers"}`` for captions ``first``, ``second``."""
        forward, a = self.ask(first, second)
        backward, b = self.ask(second, first)
        return {"label": combine(forward, backward), "forward": forward, "backward": backward,
                "answers": [a, b]}


def fitness_label(first: float, second: float) -> dict[str, Any]:
    """``llm=offline``: the episode of higher trusted fitness; equal fitness is no preference."""
    label = None if first == second else (0 if first > second else 1)
    return {"label": label, "forward": label, "backward": None if label is None else 1 - label,
            "answers": [], "labeller": OFFLINE_LABELLER}


__all__ = ["EpisodeRecord", "OFFLINE_LABELLER", "PairLabeller", "caption", "check_motif_config",
           "combine",
           "default_caption", "fitness_label", "pair_messages", "parse_choice"]
