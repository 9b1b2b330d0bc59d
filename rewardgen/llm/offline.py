"""The offline proposer: an honest baseline that evolves the task's seed reward terms.

No language model is involved. A reward program is a weighted sum of the task's ``seed_terms``
(name -> Python expression over ``state``, ``action``, ``prev_state``). Generation 0 samples random
subsets with log-uniform weights; later generations take the fittest earlier offline programs,
recombine two parents, mutate weights log-normally and add or drop a term. Each program carries
its weights in a ``# rewardgen-offline: {...}`` comment so it can be parsed back from history.
Proposals are deterministic given (seed, generation, history).

For ``method=progress`` (``ctx.entry == "progress"``) the same weights make a progress function
instead: the weighted mean of the seed terms that read only ``state``, each squashed into [0, 1]
by ``0.5 + 0.5 * tanh(term)`` (terms of ``action`` or ``prev_state`` cannot be computed there).
"""

from __future__ import annotations

import json
import logging
import math
import re

import numpy as np

from rewardgen.errors import ConfigError
from rewardgen.llm.base import Completion, Message, ProposalContext, Usage
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

OFFLINE_NAME = "offline (baseline, no language model)"
OFFLINE_MODEL = "offline"
MARKER = "# rewardgen-offline:"
_MARKER_LINE = re.compile(rf"^{re.escape(MARKER)}\s*(\{{.*\}})\s*$", re.M)
WEIGHT_RANGE = (0.01, 10.0)  # log-uniform initial weights
_WEIGHT_CLIP = (1e-4, 1e4)


_NOT_STATE_ONLY = re.compile(r"\b(action|prev_state)\b")


def _round(w: float) -> float:
    return float(f"{w:.4g}")


def parse_weights(source: str) -> dict[str, float] | None:
    """The weights an offline program was written with, or None for any other program."""
    match = _MARKER_LINE.search(source or "")
    if not match:
        return None
    try:
        raw = json.loads(match.group(1))["weights"]
        weights = {str(k): float(v) for k, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return (
        weights if weights and all(math.isfinite(w) and w > 0 for w in weights.values()) else None
    )


def _header(weights: dict[str, float]) -> list[str]:
    """Imports and the weights marker that :func:`parse_weights` reads back next generation."""
    return ["import math", "", "import numpy as np", "",
            f"{MARKER} {json.dumps({'weights': weights}, sort_keys=True)}", "", ""]


def render_program(weights: dict[str, float], terms: dict[str, str]) -> str:
    """The reward program: one component per term, total = their sum."""
    lines = [
        *_header(weights),
        "def compute_reward(state, action, prev_state):",
        '    """Weighted sum of the task\'s seed terms (offline baseline, no language model)."""',
        "    components = {}",
    ]
    for name, weight in weights.items():
        lines.append(f"    components[{name!r}] = {weight!r} * ({terms[name]})")
    # no float(): the same program runs on numpy and, traced, under rl=brax_ppo
    lines += ["    total = sum(components.values())", "    return total, components", ""]
    return "\n".join(lines)


def offline_terms(task: TaskSpec, entry: str = "compute_reward") -> dict[str, str]:
    """The seed terms the offline baseline evolves for programs defining ``entry``.

    Reward programs use every seed term; progress functions (``entry="progress"``) only those
    that read ``state`` alone.

    Raises:
        ConfigError: the task has no such term (one line: what to add, or a language model).
    """
    terms = dict(task.seed_terms or {})
    if not terms:
        raise ConfigError(
            f"task {task.name!r} has no seed_terms, so llm=offline has nothing to evolve: "
            f"add seed_terms to envs/{task.name}.yaml or use llm=openai"
        )
    if entry == "progress":
        terms = {k: v for k, v in terms.items() if not _NOT_STATE_ONLY.search(v)}
        if not terms:
            raise ConfigError(
                f"method=progress with llm=offline needs a seed term of `state` alone in "
                f"envs/{task.name}.yaml (every term there reads action or prev_state); add one, "
                "or use llm=openai"
            )
    return terms


def render_progress(weights: dict[str, float], terms: dict[str, str]) -> str:
    """The progress function: the weighted mean of the terms, each squashed into [0, 1]."""
    parts = " +\n        ".join(
        f"{weight!r} * _squash(float({terms[name]}))" for name, weight in weights.items()
    )
    return "\n".join([
        *_header(weights),
        "def _squash(value):",
        "    return 0.5 + 0.5 * math.tanh(value) if math.isfinite(value) else 0.5",
        "",
        "",
        "def progress(state):",
        '    """Weighted mean of the task\'s squashed seed terms (offline baseline, no language '
        'model)."""',
        f"    total = (\n        {parts}\n    )",
        f"    return min(1.0, max(0.0, total / {sum(weights.values())!r}))",
        "",
    ])


def render_answer(weights: dict[str, float], terms: dict[str, str], note: str,
                  entry: str = "compute_reward") -> str:
    """A markdown answer shaped like a language model's, so the loop treats both alike."""
    if entry == "progress":
        return (
            f"Offline proposal (baseline, no language model): {note}\n\n"
            "Progress is the weighted mean of the task's seed terms of the state, each squashed "
            "into [0, 1]:\n" + "\n".join(f"- `{name}` (weight {w:g}): `{terms[name]}`"
                                       for name, w in weights.items())
            + f"\n\n```python\n{render_progress(weights, terms)}```\n"
        )
    listing = "\n".join(
        f"- `{name}` (weight {w:g}): `{terms[name]}`" for name, w in weights.items()
    )
    return (
        f"Offline proposal (baseline, no language model): {note}\n\n"
        f"The reward is a weighted sum of the task's seed terms:\n{listing}\n\n"
        f"```python\n{render_program(weights, terms)}```\n"
    )


class OfflineProposer:
    """Evolves weighted sums of seed terms; tokens and cost are always zero.

    Args:
        elite: how many of the fittest earlier offline programs may be parents.
        sigma: standard deviation of the log-normal weight mutation.
        p_crossover / p_add / p_drop: probabilities of recombining two parents, adding a term
            and dropping a term (at least two terms are kept).
    """

    is_llm = False
    name = OFFLINE_NAME

    def __init__(
        self,
        elite: int = 4,
        sigma: float = 0.5,
        p_crossover: float = 0.3,
        p_add: float = 0.25,
        p_drop: float = 0.25,
    ) -> None:
        self.elite = elite
        self.sigma = sigma
        self.p_crossover = p_crossover
        self.p_add = p_add
        self.p_drop = p_drop
        self.usage = Usage()

    def propose(self, messages: list[Message], n: int, ctx: ProposalContext) -> list[Completion]:
        """``n`` programs for ``ctx.task``; ``messages`` are ignored (no model reads them)."""
        terms = offline_terms(ctx.task, ctx.entry)
        if ctx.stage:  # a first stage (L2R's motion description): the seed terms, as a list
            return [self._describe(ctx, terms) for _ in range(n)]
        rng = np.random.default_rng([ctx.seed & 0xFFFFFFFF, max(ctx.generation, 0), 0x0FF1])
        parents = self.parents(ctx, terms)
        completions = []
        for _ in range(n):
            if parents:
                weights, note = self._offspring(rng, parents, terms)
            else:
                weights, note = self._random(rng, terms), "random subset of seed terms"
            text = render_answer(weights, terms, note, ctx.entry)
            completions.append(Completion(text=text, model=OFFLINE_MODEL, finish_reason="stop"))
        self.usage.requests += 1
        for c in completions:
            self.usage.add(c)
        log.info(
            "%s: %d programs for generation %d (%d parents)",
            self.name,
            n,
            ctx.generation,
            len(parents),
        )
        return completions

    def parents(self, ctx: ProposalContext, terms: dict[str, str] | None = None
                ) -> list[tuple[float, dict[str, float]]]:
        """The fittest ok offline programs of the history (of ``terms``, by default the task's
        seed terms), best first, without duplicates."""
        allowed = set(ctx.task.seed_terms if terms is None else terms)
        found: dict[str, tuple[float, dict[str, float]]] = {}
        for source, result in ctx.history:
            if not result.ok or result.fitness is None or not math.isfinite(result.fitness):
                continue
            weights = parse_weights(source)
            if weights is None or not set(weights) <= allowed:
                continue
            key = json.dumps(weights, sort_keys=True)
            if key not in found or found[key][0] < result.fitness:
                found[key] = (float(result.fitness), weights)
        ranked = sorted(found.values(), key=lambda p: (-p[0], json.dumps(p[1], sort_keys=True)))
        return ranked[: self.elite]

    # -- variation ------------------------------------------------------------------------------

    def _describe(self, ctx: ProposalContext, terms: dict[str, str]) -> Completion:
        """A first-stage answer without a language model: the task's seed terms as the lines
        of L2R's template (the offline baseline writes no prose it could not stand behind)."""
        lines = [f"* Goal in one sentence: {' '.join(ctx.task.description.split())}",
                 *(f"* {name} ({expr}) should be increasing; importance medium"
                   for name, expr in terms.items()),
                 "(written by the offline baseline from the task's seed terms; no language model)"]
        self.usage.requests += 1
        text = "[start of description]\n" + "\n".join(lines) + "\n[end of description]\n"
        return Completion(text=text, model=OFFLINE_MODEL, finish_reason="stop")

    @staticmethod
    def _log_uniform(rng: np.random.Generator) -> float:
        lo, hi = WEIGHT_RANGE
        return _round(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    def _random(self, rng: np.random.Generator, terms: dict[str, str]) -> dict[str, float]:
        names = list(terms)
        k = int(rng.integers(min(2, len(names)), len(names) + 1))
        chosen = set(rng.choice(len(names), size=k, replace=False).tolist())
        return {name: self._log_uniform(rng) for i, name in enumerate(names) if i in chosen}

    def _offspring(
        self,
        rng: np.random.Generator,
        parents: list[tuple[float, dict[str, float]]],
        terms: dict[str, str],
    ) -> tuple[dict[str, float], str]:
        rank_weights = np.array([1.0 / (r + 1) for r in range(len(parents))])
        first = int(rng.choice(len(parents), p=rank_weights / rank_weights.sum()))
        fitness, weights = parents[first]
        child = dict(weights)
        notes = [f"mutated from a parent with fitness {fitness:.4g}"]
        if len(parents) >= 2 and rng.random() < self.p_crossover:
            second = int(rng.choice([i for i in range(len(parents)) if i != first]))
            other = parents[second][1]
            child = {
                name: (
                    child if name in child and (name not in other or rng.random() < 0.5) else other
                )[name]
                for name in terms
                if (name in child and name in other)
                or ((name in child or name in other) and rng.random() < 0.5)
            }
            notes.append(f"recombined with one of fitness {parents[second][0]:.4g}")
        lo, hi = _WEIGHT_CLIP
        child = {
            k: float(np.clip(w * math.exp(rng.normal(0.0, self.sigma)), lo, hi))
            for k, w in child.items()
        }
        absent = [name for name in terms if name not in child]
        if absent and rng.random() < self.p_add:
            added = absent[int(rng.integers(len(absent)))]
            child[added] = self._log_uniform(rng)
            notes.append(f"added {added!r}")
        if len(child) > 2 and rng.random() < self.p_drop:
            dropped = sorted(child)[int(rng.integers(len(child)))]
            del child[dropped]
            notes.append(f"dropped {dropped!r}")
        while len(child) < min(2, len(terms)):  # a crossover may leave a single term
            absent = [name for name in terms if name not in child]
            child[absent[int(rng.integers(len(absent)))]] = self._log_uniform(rng)
        ordered = {name: _round(child[name]) for name in terms if name in child}
        return ordered, "; ".join(notes)
