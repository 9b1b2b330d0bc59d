"""CARD's Trajectory Preference Evaluation: screen a candidate on stored trajectories before RL.

Every trained candidate leaves ``trajectories.npz`` in its directory: the State sequence and
actions of a few evaluation episodes, with each episode's trusted fitness (:func:`save_episodes`,
written by the trusted evaluator from its own rollouts). Before a new candidate trains, its
``compute_reward`` is run over those trajectories in an isolated worker
(:func:`score_trajectories`); if the returns order the trajectories unlike their fitness
(preference accuracy below ``loop.screening_threshold``) the candidate is ``screened_out`` and no
RL run is spent on it. The DESIGN puts this scorer in feedback.py; it lives here to keep that
module small. :func:`process_feedback` is CARD's process feedback: how each reward component
behaved along the best candidate's own trajectory.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.config import SandboxConfig
from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.io import atomic_write_json
from rewardgen.results import CandidateJob, CandidateResult
from rewardgen.store import CandidateRecord, RunStore

log = logging.getLogger(__name__)

TRAJECTORY_FILE = "trajectories.npz"
SCREENING_DIR = "screening"
INPUT_FILE = "screening_input.json"
EPISODES_FILE = "episodes.npz"  # the stored episodes a scorer reads, copied into its folder
OUTPUT_FILE = "screening.json"
MAX_STORED_EPISODES = 6  # per candidate, evenly over its evaluations
MAX_SCREEN_TRAJECTORIES = 16  # per screening, evenly over the fitness range
_TIE = 1e-9


# ---------------------------------------------------------------- recording (in the worker)
def save_episodes(episodes: Sequence[dict[str, Any]], path: str | Path,
                  max_episodes: int = MAX_STORED_EPISODES) -> int:
    """Write up to ``max_episodes`` episodes (evenly spread) to an npz; return how many.

    Each episode is ``{"states": [State, ...], "actions": [...], "fitness": float}`` with an
    optional ``"components"`` list of per-step dicts. The trusted evaluator writes these from
    its own rollouts on the native env, so their States and fitness are trusted.
    """
    if len(episodes) > max_episodes:
        picks = np.linspace(0, len(episodes) - 1, max_episodes).round().astype(int)
        episodes = [episodes[i] for i in sorted(set(picks.tolist()))]
    arrays: dict[str, np.ndarray] = {}
    for k, ep in enumerate(episodes):
        fields = ep["states"][0]._fields
        for name in fields:
            arrays[f"ep{k}/state/{name}"] = np.asarray([getattr(s, name) for s in ep["states"]])
        arrays[f"ep{k}/action"] = np.asarray(ep["actions"])
        arrays[f"ep{k}/fitness"] = np.asarray(ep["fitness"])
        steps = ep.get("components") or []
        for name in sorted({n for c in steps for n in c}):
            arrays[f"ep{k}/component/{name}"] = np.asarray([c.get(name, 0.0) for c in steps])
    if arrays:
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return len(episodes)


@dataclass(frozen=True)
class Trajectory:
    """One stored episode: its file, its index in the file, and its trusted fitness."""

    path: str
    episode: int
    fitness: float
    label: str = ""


def read_trajectories(path: Path, label: str = "") -> list[Trajectory]:
    """The episodes stored in one candidate's ``trajectories.npz`` (none when missing)."""
    if not path.is_file():
        return []
    try:
        with np.load(path) as data:
            keys = [k for k in data.files if k.endswith("/fitness")]
            return [
                Trajectory(str(path), int(k.split("/")[0][2:]), float(data[k]), label)
                for k in sorted(keys)
            ]
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable trajectories in %s: %s", path, e)
        return []


def _load_episode(path: str, episode: int) -> tuple[list[Any], np.ndarray]:
    with np.load(path) as data:
        prefix = f"ep{episode}/state/"
        names = [k[len(prefix):] for k in data.files if k.startswith(prefix)]
        columns = {name: data[prefix + name] for name in names}
        actions = data[f"ep{episode}/action"]
    state_type = collections.namedtuple("State", names)  # type: ignore[misc]
    length = len(next(iter(columns.values())))
    states = [
        state_type(*(_plain(columns[n][t]) for n in names)) for t in range(length)
    ]
    return states, actions


def stage_inputs(out_dir: Path, trajectories: Sequence[Trajectory], **extra: Any) -> None:
    """Copy the episodes a scorer needs into its own folder and write its input file.

    The sandboxed scorer sees only its own folder, so it never reads other candidates' files.
    """
    episodes = []
    for t in trajectories:
        states, actions = _load_episode(t.path, t.episode)
        episodes.append({"states": states, "actions": list(actions), "fitness": t.fitness})
    path = out_dir / EPISODES_FILE
    save_episodes(episodes, path, max_episodes=len(episodes))
    refs = [{**dataclasses.asdict(t), "path": str(path), "episode": k}
            for k, t in enumerate(trajectories)]
    atomic_write_json(out_dir / INPUT_FILE, {"trajectories": refs, **extra})


def _plain(value: np.ndarray) -> Any:
    """A State field as the live view holds it: a float for scalars, a read-only array else."""
    if value.ndim == 0:
        return float(value)
    copy = np.array(value)
    copy.flags.writeable = False
    return copy


# ---------------------------------------------------------------- scoring (in the worker)
def preference_accuracy(returns: Sequence[float], fitness: Sequence[float]) -> tuple[float, int]:
    """Share of trajectory pairs whose return order matches their fitness order, and the pairs.

    Pairs with equal fitness say nothing and are skipped; equal returns count half.
    """
    agree, pairs = 0.0, 0
    for i in range(len(returns)):
        for j in range(i + 1, len(returns)):
            df = fitness[i] - fitness[j]
            if abs(df) <= _TIE:
                continue
            pairs += 1
            dr = returns[i] - returns[j]
            if abs(dr) <= _TIE * max(1.0, abs(returns[i]), abs(returns[j])):
                agree += 0.5
            elif (dr > 0) == (df > 0):
                agree += 1.0
    return (agree / pairs if pairs else math.nan), pairs


def score_trajectories(job: CandidateJob) -> CandidateResult:
    """Worker target: the candidate's returns on the stored trajectories, and the accuracy.

    Reads ``<out_dir>/screening_input.json`` and writes ``<out_dir>/screening.json``; the result
    carries the accuracy as ``fitness`` and the returns as ``episode_returns``.
    """
    from rewardgen.rewards.program import load_program
    from rewardgen.rewards.wrappers import _checked

    out_dir = Path(job.out_dir)
    spec = json.loads((out_dir / INPUT_FILE).read_text())
    try:
        fn = load_program(job.reward_source or "", job.entry).fn
        returns: list[float] = []
        per_step: list[list[dict[str, float]]] = []
        for ref in spec["trajectories"]:
            states, actions = _load_episode(ref["path"], int(ref["episode"]))
            total = 0.0
            steps: list[dict[str, float]] = []
            for t in range(len(actions)):
                try:
                    value, parts = _checked(fn(states[t + 1], actions[t], states[t]))
                except RewardCodeError:
                    raise
                except Exception as e:  # noqa: BLE001 - generated code may raise anything
                    raise RewardCodeError(f"compute_reward raised {type(e).__name__}: {e}") from e
                total += value
                if spec.get("components"):
                    steps.append(parts)
            returns.append(total)
            per_step.append(steps)
    except RewardCodeError as e:
        return CandidateResult(status="failed", reason=f"on stored trajectories: {e}")
    fitness = [float(ref["fitness"]) for ref in spec["trajectories"]]
    accuracy, pairs = preference_accuracy(returns, fitness)
    atomic_write_json(out_dir / OUTPUT_FILE, {"accuracy": accuracy, "pairs": pairs,
                                              "returns": returns, "fitness": fitness,
                                              "components": per_step})
    return CandidateResult(status="ok", fitness=accuracy, episode_returns=returns,
                           episode_fitness=fitness)


# ---------------------------------------------------------------- the parent side
@dataclass(frozen=True)
class ScreeningOutcome:
    """What screening decided about one candidate."""

    passed: bool
    accuracy: float | None
    pairs: int
    reason: str = ""


def pick_trajectories(found: Sequence[Trajectory], limit: int = MAX_SCREEN_TRAJECTORIES) -> list[Trajectory]:
    """At most ``limit`` trajectories spread evenly over the fitness range (cheap, informative)."""
    ordered = sorted(found, key=lambda t: t.fitness)
    if len(ordered) <= limit:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, limit).round().astype(int)
    return [ordered[i] for i in sorted(set(picks.tolist()))]


def screen_candidate(source: str, out_dir: Path, trajectories: Sequence[Trajectory],
                     sandbox: SandboxConfig, threshold: float, task: str,
                     entry: str = "compute_reward") -> ScreeningOutcome:
    """Run the scorer in an isolated worker and compare its accuracy with ``threshold``.

    Fewer than one informative pair (no two trajectories of different fitness) lets the
    candidate through: there is nothing to judge it by yet. A reward that breaks on the stored
    States is screened out with that reason.
    """
    from rewardgen.sandbox.worker import run_isolated

    out_dir.mkdir(parents=True, exist_ok=True)
    stage_inputs(out_dir, trajectories)
    job = CandidateJob(task=task, out_dir=str(out_dir), reward_source=source, entry=entry)
    quick = dataclasses.replace(sandbox, timeout_s=min(float(sandbox.timeout_s), 120.0))
    result = run_isolated(job, quick, target="rewardgen.screening:score_trajectories")
    if not result.ok:
        return ScreeningOutcome(False, None, 0, f"trajectory preference screening: {result.reason}")
    # The worker ran the reward program: only its returns are taken (as reported, validated);
    # the accuracy is computed here against the trusted fitness of the stored episodes.
    returns = result.episode_returns
    if len(returns) != len(trajectories) or not all(
        isinstance(r, (int, float)) and math.isfinite(r) for r in returns
    ):
        return ScreeningOutcome(False, None, 0, "trajectory preference screening: the scorer "
                                f"returned {len(returns)} returns for {len(trajectories)} episodes")
    accuracy, pairs = preference_accuracy(returns, [t.fitness for t in trajectories])
    if accuracy is None or math.isnan(accuracy) or pairs == 0:
        return ScreeningOutcome(True, None, 0)
    if accuracy < threshold:
        reason = f"trajectory preference accuracy {accuracy:.2f} < {threshold:.2f}"
        return ScreeningOutcome(False, accuracy, pairs, reason)
    return ScreeningOutcome(True, accuracy, pairs)


SCREENINGS = ("none", "trajectory_preference")


class Screener:
    """The loop's screening step: judge each new candidate on the run's stored trajectories.

    Args:
        store: the run directory (trajectories are read from candidate folders, screening
            results written to ``<candidate>/screening/``).
        task: the task name (for the worker job).
        sandbox: the worker's limits (the timeout is capped at two minutes).
        threshold: least preference accuracy to be trained.
    """

    def __init__(self, store: RunStore, task: str, sandbox: SandboxConfig, threshold: float) -> None:
        self.store = store
        self.task = task
        self.sandbox = sandbox
        self.threshold = float(threshold)
        self.saved = 0

    @classmethod
    def from_config(cls, cfg: Any, store: RunStore, entry: str) -> Screener | None:
        """A screener for ``loop.screening=trajectory_preference``, None for ``none``.

        Raises:
            ConfigError: an unknown screening or a method whose programs are not rewards.
        """
        kind = str(cfg.loop.get("screening", "none") or "none")
        if kind not in SCREENINGS:
            raise ConfigError(f"loop.screening={kind!r} is not one of {SCREENINGS}")
        if kind == "none":
            return None
        if entry != "compute_reward":
            raise ConfigError(f"loop.screening={kind} scores compute_reward programs; method "
                              f"{cfg.method.name!r} writes {entry}(); use loop.screening=none")
        from omegaconf import OmegaConf

        sandbox = SandboxConfig(**OmegaConf.to_container(cfg.sandbox, resolve=True))  # type: ignore[arg-type]
        return cls(store, str(cfg.task), sandbox, float(cfg.loop.screening_threshold))

    def trajectories(self, history: Sequence[Sequence[CandidateRecord]]) -> list[Trajectory]:
        """The stored episodes of every trained candidate so far, spread over the fitness range."""
        found = [
            t
            for gen in history
            for r in gen
            if r.result.ok
            for t in read_trajectories(
                self.store.cand_dir(r.generation, r.index) / TRAJECTORY_FILE, r.label
            )
        ]
        return pick_trajectories(found)

    def screen(self, generation: int, index: int, source: str,
               trajectories: Sequence[Trajectory]) -> CandidateResult | None:
        """A ``screened_out`` result when the candidate misranks the trajectories, else None."""
        if len({round(t.fitness, 9) for t in trajectories}) < 2:
            return None
        out_dir = self.store.cand_dir(generation, index) / SCREENING_DIR
        outcome = screen_candidate(source, out_dir, trajectories, self.sandbox, self.threshold,
                                   self.task)
        self.store.event("screening", generation=generation, candidate=index,
                         accuracy=outcome.accuracy, pairs=outcome.pairs, passed=outcome.passed)
        if outcome.passed:
            return None
        self.saved += 1
        self.store.event("screened_out", generation=generation, candidate=index,
                         reason=outcome.reason, rl_runs_saved=self.saved)
        return CandidateResult(status="screened_out", reason=outcome.reason)


# ---------------------------------------------------------------- process feedback
def component_series(source: str, trajectory: Trajectory, out_dir: Path, sandbox: SandboxConfig,
                     task: str, entry: str = "compute_reward") -> dict[str, list[float]]:
    """Per-step reward components of ``source`` along one stored (trusted) episode.

    The program runs in a sandboxed worker; what it reports is read back as hostile input
    (plain file, bounded size, finite numbers, at most 64 names) and used only as prompt text.
    Returns an empty dict when the worker fails.
    """
    from rewardgen.sandbox.worker import run_isolated
    from rewardgen.worker.checkpoints import CheckpointError, read_regular_file

    out_dir.mkdir(parents=True, exist_ok=True)
    stage_inputs(out_dir, [trajectory], components=True)
    job = CandidateJob(task=task, out_dir=str(out_dir), reward_source=source, entry=entry)
    quick = dataclasses.replace(sandbox, timeout_s=min(float(sandbox.timeout_s), 120.0))
    result = run_isolated(job, quick, target="rewardgen.screening:score_trajectories")
    if not result.ok:
        log.info("process feedback: %s", result.reason)
        return {}
    try:
        raw = json.loads(read_regular_file(out_dir / OUTPUT_FILE, 64))
        steps = raw["components"][0]
        if not isinstance(steps, list):
            return {}
        names = sorted({str(n) for step in steps if isinstance(step, dict) for n in step})[:64]
        return {name: [float(step.get(name, 0.0)) if isinstance(step, dict) else 0.0
                       for step in steps] for name in names}
    except (CheckpointError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        log.info("process feedback: unusable scorer output (%s)", e)
        return {}


def best_trajectory(path: Path) -> Trajectory | None:
    """The stored episode with the highest trusted fitness, None without any."""
    return max(read_trajectories(path), key=lambda t: t.fitness, default=None)


def process_feedback(trajectory: Trajectory, series: dict[str, list[float]],
                     points: int = 8) -> str:
    """CARD's process feedback: each reward component along one stored episode.

    Shows the per-step value of every component at ``points`` evenly spaced steps, with the
    episode's trusted fitness, so the LLM sees *when* a term pays out (early and then flat, only
    at the end, oscillating) rather than only its sum.
    """
    length = max((len(v) for v in series.values()), default=0)
    if not series or length == 0:
        return ""
    steps = sorted(set(np.linspace(0, length - 1, min(points, length)).round().astype(int).tolist()))
    lines = [f"Along one evaluation episode of the best policy ({length} steps, task score "
             f"{trajectory.fitness:.2f}), per-step reward components at steps {steps}:"]
    for name, values in series.items():
        shown = ", ".join(f"{float(values[t]):.3f}" if t < len(values) else "-" for t in steps)
        lines.append(f"{name}: [{shown}] (episode sum {float(np.sum(values)):.2f})")
    return "\n".join(lines)


__all__ = [
    "SCREENINGS",
    "TRAJECTORY_FILE",
    "Screener",
    "ScreeningOutcome",
    "Trajectory",
    "save_episodes",
    "pick_trajectories",
    "preference_accuracy",
    "best_trajectory",
    "component_series",
    "process_feedback",
    "read_trajectories",
    "score_trajectories",
    "screen_candidate",
]
