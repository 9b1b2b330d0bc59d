"""Progress functions (Sarukkai et al. 2024): count-based exploration over discretised progress.

The LLM writes ``progress(state)``: a float in [0, 1], or a dict of named progress terms each in
[0, 1]. :class:`ProgressReward` discretises progress into ``bins`` cells per term (several terms
give a tuple cell) and rewards ``beta / sqrt(N(cell))`` plus the task's trusted sparse reward,
so the policy is pushed towards cells of higher progress it has rarely visited while the sparse
reward says what finally counts. Two ablations from the paper: ``bonus="hash"`` counts cells of
the discretised raw State instead of progress (generic, no LLM knowledge), and
``bonus="dense"`` uses the progress value itself as a dense reward.

It is a reward function with the program's signature, so the candidate's env stack (task env →
Monitor → RewardProgramWrapper) stays the same. The paper counts visits over all of a policy's
experience, so in training the counts are shared by every env of the candidate's vector env: each
env reports its cell (``shared_counts=True``: the ``count_cell`` component, a 48-bit key) and
:class:`~rewardgen.rewards.progress_counts.SharedCountBonus`, a VecEnvWrapper in the training process, keeps one table and adds the
bonus, also across SubprocVecEnv processes. Used alone (``shared_counts=False``) the function
keeps its own table.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.sandbox.program import check_unit_interval
from rewardgen.tasks.spec import TaskSpec

BONUSES = ("count", "hash", "dense")
CELL_KEY = "count_cell"  # the component a shared-count env reports its cell under (not logged)
DEFAULT_OPTIONS: dict[str, Any] = {"bins": 10, "bonus": "count", "beta": 1.0, "hash_resolution": 0.1}


def progress_terms(out: Any) -> dict[str, float]:
    """A progress function's output as named terms, each a finite float in [0, 1].

    Raises:
        RewardCodeError: not a number or a dict of numbers, or a value outside [0, 1].
    """
    raw: Mapping[Any, Any] = out if isinstance(out, Mapping) else {"progress": out}
    if not raw:
        raise RewardCodeError("progress returned an empty dict; return a float or named terms")
    terms: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise RewardCodeError(f"progress term names must be strings, got {key!r}")
        terms[key] = check_unit_interval(value, f"progress term {key!r}")
    return terms


def smoke_view(fn: Callable[[Any], Any]) -> Callable[[Any], float]:
    """``fn`` as a single-float progress function for the smoke test.

    The smoke test checks one float in [0, 1]; named terms are checked here (a bad term raises
    RewardCodeError, which the smoke test reports with the state index) and reduced to their mean.
    """

    def view(state: Any) -> float:
        out = fn(state)
        if not isinstance(out, Mapping):
            return out  # type: ignore[no-any-return]  # the smoke test checks it
        terms = progress_terms(out)
        return sum(terms.values()) / len(terms)

    return view


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``options`` over the defaults and check them.

    Raises:
        ConfigError: an unknown key, an unknown bonus, bins < 1, beta < 0 or resolution <= 0.
    """
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown progress options {sorted(unknown)}; allowed: {sorted(DEFAULT_OPTIONS)}"
        )
    merged = {**DEFAULT_OPTIONS, **options}
    if merged["bonus"] not in BONUSES:
        raise ConfigError(f"method.bonus={merged['bonus']!r} is not one of {BONUSES}")
    if int(merged["bins"]) < 1:
        raise ConfigError(f"method.bins must be at least 1, got {merged['bins']}")
    if float(merged["beta"]) < 0:
        raise ConfigError(f"method.beta must be >= 0, got {merged['beta']}")
    if float(merged["hash_resolution"]) <= 0:
        raise ConfigError(f"method.hash_resolution must be > 0, got {merged['hash_resolution']}")
    return merged


def grid_key(state: Any, resolution: float) -> bytes:
    """A hash of the values of ``state`` (a State, or any sequence of numbers and arrays)
    discretised on a grid of ``resolution``: the paper's raw-State ablation, and Motif's
    message (:mod:`rewardgen.rewards.motif`)."""
    parts = [np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel() for value in state]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    cells = np.floor(np.nan_to_num(flat) / resolution).astype(np.int64)
    return hashlib.blake2b(cells.tobytes(), digest_size=8).digest()


def _shared_key(key: Any) -> float:
    """A cell as a float that survives ``info`` and pickling exactly: a 48-bit hash of it."""
    raw = key if isinstance(key, bytes) else np.asarray(key, dtype=np.int64).tobytes()
    return float(int.from_bytes(hashlib.blake2b(raw, digest_size=6).digest(), "big"))


class ProgressReward:
    """Reward from a progress function: exploration bonus (or dense progress) + sparse reward.

    Components: ``sparse`` (the task's trusted sparse reward), ``bonus`` (or ``progress`` with
    ``bonus="dense"``), and each progress term as ``progress/<name>`` (logged, weight 0), so the
    reflection shows how far the policy gets.

    Args:
        progress_fn: the loaded ``progress(state)`` function.
        sparse_fn: ``(state, action, prev_state) -> (value, components)``, the task's sparse reward.
        bins: cells per progress term.
        bonus: ``count`` | ``hash`` | ``dense``.
        beta: scale of the count bonus (or of the dense progress).
        hash_resolution: grid size of the raw-State hash (``bonus="hash"``).
        shared_counts: report the cell (component ``count_cell``) and leave the count and the
            bonus to ``SharedCountBonus`` over the vector env; False: count here.
    """

    def __init__(
        self,
        progress_fn: Callable[[Any], Any],
        sparse_fn: Callable[[Any, Any, Any], tuple[float, dict[str, float]]],
        bins: int = 10,
        bonus: str = "count",
        beta: float = 1.0,
        hash_resolution: float = 0.1,
        shared_counts: bool = False,
    ) -> None:
        check_options({"bins": bins, "bonus": bonus, "beta": beta, "hash_resolution": hash_resolution})
        self.shared_counts = bool(shared_counts)
        self.progress_fn = progress_fn
        self.sparse_fn = sparse_fn
        self.bins = int(bins)
        self.bonus = bonus
        self.beta = float(beta)
        self.hash_resolution = float(hash_resolution)
        self.counts: dict[Any, int] = {}

    def cell(self, terms: Mapping[str, float]) -> tuple[int, ...]:
        """The discretised progress: one bin index per term, in sorted term order."""
        top = self.bins - 1
        return tuple(min(int(terms[k] * self.bins), top) for k in sorted(terms))

    def __call__(self, state: Any, action: Any, prev_state: Any) -> tuple[float, dict[str, float]]:
        try:
            out = self.progress_fn(state)
        except RewardCodeError:
            raise
        except Exception as e:  # noqa: BLE001 - generated code may raise anything
            raise RewardCodeError(f"progress raised {type(e).__name__}: {e}") from e
        terms = progress_terms(out)
        sparse, _ = self.sparse_fn(state, action, prev_state)
        components = {f"progress/{k}": v for k, v in terms.items()} if len(terms) > 1 else {}
        if self.bonus == "dense":
            value = self.beta * sum(terms.values()) / len(terms)
            components.update({"sparse": sparse, "progress": value})
            return sparse + value, components
        key: Any = (
            grid_key(state, self.hash_resolution) if self.bonus == "hash" else self.cell(terms)
        )
        if len(terms) == 1:
            components["progress"] = next(iter(terms.values()))
        components["sparse"] = sparse
        if self.shared_counts:  # SharedCountBonus counts and pays over the whole vector env
            components[CELL_KEY] = _shared_key(key)
            return sparse, components
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        bonus = self.beta / math.sqrt(n)
        components["bonus"] = bonus
        return sparse + bonus, components


def progress_reward_for(
    task: TaskSpec,
    progress_fn: Callable[[Any], Any],
    sparse_fn: Callable[[Any, Any, Any], tuple[float, dict[str, float]]],
    options: Mapping[str, Any],
    shared_counts: bool = False,
) -> ProgressReward:
    """The progress reward for ``task``; it needs the task's sparse reward. With
    ``shared_counts`` the vector env's
    :func:`~rewardgen.rewards.progress_counts.shared_count_bonus` pays the count bonus.

    Raises:
        ConfigError: the task has no ``sparse_reward``, or the options are malformed.
    """
    if not task.sparse_reward:
        raise ConfigError(
            f"method=progress needs the task's sparse reward, and task {task.name!r} has no "
            "sparse_reward; add one to its YAML (e.g. sparse_reward: \"float(state.x > 5)\")"
        )
    merged = check_options(options)
    return ProgressReward(
        progress_fn,
        sparse_fn,
        bins=int(merged["bins"]),
        bonus=str(merged["bonus"]),
        beta=float(merged["beta"]),
        hash_resolution=float(merged["hash_resolution"]),
        shared_counts=shared_counts,
    )


__all__ = [
    "BONUSES",
    "CELL_KEY",
    "DEFAULT_OPTIONS",
    "ProgressReward",
    "check_options",
    "grid_key",
    "progress_reward_for",
    "progress_terms",
    "smoke_view",
]
