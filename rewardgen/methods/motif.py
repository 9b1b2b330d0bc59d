"""Motif's language side: episode captions, the pair prompt, and preference labels.

An episode is captioned as a few lines about its behaviour (the task's ``captions`` when its YAML
declares them, else a default from the State fields of
:func:`~rewardgen.tasks.captions.behaviour_fields`). As Motif's annotator never sees the score
(``--use-blstats`` off, facebookresearch/motif ``scripts/annotate_pairs_dataset.py:26-29``), a
caption never shows the trusted fitness nor a quantity it is computed from. Each pair is asked
once, in dataset order (``rlaif/annotators.py:142-159``); ``both_orders`` asks the swapped order
too and averages the two. A label is the probability that the second episode is preferred:
0, 1, or 0.5 for "none" and for identical captions, which Motif never asks and trains on as 0.5
(``annotators.py:157-159``, ``scripts/train_reward.py:237-241``). An unreadable answer is asked
once more with a retry prompt (``rlaif/llms.py:73-95``) and dropped if still unreadable, as
Motif masks ``UNKNOWN`` out (``rlaif/dataset.py:180-186``). ``llm=offline`` labels by the
trusted fitness instead (Motif's ``score`` annotator), and says so.
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
from rewardgen.tasks.captions import behaviour_fields, is_contact
from rewardgen.tasks.fitness import NO_INFO, FitnessSpec
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

OFFLINE_LABELLER = "offline (trusted fitness, no language model)"
TIE = 0.5  # Motif's soft label for "no preference" (train_reward.py:238)
ENV_REWARDS = ("sparse", "native")
_CHOICE = re.compile(r"""choice"?\s*[:=]\s*"?(1|2|none)\b""", re.IGNORECASE)


def check_motif_config(m: Any) -> None:
    """Fail at start on unusable ``method=motif`` settings (called by ``cli/check.py``).

    Raises:
        ConfigError: one line naming the setting and the fix.
    """
    lows = {
        "episodes": 2,
        "pairs": 1,
        "states_per_episode": 0,
        "ensemble": 1,
        "max_epochs": 1,
        "batch_pairs": 1,
        "patience": 1,
        "collect_timesteps": 0,
        "coefficient": 0,
        "count_exponent": 0,
    }
    for name, low in lows.items():
        value = m[name]
        if value is None or isinstance(value, bool) or value < low:
            hint = "; 0 collects with a random policy" if name == "collect_timesteps" else ""
            raise ConfigError(f"method.{name}={value} must be at least {low}{hint}")
    if m.env_coefficient is not None and m.env_coefficient < 0:
        raise ConfigError(
            f"method.env_coefficient={m.env_coefficient} must be at least 0, or "
            "null for Motif's (1.0 on the sparse reward, 0.01 on the native one)"
        )
    if m.env_reward not in ENV_REWARDS:
        raise ConfigError(f"method.env_reward={m.env_reward!r} is not one of {ENV_REWARDS}")
    for name in ("lr", "message_resolution"):
        if not m[name] > 0:
            raise ConfigError(f"method.{name}={m[name]} must be greater than 0")
    if not 0.0 <= m.validation_share < 1.0:
        raise ConfigError(
            f"method.validation_share={m.validation_share} must lie in [0, 1) "
            "(0: no validation split, the fit runs method.max_epochs)"
        )
    if not 0.0 <= m.threshold_percentile <= 100.0:
        raise ConfigError(
            f"method.threshold_percentile={m.threshold_percentile} must lie in "
            "[0, 100] (0 keeps every intrinsic reward)"
        )
    if m.temperature is not None and m.temperature < 0:
        raise ConfigError(f"method.temperature={m.temperature} must be at least 0, or null")
    most = m.episodes * (m.episodes - 1) // 2
    if m.pairs > most:
        raise ConfigError(
            f"method.pairs={m.pairs} exceeds the {most} distinct pairs of "
            f"method.episodes={m.episodes}; lower method.pairs or raise "
            "method.episodes"
        )


def check_motif_run(cfg: Any, task: TaskSpec) -> None:
    """The run-level settings Motif cannot honour, refused in one line each.

    Motif trains one policy on one reward model, so ``loop.samples`` and ``loop.generations``
    must be 1 (conf/method/motif.yaml sets them); its env reward must exist on the task; its
    default caption needs a behaviour field to describe.

    Raises:
        ConfigError: the setting and the fix.
    """
    for key in ("samples", "generations"):
        value = int(cfg.loop[key])
        if value != 1:
            raise ConfigError(
                f"loop.{key}={value} does not apply to method=motif (one reward model, one "
                f"policy); drop it (Motif asks method.pairs; more trainings: final.n_seeds)"
            )
    env_reward = str(cfg.method.env_reward)
    if env_reward == "sparse" and not task.sparse_reward:
        raise ConfigError(
            f"method=motif adds its reward to the task's sparse reward and task "
            f"{task.name!r} has none; add sparse_reward to its YAML or set "
            "method.env_reward=native"
        )
    if not task.captions and not behaviour_fields(task):
        raise ConfigError(
            f"task {task.name!r}: every State field is a quantity of the fitness, "
            "so Motif's default caption would show the score; declare captions: "
            "in its YAML"
        )


def env_coefficient(m: Any) -> float:
    """``method.env_coefficient``, or Motif's effective one for ``method.env_reward``.

    Motif scales the env reward by ``--reward_scale 0.1`` in the actor (``actor_worker.py:458``)
    and again by ``--extrinsic_reward`` in the learner (``learner.py:792``): 0.1 on the score
    task (README.md:101-107), i.e. 0.01, and 10.0 on the goal-reaching tasks (README.md:110),
    i.e. 1.0. A task's sparse reward is a goal reward; its native reward a score.
    """
    if m.env_coefficient is not None:
        return float(m.env_coefficient)
    return 1.0 if str(m.env_reward) == "sparse" else 0.01


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


def _values(values: np.ndarray, unit: str) -> str:
    return (
        f"mean {_fmt(float(values.mean()), unit)}, lowest {_fmt(float(values.min()))}, "
        f"highest {_fmt(float(values.max()))}, final {_fmt(float(values[-1]))}"
    )


def default_caption(task: TaskSpec, ep: EpisodeRecord, dt: float, cap: int | None) -> list[str]:
    """The behaviour of an episode from the State fields that are not the fitness's.

    Duration and falls (unless the fitness is the duration), then per behaviour field: a scalar's
    mean, lowest, highest and final value; a contact field's share of steps in contact; a vector's
    mean absolute value per component (up to three) or overall.
    """
    lines = []
    if task.fitness.aggregate != "duration":
        limit = f" of at most {cap}" if cap else ""
        end = (
            "it ended early: the robot fell or left the allowed region"
            if ep.ended_early
            else "it lasted until the time limit"
        )
        lines.append(f"duration: {ep.length} steps ({ep.length * dt:.1f} s){limit}; {end}")
    for field in behaviour_fields(task):
        label = field.name.replace("_", " ")
        values = np.asarray(
            [np.asarray(getattr(s, field.name), dtype=np.float64) for s in ep.states]
        )
        if is_contact(field):
            norms = np.linalg.norm(values.reshape(len(values), -1), axis=1)
            lines.append(
                f"{label}: in contact on {np.mean(norms > 1e-6):.0%} of steps, mean "
                f"magnitude {norms.mean():.3g}"
            )
        elif values.ndim == 1:
            lines.append(f"{label}: {_values(values, field.unit)}")
        else:
            flat = np.abs(values.reshape(len(values), -1)).mean(axis=0)
            shown = ", ".join(f"{v:.3g}" for v in flat) if len(flat) <= 3 else f"{flat.mean():.3g}"
            per = " per component" if len(flat) <= 3 else " over its components"
            lines.append(
                f"{label}: mean absolute value{per} {shown}"
                + (f" {field.unit}" if field.unit not in ("", "1") else "")
            )
    return lines


def caption(task: TaskSpec, ep: EpisodeRecord, dt: float, cap: int | None = None) -> str:
    """The episode as text: the task's ``captions`` when declared, else the default."""
    if task.captions:
        lines = [
            f"{spec.doc}: {_fmt(_aggregate(spec, ep.states, dt), spec.unit)}"
            for spec in task.captions
        ]
    else:
        lines = default_caption(task, ep, dt, cap)
    return "\n".join(f"- {line}" for line in lines)


# ---------------------------------------------------------------- preferences
def pair_messages(task: TaskSpec, first: str, second: str) -> list[Message]:
    """Motif's pair question: which of two captioned episodes shows more progress."""
    return [
        {"role": "system", "content": render("motif", "system")},
        {
            "role": "user",
            "content": render(
                "motif", "pair", description=task.description, first=first, second=second
            ),
        },
    ]


def parse_choice(answer: str) -> float | None:
    """The probability that episode 2 is preferred: 0.0, 1.0, 0.5 for "none"; None: unreadable."""
    found = _CHOICE.findall(answer or "")
    if not found:
        return None
    return TIE if found[-1].lower() == "none" else float(int(found[-1]) - 1)


def combine(forward: float | None, backward: float | None) -> float | None:
    """``method.both_orders``: the label of (a, b) from the answers to (a, b) and to (b, a).

    The mean of the two in (a, b)'s frame: agreeing answers give their label, contradicting
    ones (a position bias) a tie; one unreadable answer leaves the other.
    """
    views = [v for v in (forward, None if backward is None else 1.0 - backward) if v is not None]
    return float(np.mean(views)) if views else None


class PairLabeller:
    """Labels pairs of captions with a proposer (chat, replay), every answer kept.

    Args:
        proposer: an :class:`~rewardgen.llm.base.Proposer` that is a language model.
        task: the task (its description goes into every prompt).
        seed: the request seed.
        both_orders: also ask each pair swapped (our option; Motif asks once).
    """

    def __init__(
        self, proposer: Any, task: TaskSpec, seed: int = 0, both_orders: bool = False
    ) -> None:
        self.proposer, self.task, self.seed = proposer, task, seed
        self.both_orders = both_orders
        self.requests = 0

    def _request(self, messages: list[Message]) -> str:
        ctx = ProposalContext(task=self.task, generation=self.requests, seed=self.seed)
        self.requests += 1
        answers = self.proposer.propose(messages, 1, ctx)
        return answers[0].text if answers else ""

    def ask(self, first: str, second: str) -> tuple[float | None, list[str]]:
        """One order: the choice, asked once more with Motif's retry prompt when unreadable."""
        messages = pair_messages(self.task, first, second)
        texts = [self._request(messages)]
        choice = parse_choice(texts[0])
        if choice is None:
            retry: list[Message] = [
                *messages,
                {"role": "assistant", "content": texts[0]},
                {"role": "user", "content": render("motif", "retry")},
            ]
            texts.append(self._request(retry))
            choice = parse_choice(texts[-1])
        return choice, texts

    def label(self, first: str, second: str) -> dict[str, Any]:
        """``{"label", "forward", "backward", "answers"}`` for captions ``first``, ``second``."""
        if first == second:  # Motif: identical descriptions are a tie, never asked
            return {
                "label": TIE,
                "forward": None,
                "backward": None,
                "answers": [],
                "identical": True,
            }
        forward, answers = self.ask(first, second)
        backward = None
        if self.both_orders:
            backward, more = self.ask(second, first)
            answers += more
        label = combine(forward, backward) if self.both_orders else forward
        return {"label": label, "forward": forward, "backward": backward, "answers": answers}


def fitness_label(first: float, second: float) -> dict[str, Any]:
    """``llm=offline``: the episode of higher trusted fitness (Motif's ``score`` annotator);
    equal fitness is a tie."""
    label = TIE if first == second else (0.0 if first > second else 1.0)
    return {
        "label": label,
        "forward": label,
        "backward": None,
        "answers": [],
        "labeller": OFFLINE_LABELLER,
    }


__all__ = [
    "ENV_REWARDS",
    "EpisodeRecord",
    "OFFLINE_LABELLER",
    "PairLabeller",
    "TIE",
    "caption",
    "check_motif_config",
    "check_motif_run",
    "combine",
    "default_caption",
    "env_coefficient",
    "fitness_label",
    "pair_messages",
    "parse_choice",
]
