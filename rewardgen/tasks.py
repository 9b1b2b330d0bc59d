"""TaskSpec: load and validate envs/*.yaml, build the env, its State view and its fitness."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from rewardgen.errors import TaskError
from rewardgen.fitness import FitnessSpec, FitnessTracker
from rewardgen.resources import resource_dir
from rewardgen.state import StateBuilder, StateField

_REQUIRED = ("env_id", "description", "state", "fitness")
_OPTIONAL = (
    "name",
    "env_kwargs",
    "max_episode_steps",
    "success_threshold",
    "camera",
    "seed_terms",
    "sparse_reward",
    "native_reward",
    "tags",
)


@dataclass(frozen=True)
class TaskSpec:
    """One task: an environment, a goal description, a State view and a trusted fitness.

    Attributes:
        name: snake_case task name (``hopper``, ``half_cheetah``).
        env_id: gymnasium id (``Hopper-v5``).
        description: one paragraph describing the goal for the LLM.
        state: the State view declaration.
        fitness: the trusted episode score used for selection.
        env_kwargs: keyword arguments for ``gym.make``.
        max_episode_steps: optional episode cap (else the env's registered one).
        success_threshold: an episode succeeds when its fitness reaches this value.
        camera: render settings (``width``, ``height``, ``camera_name`` or ``camera_id``).
        seed_terms: named reward-term expressions the offline proposer recombines.
        sparse_reward: optional expression over ``state`` giving the sparse reward variant.
        native_reward: one sentence describing gymnasium's own (human-designed) reward.
        tags: free labels (``locomotion``, ``manipulation``, ...).
        path: the file the spec was read from.
    """

    name: str
    env_id: str
    description: str
    state: tuple[StateField, ...]
    fitness: FitnessSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    success_threshold: float | None = None
    camera: dict[str, Any] = field(default_factory=dict)
    seed_terms: dict[str, str] = field(default_factory=dict)
    sparse_reward: str | None = None
    native_reward: str = ""
    tags: tuple[str, ...] = ()
    path: Path | None = None

    def make_env(self, render_mode: str | None = None, **overrides: Any) -> gym.Env:
        """Build the raw gymnasium env (with its TimeLimit), as the native baseline sees it."""
        kwargs = {**self.env_kwargs, **overrides}
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
            for key in ("width", "height", "camera_name", "camera_id"):
                if key in self.camera:
                    kwargs.setdefault(key, self.camera[key])
        if self.max_episode_steps is not None:
            kwargs.setdefault("max_episode_steps", self.max_episode_steps)
        try:
            return gym.make(self.env_id, **kwargs)
        except gym.error.Error as e:
            raise TaskError(f"task {self.name!r}: cannot make {self.env_id!r}: {e}") from e

    def state_builder(self, env: gym.Env) -> StateBuilder:
        """A builder of State views for ``env`` (which must be reset already)."""
        title = f"The {self.name} task ({self.env_id}) at one time step."
        return StateBuilder(self.state, env, title=title)

    def fitness_tracker(self, env: gym.Env) -> FitnessTracker:
        return FitnessTracker(self.fitness, float(env.unwrapped.dt))  # type: ignore[attr-defined]

    def is_success(self, fitness: float) -> bool | None:
        """Whether an episode with this fitness succeeded (None when no threshold is set)."""
        if self.success_threshold is None:
            return None
        return fitness >= self.success_threshold


def tasks_dir() -> Path:
    return resource_dir("envs")


def task_names() -> list[str]:
    """All task names, sorted."""
    return sorted(p.stem for p in tasks_dir().glob("*.yaml"))


def _parse_state(name: str, raw: Any) -> tuple[StateField, ...]:
    if not isinstance(raw, list) or not raw:
        raise TaskError(f"task {name!r}: 'state' must be a non-empty list of fields")
    fields = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "name" not in item or "source" not in item:
            raise TaskError(f"task {name!r}: state field #{i} needs 'name' and 'source'")
        unknown = set(item) - {"name", "source", "unit", "doc"}
        if unknown:
            raise TaskError(f"task {name!r}: state field {item['name']!r} has unknown keys {sorted(unknown)}")
        fields.append(
            StateField(str(item["name"]), str(item["source"]), str(item.get("unit", "")), str(item.get("doc", "")))
        )
    return tuple(fields)


def parse_task(raw: Any, name: str, path: Path | None = None) -> TaskSpec:
    """Validate a task mapping (as read from YAML) and build its TaskSpec."""
    if not isinstance(raw, dict):
        raise TaskError(f"task {name!r}: the file must hold a mapping, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise TaskError(f"task {name!r} ({path}): missing required keys {missing}")
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise TaskError(
            f"task {name!r} ({path}): unknown keys {sorted(unknown)}; allowed: {sorted(_REQUIRED + _OPTIONAL)}"
        )
    fit = raw["fitness"]
    if not isinstance(fit, dict) or "expr" not in fit and fit.get("aggregate") != "duration":
        raise TaskError(f"task {name!r}: 'fitness' needs 'expr' and 'aggregate'")
    fitness = FitnessSpec(
        expr=str(fit.get("expr", "0.0")),
        aggregate=str(fit.get("aggregate", "mean")),
        unit=str(fit.get("unit", "")),
        doc=str(fit.get("doc", "")),
    )
    fitness.compile()  # fail early on a bad expression
    threshold = raw.get("success_threshold")
    return TaskSpec(
        name=str(raw.get("name", name)),
        env_id=str(raw["env_id"]),
        description=" ".join(str(raw["description"]).split()),
        state=_parse_state(name, raw["state"]),
        fitness=fitness,
        env_kwargs=dict(raw.get("env_kwargs") or {}),
        max_episode_steps=raw.get("max_episode_steps"),
        success_threshold=None if threshold is None else float(threshold),
        camera=dict(raw.get("camera") or {}),
        seed_terms={str(k): str(v) for k, v in (raw.get("seed_terms") or {}).items()},
        sparse_reward=raw.get("sparse_reward"),
        native_reward=" ".join(str(raw.get("native_reward", "")).split()),
        tags=tuple(raw.get("tags") or ()),
        path=path,
    )


@cache
def load_task(name: str) -> TaskSpec:
    """Load ``envs/<name>.yaml`` (or a path to a YAML file) as a validated TaskSpec."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else tasks_dir() / f"{name}.yaml"
    if not path.is_file():
        valid = task_names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TaskError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(valid)}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TaskError(f"task file {path} is not valid YAML: {e}") from e
    return parse_task(raw, path.stem, path)
