"""Stored trajectories and a reward program scored along them (CARD's raw material).

The trusted evaluator stores a few evaluation episodes of every trained candidate in its folder
(:func:`save_episodes`: States, actions, trusted fitness; never reward components). To judge a
reward program on them, :func:`run_scorer` copies the episodes into a fresh folder
(:func:`stage_inputs`) and runs :func:`score_trajectories` there in a sandboxed worker, which
reports the program's returns, per-step rewards and (when asked) per-step components. It
decides nothing: its report is read back as hostile input, and screening and feedback are made
in the parent (:mod:`rewardgen.search.screening`).
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
from rewardgen.errors import RewardCodeError
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob, CandidateResult

log = logging.getLogger(__name__)

TRAJECTORY_FILE = "trajectories.npz"
INPUT_FILE = "screening_input.json"
EPISODES_FILE = "episodes.npz"  # the stored episodes a scorer reads, copied into its folder
OUTPUT_FILE = "screening.json"
MAX_STORED_EPISODES = 6  # per candidate, evenly over its evaluations
SCORER = "rewardgen.runs.trajectories:score_trajectories"
_OUTPUT_LIMIT_MB = 64  # the scorer's output file, read back as hostile input


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
    """One stored episode: its file, its index in the file, its trusted fitness and its steps."""

    path: str
    episode: int
    fitness: float
    label: str = ""
    length: int = 0  # actions (rewarded steps); 0: unknown

    @property
    def name(self) -> str:
        return f"{self.label or Path(self.path).parent.name} episode {self.episode}"


def read_trajectories(path: Path, label: str = "") -> list[Trajectory]:
    """The episodes stored in one candidate's ``trajectories.npz`` (none when missing)."""
    if not path.is_file():
        return []
    try:
        with np.load(path) as data:
            keys = sorted(k for k in data.files if k.endswith("/fitness"))
            found = []
            for k in keys:
                prefix = k.split("/")[0]
                found.append(Trajectory(str(path), int(prefix[2:]), float(data[k]), label,
                                        int(len(data[f"{prefix}/action"]))))
            return found
    except (OSError, ValueError, KeyError) as e:
        log.warning("ignoring unreadable trajectories in %s: %s", path, e)
        return []


def load_episode(path: str, episode: int) -> tuple[list[Any], np.ndarray]:
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
        states, actions = load_episode(t.path, t.episode)
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
def score_trajectories(job: CandidateJob) -> CandidateResult:
    """Worker target: the candidate's reward along the stored trajectories. It decides nothing.

    Reads ``<out_dir>/screening_input.json`` and writes ``<out_dir>/screening.json`` (returns,
    per-step rewards, and per-step components when asked); the result carries the returns as
    ``episode_returns``. The parent judges them against the trusted fitness.
    """
    from rewardgen.rewards.program import load_program
    from rewardgen.rewards.wrappers import _checked

    out_dir = Path(job.out_dir)
    spec = json.loads((out_dir / INPUT_FILE).read_text())
    try:
        fn = load_program(job.reward_source or "", job.entry).fn
        returns: list[float] = []
        rewards: list[list[float]] = []
        per_step: list[list[dict[str, float]]] = []
        for ref in spec["trajectories"]:
            states, actions = load_episode(ref["path"], int(ref["episode"]))
            values: list[float] = []
            steps: list[dict[str, float]] = []
            for t in range(len(actions)):
                try:
                    value, parts = _checked(fn(states[t + 1], actions[t], states[t]))
                except RewardCodeError:
                    raise
                except Exception as e:  # noqa: BLE001 - generated code may raise anything
                    raise RewardCodeError(f"compute_reward raised {type(e).__name__}: {e}") from e
                values.append(value)
                if spec.get("components"):
                    steps.append(parts)
            returns.append(float(sum(values)))
            rewards.append(values)
            per_step.append(steps)
    except RewardCodeError as e:
        return CandidateResult(status="failed", reason=f"on stored trajectories: {e}")
    atomic_write_json(out_dir / OUTPUT_FILE, {"returns": returns, "rewards": rewards,
                                              "components": per_step})
    return CandidateResult(status="ok", episode_returns=returns)


# ---------------------------------------------------------------- running it (the parent side)
@dataclass(frozen=True)
class Scored:
    """What a scorer reported: returns (validated), per-step rewards and components (or None)."""

    returns: list[float]
    rewards: list[list[float]] | None
    components: list[list[dict[str, float]]] | None


def _finite(values: Any, length: int) -> list[float] | None:
    if not isinstance(values, list) or len(values) != length:
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def run_scorer(source: str, out_dir: Path, trajectories: Sequence[Trajectory],
                sandbox: SandboxConfig, task: str, entry: str,
                components: bool = False) -> Scored | str:
    """Run the scorer in a sandboxed worker over ``trajectories``; its report, or why not.

    Everything it reports is hostile input: the returns must be one finite number per episode;
    per-step rewards and components are read from a plain, bounded file and kept only when they
    have the trusted episode lengths.
    """
    from rewardgen.sandbox.worker import run_isolated
    from rewardgen.worker.checkpoints import CheckpointError, read_regular_file

    out_dir.mkdir(parents=True, exist_ok=True)
    stage_inputs(out_dir, trajectories, **({"components": True} if components else {}))
    job = CandidateJob(task=task, out_dir=str(out_dir), reward_source=source, entry=entry)
    quick = dataclasses.replace(sandbox, timeout_s=min(float(sandbox.timeout_s), 120.0))
    result = run_isolated(job, quick, target=SCORER)
    if not result.ok:
        return result.reason
    returns = _finite(list(result.episode_returns), len(trajectories))
    if returns is None:
        return (f"the scorer returned {len(result.episode_returns)} returns for "
                f"{len(trajectories)} episodes")
    rewards: list[list[float]] | None = None
    steps: list[list[dict[str, float]]] | None = None
    try:
        raw = json.loads(read_regular_file(out_dir / OUTPUT_FILE, _OUTPUT_LIMIT_MB))
        lengths = [t.length for t in trajectories]
        checked = [_finite(r, n) for r, n in zip(raw["rewards"], lengths, strict=True)]
        rewards = None if any(r is None for r in checked) else checked  # type: ignore[assignment]
        if components:
            steps = [
                [{str(n)[:64]: float(v) for n, v in list(step.items())[:64]
                  if isinstance(v, (int, float)) and math.isfinite(v)} for step in ep]
                for ep in raw["components"]
            ]
            if [len(ep) for ep in steps] != lengths:
                steps = None
    except (CheckpointError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.info("trajectory scorer: unusable output (%s)", e)
    return Scored(returns, rewards, steps)


__all__ = [
    "MAX_STORED_EPISODES",
    "TRAJECTORY_FILE",
    "Scored",
    "Trajectory",
    "load_episode",
    "read_trajectories",
    "run_scorer",
    "save_episodes",
    "score_trajectories",
    "stage_inputs",
]
