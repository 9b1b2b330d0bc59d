"""TaskSpec: load and validate envs/*.yaml, build the env, its State view and its fitness.

Tasks are found by name in the folders of ``task_dirs`` (config key, or the environment variable
``REWARDGEN_TASK_DIRS``, which isolated workers inherit) and then in the built-in ``envs/``; the
first folder holding ``<name>.yaml`` wins, so a user's file can also replace a built-in task.
"""

from __future__ import annotations

import difflib
import keyword
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from rewardgen.errors import TaskError
from rewardgen.resources import resource_dir
from rewardgen.sandbox.methods import is_reserved
from rewardgen.tasks.captions import check_captions
from rewardgen.tasks.fitness import FitnessSpec, FitnessTracker
from rewardgen.tasks.sources import IDENTIFIER
from rewardgen.tasks.state import StateBuilder, StateField, parse_source

TASK_DIRS_ENV = "REWARDGEN_TASK_DIRS"
# Gymnasium modules named in env ids ("metaworld:Meta-World/MT1") -> the extra that installs them.
_EXTRAS = {"metaworld": "manipulation", "gymnasium_robotics": "manipulation"}
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
    "vision",
    "captions",
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
        vision: vision-reward settings: ``goal_prompts`` and ``baseline_prompts`` (CLIP) and
            ``question`` (VLM preference); see docs/vision.md.
        path: the file the spec was read from.
        captions: what ``method=motif`` says about an episode: each a :class:`FitnessSpec`
            whose ``doc`` is the caption's label (YAML ``label``); none: a default caption.
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
    vision: dict[str, Any] = field(default_factory=dict)
    captions: tuple[FitnessSpec, ...] = ()

    @property
    def state_names(self) -> tuple[str, ...]:
        """The State field names: with the allowlisted methods, the attributes reward code uses."""
        return tuple(f.name for f in self.state)

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
            env = gym.make(self.env_id, **kwargs)
        except gym.error.Error as e:
            raise TaskError(f"task {self.name!r}: cannot make {self.env_id!r}: {e}") from e
        except ImportError as e:  # "module:EnvId" whose module is not installed
            module = self.env_id.partition(":")[0] if ":" in self.env_id else ""
            extra = _EXTRAS.get(module)
            fix = (
                f"pip install 'rewardgen[{extra}]'" if extra else f"install the package {module!r}"
            )
            raise TaskError(
                f"task {self.name!r}: cannot make {self.env_id!r}: {e.msg}; {fix}"
            ) from e
        if isinstance(env.observation_space, gym.spaces.Dict):
            # Goal-conditioned envs (Fetch, Shadow Hand) observe a dict; MlpPolicy needs a vector.
            env = gym.wrappers.FlattenObservation(env)
        return env

    def state_builder(self, env: gym.Env) -> StateBuilder:
        """A builder of State views for ``env`` (which must be reset already).

        The fitness and sparse reward expressions are tried on the first State, so a field name
        misspelt in the task file fails here with TaskError, not deep inside a training run.
        """
        title = f"The {self.name} task ({self.env_id}) at one time step."
        builder = StateBuilder(self.state, env, title=title)
        state = builder.build()
        checks = [("fitness", self.fitness.expr, self.fitness.compile())]
        if self.fitness.aggregate == "duration":
            checks = []
        if self.sparse_reward is not None:
            checks.append(("sparse_reward", self.sparse_reward, _expression(self.sparse_reward)))
        for what, expr, fn in checks:
            try:
                float(fn(state))
            except Exception as e:  # noqa: BLE001 - any failure means the spec is wrong
                raise TaskError(
                    f"task {self.name!r}: {what} {expr!r} fails on a State ({type(e).__name__}: "
                    f"{e}); State fields are {', '.join(state._fields)}"
                ) from e
        return builder

    def fitness_tracker(self, env: gym.Env) -> FitnessTracker:
        return FitnessTracker(self.fitness, float(env.unwrapped.dt))  # type: ignore[attr-defined]

    def is_success(self, fitness: float) -> bool | None:
        """Whether an episode with this fitness succeeded (None when no threshold is set)."""
        if self.success_threshold is None:
            return None
        return fitness >= self.success_threshold


def tasks_dir() -> Path:
    """The built-in task folder (``envs/``)."""
    return resource_dir("envs")


def use_task_dirs(dirs: Iterable[str | Path] | None) -> None:
    """Search ``dirs`` for tasks before the built-in ones, in this process and its workers.

    The folders go into the environment (``REWARDGEN_TASK_DIRS``) because candidates train in
    isolated worker processes that inherit it and load their task by name.

    Raises:
        TaskError: a folder does not exist.
    """
    paths = [Path(d).expanduser().resolve() for d in dirs or []]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise TaskError(f"task_dirs: {missing} not found; list existing folders of <task>.yaml")
    if paths:  # none configured: keep what the environment already says
        os.environ[TASK_DIRS_ENV] = os.pathsep.join(str(p) for p in paths)


def task_dirs() -> list[Path]:
    """Folders searched for ``<name>.yaml``, first match wins: ``task_dirs``, then ``envs/``."""
    extra = [Path(p) for p in os.environ.get(TASK_DIRS_ENV, "").split(os.pathsep) if p]
    return [*extra, tasks_dir()]


def task_names() -> list[str]:
    """All task names in every task folder, sorted."""
    return sorted({p.stem for d in task_dirs() for p in d.glob("*.yaml")})





def _expression(expr: str) -> Any:
    """Compile a trusted expression over ``state`` (with ``np`` and ``math``)."""
    return eval(f"lambda state: ({expr})", {"np": np, "math": math})  # trusted spec


def _check_expression(name: str, what: str, expr: Any) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise TaskError(f"task {name!r}: {what} must be a non-empty Python expression string")
    try:
        compile(expr, f"<{what}>", "eval")
    except SyntaxError as e:
        raise TaskError(f"task {name!r}: {what} {expr!r} is not valid Python: {e.msg}") from e
    return expr


def _only_keys(name: str, what: str, item: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """A task file's entry with a key the format does not have is an error naming the allowed."""
    unknown = set(item) - set(allowed)
    if unknown:
        raise TaskError(f"task {name!r}: {what} has unknown keys {sorted(unknown)}; "
                        f"allowed: {', '.join(allowed)}")


def _parse_state(name: str, raw: Any) -> tuple[StateField, ...]:
    if not isinstance(raw, list) or not raw:
        raise TaskError(f"task {name!r}: 'state' must be a non-empty list of fields")
    fields = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "name" not in item or "source" not in item:
            raise TaskError(f"task {name!r}: state field #{i} needs 'name' and 'source'")
        _only_keys(name, f"state field {item['name']!r}", item, ("name", "source", "unit", "doc"))
        field_name = str(item["name"])
        if (
            not IDENTIFIER.match(field_name)
            or field_name.startswith("_")
            or keyword.iskeyword(field_name)
        ):
            raise TaskError(
                f"task {name!r}: state field name {field_name!r} must be a plain identifier "
                "(letters, digits, _; not starting with _ and not a Python keyword)"
            )
        if is_reserved(field_name):
            raise TaskError(
                f"task {name!r}: state field name {field_name!r} is also the name of an array or "
                "container attribute, which reward code may not use; rename the field"
            )
        parse_source(str(item["source"]))  # grammar only; names are checked against the model later
        fields.append(
            StateField(
                field_name, str(item["source"]), str(item.get("unit", "")), str(item.get("doc", ""))
            )
        )
    names = [f.name for f in fields]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TaskError(f"task {name!r}: state fields repeat the names {repeated}")
    return tuple(fields)


def _parse_captions(name: str, raw: Any) -> tuple[FitnessSpec, ...]:
    """``captions: [{label, expr, aggregate, unit}]`` (method=motif's episode captions)."""
    if not isinstance(raw, list):
        raise TaskError(f"task {name!r}: captions must be a list of {{label, expr, aggregate, "
                        f"unit}} mappings, got {type(raw).__name__}")
    specs = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not str(item.get("label", "")).strip() or (
                "expr" not in item and item.get("aggregate") != "duration"):
            raise TaskError(f"task {name!r}: caption #{i} needs 'label' and 'expr'")
        _only_keys(name, f"caption #{i}", item, ("label", "expr", "aggregate", "unit"))
        spec = FitnessSpec(expr=str(item.get("expr", "0.0")),
                           aggregate=str(item.get("aggregate", "mean")),
                           unit=str(item.get("unit", "")), doc=str(item["label"]))
        try:
            spec.compile()
        except TaskError as e:
            raise TaskError(f"task {name!r}: caption {spec.doc!r}: {e}") from e
        specs.append(spec)
    return tuple(specs)


def _optional_number(name: str, raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskError(f"task {name!r}: {key} must be a number, got {value!r}")
    return float(value)


def _mapping(name: str, raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise TaskError(f"task {name!r}: {key} must be a mapping, got {type(value).__name__}")
    return dict(value)


def parse_task(raw: Any, name: str, path: Path | None = None) -> TaskSpec:
    """Validate a task mapping (as read from YAML) and build its TaskSpec.

    Everything that can be checked without building the env is checked here: keys, types, the
    State sources' grammar, and that every expression is valid Python.
    """
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
    task_name = str(raw.get("name", name))
    if not task_name.strip() or "/" in task_name:
        raise TaskError(f"task name {task_name!r} must be a non-empty name like half_cheetah")
    if not isinstance(raw["env_id"], str) or not raw["env_id"].strip():
        raise TaskError(f"task {name!r}: env_id must be a gymnasium id string like 'Hopper-v5'")
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        raise TaskError(f"task {name!r}: description must be a non-empty paragraph")
    fit = raw["fitness"]
    if not isinstance(fit, dict) or "expr" not in fit and fit.get("aggregate") != "duration":
        raise TaskError(f"task {name!r}: 'fitness' needs 'expr' and 'aggregate'")
    _only_keys(name, "fitness", fit, ("expr", "aggregate", "unit", "doc"))
    fitness = FitnessSpec(
        expr=str(fit.get("expr", "0.0")),
        aggregate=str(fit.get("aggregate", "mean")),
        unit=str(fit.get("unit", "")),
        doc=str(fit.get("doc", "")),
    )
    try:
        fitness.compile()  # fail early on a bad expression or aggregate
    except TaskError as e:
        raise TaskError(f"task {name!r}: {e}") from e
    seed_terms = _mapping(name, raw, "seed_terms")
    for term, expr in seed_terms.items():
        _check_expression(name, f"seed term {term!r}", expr)
    sparse = raw.get("sparse_reward")
    if sparse is not None:
        _check_expression(name, "sparse_reward", sparse)
    steps = raw.get("max_episode_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise TaskError(
            f"task {name!r}: max_episode_steps must be a positive integer, got {steps!r}"
        )
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise TaskError(f"task {name!r}: tags must be a list like [locomotion], got {tags!r}")
    task = TaskSpec(
        name=task_name,
        env_id=raw["env_id"].strip(),
        description=" ".join(str(raw["description"]).split()),
        state=_parse_state(name, raw["state"]),
        fitness=fitness,
        env_kwargs=_mapping(name, raw, "env_kwargs"),
        max_episode_steps=steps,
        success_threshold=_optional_number(name, raw, "success_threshold"),
        camera=_mapping(name, raw, "camera"),
        seed_terms={str(k): str(v) for k, v in seed_terms.items()},
        sparse_reward=sparse,
        native_reward=" ".join(str(raw.get("native_reward", "")).split()),
        tags=tuple(str(t) for t in tags),
        path=path,
        vision=_mapping(name, raw, "vision"),
        captions=_parse_captions(name, raw.get("captions") or []),
    )
    check_captions(task)  # method=motif's captions never show the fitness
    return task


def find_task_file(name: str) -> Path:
    """The file of task ``name`` (or ``name`` itself when it is a path to a YAML file)."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
    else:
        found = [d / f"{name}.yaml" for d in task_dirs() if (d / f"{name}.yaml").is_file()]
        path = found[0] if found else tasks_dir() / f"{name}.yaml"
    if not path.is_file() and (name.endswith((".yaml", ".yml")) or os.sep in name):
        raise TaskError(f"task file {name} does not exist; give the path of a task YAML file, "
                        "or a task name (rewardgen-tasks lists them)")
    if not path.is_file():
        valid = task_names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TaskError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(valid)}")
    return path


def load_task(name: str) -> TaskSpec:
    """Load ``<name>.yaml`` from the task folders (or a path to a YAML file) as a TaskSpec."""
    return _load_task_file(find_task_file(name))


@cache
def _load_task_file(path: Path) -> TaskSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise TaskError(f"task file {path} cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise TaskError(f"task file {path} is not valid YAML: {e}") from e
    return parse_task(raw, path.stem, path)
