"""What Motif may say about an episode: its behaviour, never the task's fitness.

Motif's annotator reads the game's messages and never the score: ``--use-blstats`` is off by
default (facebookresearch/motif ``scripts/annotate_pairs_dataset.py:26-29``), so the LLM's labels
carry its prior, not a sort by the score. Here the score is the task's trusted fitness, and a
caption must show neither it nor a quantity it is computed from:

* :func:`fitness_fields`: the State fields the fitness expression reads, and their *kin* — the
  same joint coordinate in ``qpos`` and ``qvel`` (forward distance is ``x_position``'s change,
  and mean ``x_velocity`` times the duration is that same distance); a ``duration`` fitness
  makes the episode's duration (and ``time``) the score itself.
* :func:`check_captions`: a task's declared ``captions:`` may read none of them (checked when
  the task loads, one line).
* :func:`behaviour_fields`: what the default caption summarises; :func:`caption_fields`: what
  a caption is built from, which is also what the reward model reads.
* :func:`step_values`: the per-step counterpart of NetHack's message, the caption's quantities
  of one State, which :mod:`rewardgen.rewards.motif` puts on a grid for Motif's count term
  ``N(message)`` (``learner.py:786-787``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from rewardgen.errors import TaskError
from rewardgen.tasks.fitness import FitnessSpec
from rewardgen.tasks.sources import parse_source
from rewardgen.tasks.state import StateField


class CaptionedTask(Protocol):
    """What this module reads of a :class:`~rewardgen.tasks.spec.TaskSpec` (which calls it)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> tuple[StateField, ...]: ...
    @property
    def fitness(self) -> FitnessSpec: ...
    @property
    def captions(self) -> tuple[FitnessSpec, ...]: ...
    @property
    def sparse_reward(self) -> str | None: ...


_FIELD = re.compile(r"\bstate\.([A-Za-z_][A-Za-z0-9_]*)")
_INFO = re.compile(r"\binfo\b")
_CLOCK = ("dt", "time")  # sources that are the clock: the duration of an episode, not behaviour
_JOINT_ARRAYS = ("qpos", "qvel")


def fields_read(expr: str) -> set[str]:
    """The State fields an expression reads (``state.<name>``).

    Example:
        >>> sorted(fields_read("abs(state.torso_angle) + state.x_velocity * state.dt"))
        ['dt', 'torso_angle', 'x_velocity']
    """
    return set(_FIELD.findall(expr))


def _span(key: str) -> tuple[float, float] | None:
    """An index key as a half-open range (None: a name, which indexes by joint)."""
    text = key.strip()
    try:
        if ":" in text:
            lo, _, hi = text.partition(":")
            return float(int(lo) if lo.strip() else 0), float(int(hi) if hi.strip() else math.inf)
        k = int(text)
    except ValueError:
        return None
    return float(k), float(k + 1)


def _coordinate(source: str) -> tuple[str, tuple[str, ...]] | None:
    """A plain array source as the coordinate it reads: ``qpos`` and ``qvel`` count as one
    array (a joint's position and its velocity); None for functions, the clock and ``env.``."""
    try:
        parsed = parse_source(source)
    except TaskError:
        return None
    if parsed.functions or not parsed.keys or parsed.array in ("env", *_CLOCK):
        return None
    return ("joint" if parsed.array in _JOINT_ARRAYS else parsed.array), parsed.keys


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two key paths of qpos/qvel reach the same coordinate (a missing key: all)."""
    for x, y in zip(a, b, strict=False):
        sx, sy = _span(x), _span(y)
        if sx is None or sy is None:
            if x.strip() != y.strip():
                return False
            continue
        if sx[1] <= sy[0] or sy[1] <= sx[0]:
            return False
    return True


def fitness_fields(task: CaptionedTask) -> frozenset[str]:
    """The State fields a caption must not read: those of the fitness, and their kin.

    Kin: another field reading the same coordinate of the same array, ``qpos`` and ``qvel``
    taken as one (hopper's
    ``x_velocity``, ``qvel[rootx]``, is the rate of its fitness ``x_position``, ``qpos[rootx]``;
    numeric slices are compared as written, which errs on the side of refusing), and
    ``<name>_velocity`` beside a ``<name>_position`` read. A fitness that reads the env's
    ``info`` (a success flag) is taken to read what the task's ``sparse_reward`` reads. A
    ``duration`` fitness adds the clock fields (``dt``, ``time``).
    """
    by_name = {f.name: f for f in task.state}
    duration = task.fitness.aggregate == "duration"
    expr = "" if duration else task.fitness.expr
    if _INFO.search(expr) and task.sparse_reward:  # the env's success flag: the task's sparse
        expr += " " + task.sparse_reward  # reward states what it is computed from
    read = fields_read(expr) & set(by_name)
    coords = [c for c in (_coordinate(by_name[n].source) for n in read) if c is not None]
    kin = {
        f.name
        for f in task.state
        if (c := _coordinate(f.source)) is not None
        and any(c[0] == d[0] and _overlap(c[1], d[1]) for d in coords)
    }
    kin |= {n.replace("_position", "_velocity") for n in read if n.endswith("_position")}
    kin &= set(by_name)
    clock = {f.name for f in task.state if f.source.strip() in _CLOCK} if duration else set()
    return frozenset(read | kin | clock)


def check_captions(task: CaptionedTask) -> None:
    """Refuse a declared caption built from the fitness's own quantity (one line).

    Raises:
        TaskError: a caption reads a field of :func:`fitness_fields`, reads ``info``, or is the
            duration of an episode whose fitness is its duration.
    """
    banned = fitness_fields(task)
    score = f"the fitness ({task.fitness.formula})"
    why = "Motif's captions describe behaviour, never the score; caption another quantity"
    for spec in task.captions:
        label = f"task {task.name!r}: caption {spec.doc!r}"
        if spec.aggregate == "duration":
            if task.fitness.aggregate == "duration":
                raise TaskError(f"{label} is the episode's duration, which is {score}; {why}")
            continue
        if _INFO.search(spec.expr):
            raise TaskError(f"{label} reads info, which captions never see; read state only")
        shown = sorted(fields_read(spec.expr) & banned)
        if shown:
            raise TaskError(f"{label} reads state.{shown[0]}, a quantity of {score}; {why}")


def behaviour_fields(task: CaptionedTask) -> list[StateField]:
    """The State fields the default caption may summarise: all but the fitness's and the clock."""
    banned = fitness_fields(task)
    return [f for f in task.state if f.name not in banned and f.source.strip() not in _CLOCK]


def caption_fields(task: CaptionedTask) -> list[str]:
    """The State fields a caption is built from, in State order: the reward model's input.

    Motif's reward model reads the message the LLM read, not the game's statistics
    (``--use_blstats`` False, ``sample_factory/algorithms/utils/arguments.py:58``); here it reads
    the fields of the declared captions, or those of the default caption.
    """
    if not task.captions:
        return [f.name for f in behaviour_fields(task)]
    read: set[str] = set()
    for spec in task.captions:
        if spec.aggregate != "duration":
            read |= fields_read(spec.expr)
    return [f.name for f in task.state if f.name in read]


def is_contact(field: StateField) -> bool:
    """A contact field: the caption says whether it touches, the message counts that bit."""
    return "contact" in field.name


def step_values(task: CaptionedTask) -> Callable[[Any], tuple[float, ...]]:
    """The caption's quantities of one State: Motif's message before it is put on a grid.

    A task's declared captions give one value per non-duration caption (its expression on this
    State); the default caption gives one per scalar behaviour field and an in-contact bit (0 or
    1) per contact field. Vector fields that are not contacts are left out: like NetHack's
    message, the message must repeat for the count ``N(message)`` to mean anything.
    """
    if task.captions:
        fns = [spec.compile() for spec in task.captions if spec.aggregate != "duration"]

        def declared(state: Any) -> tuple[float, ...]:
            return tuple(float(fn(state)) for fn in fns)

        return declared
    fields = behaviour_fields(task)
    names = [f.name for f in fields]
    contacts = {f.name for f in fields if is_contact(f)}

    def default(state: Any) -> tuple[float, ...]:
        values = []
        for name in names:
            value = getattr(state, name)
            if name in contacts:
                values.append(float(float(np.linalg.norm(value)) > 1e-6))
            elif np.ndim(value) == 0:
                values.append(float(value))
        return tuple(values)

    return default


__all__ = [
    "behaviour_fields",
    "caption_fields",
    "check_captions",
    "fields_read",
    "fitness_fields",
    "is_contact",
    "step_values",
]
