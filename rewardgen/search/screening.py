"""CARD's Trajectory Preference Evaluation: screen a candidate on stored trajectories before RL.

Every trained candidate leaves ``trajectories.npz`` in its directory: the State sequence and
actions of a few evaluation episodes, with each episode's trusted fitness (written by the
trusted evaluator from its own rollouts, :mod:`rewardgen.runs.trajectories`). Before a new candidate trains, its
``compute_reward`` is run over those trajectories in an isolated worker
(:mod:`rewardgen.worker.score`), which reports returns and per-step rewards; the parent judges them
against the trusted fitness (:func:`judge_returns`). CARD's test (``loop.screening_test=card``,
the default, as CARD's ``trajectories_return_check``): episodes are successful or failed by the
task's success threshold, and the share of successful episodes whose *mean reward per step* beats
that of the **best** failed episode must reach ``loop.screening_threshold`` (0.8).
``card_pairs`` is our earlier reading: the share of (success, failure) pairs the success wins
(more lenient: one high-scoring failure no longer sinks the reward). ``pairwise``: all pairs of
different fitness ordered by total return, ties half. The pool, as CARD's: up to
``loop.screening_episodes`` (100) stored episodes of every candidate that passed and trained, at
most ``loop.screening_pool`` (200) in all (spread over the fitness range beyond that: the
scorer has two minutes for the whole pool, and 100 hopper episodes of 1000 steps took 17 s on a
loaded 2-core machine, 400 took 125 s). A
screened-out candidate is not trained; it carries CARD's preference feedback
(:func:`preference_feedback`: the worst success against the best failure, step by step) into
the next prompt. CARD's process feedback lives in :mod:`rewardgen.search.scoring`, which also
runs the scorer for this module.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.config import SandboxConfig, as_sandbox_config
from rewardgen.errors import ConfigError
from rewardgen.executors import Executor
from rewardgen.runs.records import SCREENING_DIR, CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.runs.trajectories import (
    TRAJECTORY_FILE,
    Trajectory,
    load_episode,
    read_trajectories,
)
from rewardgen.search.scoring import run_scorer, spread_steps
from rewardgen.search.tpe import (
    SCREENING_TESTS,
    ScreeningOutcome,
    beats,
    card_accuracy,
    card_pair_accuracy,
    informative,
    judge_returns,
    preference_accuracy,
    success_labels,
)

log = logging.getLogger(__name__)

EPISODES_PER_CANDIDATE = 100  # CARD's trajectory_num: episodes each passed candidate adds
MAX_POOL = 200  # episodes per screening at most (CARD: up to 10 x 100), spread by fitness
SCREENINGS = ("none", "trajectory_preference", "mpc")  # mpc: rewardgen/search/mpc_screening.py
PREFERENCE_FEEDBACK_CHARS = 1800  # bound on the text a screened-out reward teaches the LLM


# ---------------------------------------------------------------- preference feedback
def _state_text(state: Any, limit: int = 150) -> str:
    parts = []
    for name, value in zip(state._fields, state, strict=True):
        flat = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
        if np.ndim(value) == 0:
            parts.append(f"{name}={float(flat[0]):.3g}")
        else:
            more = ", ..." if flat.size > 3 else ""
            parts.append(f"{name}=[{', '.join(f'{v:.3g}' for v in flat[:3])}{more}]")
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def preference_feedback(trajectories: Sequence[Trajectory], returns: Sequence[float],
                        rewards: Sequence[Sequence[float]] | None, success: Sequence[bool],
                        outcome: ScreeningOutcome, threshold: float, points: int = 4,
                        max_chars: int = PREFERENCE_FEEDBACK_CHARS, test: str = "card") -> str:
    """CARD's preference feedback for a screened-out reward: its lowest-rated successful episode
    against its highest-rated failed one (mean reward per step), step by step with the reward at
    that step and the State after it, within ``max_chars``. Empty without both kinds.

    ``rewards`` (per step, reported by the scorer) are checked against the trusted lengths;
    when they do not fit, the steps show States only.
    """
    means = [r / max(t.length, 1) for r, t in zip(returns, trajectories, strict=True)]
    wins = [k for k, s in enumerate(success) if s]
    fails = [k for k, s in enumerate(success) if not s]
    if not wins or not fails:
        return ""
    worst = min(wins, key=lambda k: means[k])
    best = max(fails, key=lambda k: means[k])
    accuracy = outcome.accuracy or 0.0
    if test == "card":  # CARD's own wording (self_reflection/utils.py:308-315)
        below = sum(not beats(means[k], means[best]) for k in wins)
        judged = (f"of {len(wins)} successful episodes, {below} earn a smaller mean reward per "
                  f"step than the best failed one, so this reward is {accuracy * 100:.2f}% "
                  f"accurate in distinguishing successful episodes (needed: "
                  f"{threshold * 100:.0f}%).")
    else:
        judged = (f"this reward does so for {accuracy:.2f} of {outcome.pairs} (success, "
                  f"failure) pairs, below {threshold:.2f}.")
    head = [
        "Trajectory preference: a successful episode should earn a higher mean reward per step "
        f"than every failed one; {judged}",
    ]
    for kind, k in (("Worst successful", worst), ("Best failed", best)):
        t = trajectories[k]
        head.append(f"{kind} episode ({t.name}: task score {t.fitness:.2f}, {t.length} steps): "
                    f"mean reward per step {means[k]:.3f}, return {returns[k]:.2f}.")
    head.append("Step by step (reward at the step; the State after it):")
    tail = "Change the reward so that successful behaviour earns more per step than failed behaviour."
    room = max_chars - sum(len(line) + 1 for line in (*head, tail))
    body: list[str] = []
    for kind, k in (("success", worst), ("failure", best)):
        t = trajectories[k]
        try:
            states, _ = load_episode(t.path, t.episode)
        except (OSError, ValueError, KeyError) as e:
            log.info("preference feedback: episode unreadable (%s)", e)
            continue
        steps = rewards[k] if rewards is not None and len(rewards[k]) == t.length else None
        for step in spread_steps(min(t.length, len(states) - 1), points):
            paid = f"reward {float(steps[step]):.3f}; " if steps is not None else ""
            line = f"  {kind} step {step}: {paid}{_state_text(states[step + 1])}"
            if len(line) + 1 > room // 2:
                line = line[: max(room // 2 - 4, 0)] + "..."
            body.append(line)
    while body and sum(len(line) + 1 for line in body) > room:
        body.pop(len(body) // 2)  # the middle steps go first; the ends say the most
    return "\n".join([*head, *body, tail])


# ---------------------------------------------------------------- the parent side
def pick_trajectories(found: Sequence[Trajectory], limit: int = MAX_POOL) -> list[Trajectory]:
    """At most ``limit`` trajectories spread evenly over the fitness range (the lowest and the
    highest fitness kept)."""
    ordered = sorted(found, key=lambda t: t.fitness)
    if len(ordered) <= limit:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, limit).round().astype(int)
    return [ordered[i] for i in sorted(set(picks.tolist()))]


def _task_success_threshold(task: str) -> float | None:
    from rewardgen.tasks.spec import load_task

    return load_task(task).success_threshold


def screen_candidate(source: str, out_dir: Path, trajectories: Sequence[Trajectory],
                     sandbox: SandboxConfig, threshold: float, task: str,
                     entry: str = "compute_reward", *, test: str = "card",
                     success_threshold: float | None = None,
                     executor: Executor | None = None) -> ScreeningOutcome:
    """Run the scorer in an isolated worker and judge its returns with ``test``.

    No informative pair (card: no success or no failure; pairwise: one fitness value) lets the
    candidate through: there is nothing to judge it by yet. A reward that breaks on the stored
    States is screened out with that reason. A card rejection carries CARD's preference feedback.
    ``success_threshold`` None: the task's own.

    Raises:
        ConfigError: an unknown ``test``.
    """
    if test not in SCREENING_TESTS:
        raise ConfigError(f"loop.screening_test={test!r} is not one of {SCREENING_TESTS}")
    scored = run_scorer(source, out_dir, trajectories, sandbox, task, entry, executor=executor)
    if isinstance(scored, str):
        return ScreeningOutcome(False, None, 0, f"trajectory preference screening: {scored}")
    # The worker ran the reward program: only what it reported is taken (validated); the
    # decision is made here against the trusted fitness of the stored episodes.
    if success_threshold is None:
        success_threshold = _task_success_threshold(task)
    outcome = judge_returns(scored.returns, trajectories, test, threshold, success_threshold)
    if outcome.passed or test == "pairwise":
        return outcome
    labels = success_labels([t.fitness for t in trajectories], success_threshold)
    text = preference_feedback(trajectories, scored.returns, scored.rewards, labels, outcome,
                               threshold, test=test)
    return dataclasses.replace(outcome, feedback=text)


class Screener:
    """The loop's screening step: judge each new candidate on the run's stored trajectories.

    Args:
        store: the run directory (trajectories are read from candidate folders, screening
            results written to ``<candidate>/screening/``).
        task: the task name (for the worker job and its success threshold).
        sandbox: the worker's limits (the timeout is capped at two minutes).
        threshold: least accuracy to be trained.
        test: ``card`` (successes against the best failure, mean reward per step),
            ``card_pairs`` or ``pairwise``.
        success_threshold: fitness of a successful episode (None: the task's own).
        episodes: stored episodes each trained candidate adds to the pool (CARD: 100).
        pool: episodes per screening at most (spread over the fitness range beyond it).
    """

    def __init__(self, store: RunStore, task: str, sandbox: SandboxConfig, threshold: float,
                 test: str = "card", success_threshold: float | None = None,
                 executor: Executor | None = None, *, episodes: int = EPISODES_PER_CANDIDATE,
                 pool: int = MAX_POOL) -> None:
        if test not in SCREENING_TESTS:
            raise ConfigError(f"loop.screening_test={test!r} is not one of {SCREENING_TESTS}")
        self.store = store
        self.task = task
        self.sandbox = sandbox
        self.threshold = float(threshold)
        self.test = test
        self.success_threshold = success_threshold
        self.executor = executor
        self.episodes = int(episodes)
        self.pool = int(pool)
        if self.episodes < 1 or self.pool < 2:
            raise ConfigError(f"loop.screening_episodes={episodes} and loop.screening_pool={pool} "
                              "must be at least 1 and 2 (defaults: 100 and 200)")
        self.saved = 0

    per_generation = False  # screens each candidate as it comes (MPCScreener: whole generations)

    @classmethod
    def from_config(cls, cfg: Any, store: RunStore, entry: str,
                    executor: Executor | None = None) -> Any:
        """A screener for ``loop.screening=trajectory_preference`` (or the MPC screen's for
        ``mpc``, :class:`~rewardgen.search.mpc_screening.MPCScreener`), None for ``none``.

        Raises:
            ConfigError: an unknown screening or test, or a method whose programs are not rewards.
        """
        kind = str(cfg.loop.get("screening", "none") or "none")
        if kind not in SCREENINGS:
            raise ConfigError(f"loop.screening={kind!r} is not one of {SCREENINGS}")
        if kind == "none":
            return None
        if entry != "compute_reward":
            raise ConfigError(f"loop.screening={kind} scores compute_reward programs; method "
                              f"{cfg.method.name!r} writes {entry}(); use loop.screening=none")
        if kind == "mpc":
            from rewardgen.executors import make_executor
            from rewardgen.search.mpc_screening import MPCScreener

            runner = executor or make_executor(cfg.executor, as_sandbox_config(cfg.sandbox),
                                               cfg.rl, str(cfg.device))
            return MPCScreener(store, cfg, runner)
        loop = cfg.loop
        return cls(store, str(cfg.task), as_sandbox_config(cfg.sandbox),
                   float(loop.screening_threshold), str(loop.get("screening_test", "card")),
                   executor=executor,
                   episodes=int(loop.get("screening_episodes", EPISODES_PER_CANDIDATE)),
                   pool=int(loop.get("screening_pool", MAX_POOL)))

    def trajectories(self, history: Sequence[Sequence[CandidateRecord]]) -> list[Trajectory]:
        """CARD's pool: up to ``episodes`` stored episodes of every candidate that trained (a
        screened-out one never did; CARD adds a candidate's episodes only when it passed), at
        most ``pool`` in all, spread over the fitness range beyond that."""
        found: list[Trajectory] = []
        for gen in history:
            for r in gen:
                if r.result.ok:
                    path = self.store.cand_dir(r.generation, r.index) / TRAJECTORY_FILE
                    found += pick_trajectories(read_trajectories(path, r.label), self.episodes)
        return pick_trajectories(found, self.pool)

    def screen(self, generation: int, index: int, source: str,
               trajectories: Sequence[Trajectory]) -> CandidateResult | None:
        """A ``screened_out`` result when the candidate misranks the trajectories, else None."""
        if self.success_threshold is None:
            self.success_threshold = _task_success_threshold(self.task)
        if not informative(trajectories, self.test, self.success_threshold):
            return None
        out_dir = self.store.cand_dir(generation, index) / SCREENING_DIR
        outcome = screen_candidate(source, out_dir, trajectories, self.sandbox, self.threshold,
                                   self.task, test=self.test,
                                   success_threshold=self.success_threshold,
                                   executor=self.executor)
        self.store.event("screening", generation=generation, candidate=index, test=self.test,
                         accuracy=outcome.accuracy, pairs=outcome.pairs, passed=outcome.passed)
        if outcome.passed:
            return None
        self.saved += 1
        self.store.event("screened_out", generation=generation, candidate=index,
                         reason=outcome.reason, rl_runs_saved=self.saved)
        return CandidateResult(status="screened_out", reason=outcome.reason,
                               feedback=outcome.feedback)


__all__ = [
    "SCREENINGS",
    "SCREENING_TESTS",
    "TRAJECTORY_FILE",
    "Screener",
    "ScreeningOutcome",
    "Trajectory",
    "card_accuracy",
    "card_pair_accuracy",
    "informative",
    "judge_returns",
    "pick_trajectories",
    "preference_accuracy",
    "preference_feedback",
    "read_trajectories",
    "screen_candidate",
    "success_labels",
]
