"""Stored trajectories: the file format of CARD's raw material.

The trusted evaluator stores a few evaluation episodes of every trained candidate in its folder
(:func:`save_episodes`: States, actions, trusted fitness; never reward components). To judge a
reward program on them, :func:`rewardgen.search.scoring.run_scorer` copies the episodes into a
fresh folder (:func:`stage_inputs`) and runs :mod:`rewardgen.worker.score` there in a sandboxed
worker, which reports the program's returns, per-step rewards and (when asked) per-step
components. It decides nothing: screening and feedback are made in the parent
(:mod:`rewardgen.search.screening`, :mod:`rewardgen.search.scoring`).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.runs.atomic import atomic_write_json

log = logging.getLogger(__name__)

TRAJECTORY_FILE = "trajectories.npz"
INPUT_FILE = "screening_input.json"
EPISODES_FILE = "episodes.npz"  # the stored episodes a scorer reads, copied into its folder
OUTPUT_FILE = "screening.json"
MAX_STORED_EPISODES = 6  # per candidate, evenly over its evaluations


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


__all__ = [
    "EPISODES_FILE",
    "INPUT_FILE",
    "MAX_STORED_EPISODES",
    "OUTPUT_FILE",
    "TRAJECTORY_FILE",
    "Trajectory",
    "load_episode",
    "read_trajectories",
    "save_episodes",
    "stage_inputs",
]
