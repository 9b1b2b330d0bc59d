"""Task specs: every shipped task loads, builds and scores; malformed files fail clearly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rewardgen.errors import TaskError
from rewardgen.tasks.spec import load_task, parse_task, task_names, tasks_dir

TASKS = task_names()
EXPECTED = {
    "half_cheetah": "HalfCheetah-v5",
    "hopper": "Hopper-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
    "humanoid": "Humanoid-v5",
    "humanoid_standup": "HumanoidStandup-v5",
    "swimmer": "Swimmer-v5",
    "reacher": "Reacher-v5",
    "pusher": "Pusher-v5",
    "inverted_pendulum": "InvertedPendulum-v5",
    "inverted_double_pendulum": "InvertedDoublePendulum-v5",
}


def _eval(expr: str, **names: Any) -> Any:
    return eval(expr, {"np": np, "math": math}, names)  # trusted: the shipped task files


def test_the_suite_is_complete() -> None:
    assert set(EXPECTED) <= set(TASKS)
    for name, env_id in EXPECTED.items():
        assert load_task(name).env_id == env_id


@pytest.mark.parametrize("name", TASKS)
def test_spec_is_complete(name: str) -> None:
    task = load_task(name)
    assert task.name == name and task.path == tasks_dir() / f"{name}.yaml"
    assert task.tags and len(task.description) > 100 and task.native_reward
    assert task.success_threshold is not None
    assert {"width", "height"} <= set(task.camera)
    assert 4 <= len(task.seed_terms) <= 6
    assert task.sparse_reward
    assert all(f.unit or f.doc for f in task.state)
    assert "dt" in {f.name for f in task.state}


@pytest.mark.parametrize("name", TASKS)
def test_env_runs_and_every_expression_evaluates(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    prev = builder.build()
    tracker.reset(prev)
    for _ in range(12):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, _ = env.step(action)
        assert np.all(np.isfinite(obs)) and math.isfinite(float(reward))
        state = builder.build()
        tracker.update(state)
        for term, expr in task.seed_terms.items():
            value = _eval(expr, state=state, action=action, prev_state=prev)
            # a scalar; the traceable style (np.where, np.clip) gives 0-d numpy values
            assert np.ndim(value) == 0 and np.isreal(value) and np.isfinite(value), term
        assert _eval(task.sparse_reward or "0.0", state=state) in (0.0, 1.0)
        prev = state
        if terminated or truncated:
            break
    assert math.isfinite(tracker.value)
    assert isinstance(task.is_success(tracker.value), bool)
    env.close()


@pytest.mark.parametrize("name", ["half_cheetah", "swimmer", "ant"])
def test_delta_fitness_is_the_distance_travelled(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=1)
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    first = builder.build()
    tracker.reset(first)
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)  # type: ignore[arg-type]
    for _ in range(20):
        env.step(action)
        tracker.update(builder.build())
    moved = builder.build().x_position - first.x_position
    assert tracker.value == pytest.approx(moved)
    assert moved == pytest.approx(env.unwrapped.data.qpos[0] - first.x_position, abs=0.05)  # type: ignore[attr-defined]
    env.close()


@pytest.mark.parametrize(
    ("name", "seconds"), [("inverted_pendulum", 0.04), ("inverted_double_pendulum", 0.05)]
)
def test_pendulum_fitness_counts_seconds_until_the_fall(name: str, seconds: float) -> None:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=0)
    tracker = task.fitness_tracker(env)
    tracker.reset(None)
    push = np.full(env.action_space.shape, env.action_space.high)  # type: ignore[arg-type, attr-defined]
    steps = 0
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(push)
        tracker.update(None)
        steps += 1
    assert terminated and steps < 100, "pushing one way makes the pole fall"
    assert tracker.value == pytest.approx(steps * seconds)
    assert task.is_success(tracker.value) is False
    env.close()


def test_pusher_and_reacher_score_final_distances() -> None:
    for name, a, b in [("reacher", "fingertip", "target"), ("pusher", "object", "goal")]:
        task = load_task(name)
        env = task.make_env()
        env.reset(seed=0)
        state = task.state_builder(env).build()
        gap = getattr(state, f"{a}_position")[:2] - getattr(state, f"{b}_position")[:2]
        assert task.fitness.compile()(state) == pytest.approx(-float(np.linalg.norm(gap)))
        assert task.fitness.compile()(state) < 0.0
        env.close()


# --- malformed task files ------------------------------------------------------------------


def _hopper_raw() -> dict[str, Any]:
    return yaml.safe_load((tasks_dir() / "hopper.yaml").read_text())  # type: ignore[no-any-return]


def _write(tmp_path: Path, raw: Any, name: str = "broken") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return str(path)


def test_a_copy_of_hopper_loads_by_path(tmp_path: Path) -> None:
    task = load_task(_write(tmp_path, _hopper_raw(), "hopper_copy"))
    assert task.name == "hopper_copy" and task.env_id == "Hopper-v5"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: r.pop("fitness"), r"missing required keys \['fitness'\]"),
        (lambda r: r.update(rewards=1), r"unknown keys \['rewards'\]; allowed"),
        (lambda r: r["state"].append({"name": "bad", "source": "qpos[0"}), "not of the form"),
        (
            lambda r: r["state"].append({"name": "v", "source": "velocity[0]"}),
            "unknown array 'velocity'",
        ),
        (lambda r: r["state"].append({"name": "dt", "source": "dt"}), "repeat the names"),
        (lambda r: r["state"][0].update(units="m"), "unknown keys \\['units'\\]"),
        (lambda r: r["fitness"].update(expr="state.x_position +"), "is not valid Python"),
        (lambda r: r["fitness"].update(aggregate="average"), "aggregate 'average' is not one of"),
        (lambda r: r["seed_terms"].update(bad="1 +"), "seed term 'bad' .* is not valid Python"),
        (lambda r: r.update(sparse_reward="state.x >"), "sparse_reward .* is not valid Python"),
        (lambda r: r.update(success_threshold="high"), "success_threshold must be a number"),
        (lambda r: r.update(max_episode_steps=0), "max_episode_steps must be a positive integer"),
        (lambda r: r.update(state=[]), "'state' must be a non-empty list"),
    ],
)
def test_malformed_files_fail_at_load(tmp_path: Path, edit: Any, match: str) -> None:
    raw = _hopper_raw()
    edit(raw)
    with pytest.raises(TaskError, match=match):
        load_task(_write(tmp_path, raw))


def test_yaml_error(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="is not valid YAML"):
        load_task(_write(tmp_path, "env_id: [Hopper-v5\nstate: {"))


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="must hold a mapping, got list"):
        load_task(_write(tmp_path, "- just\n- a list\n"))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda r: r["state"].append({"name": "head", "source": "xpos[head]"}),
            "Invalid name 'head'",
        ),
        (
            lambda r: r["fitness"].update(expr="state.x_pos"),
            "fitness 'state.x_pos' fails on a State",
        ),
        (lambda r: r.update(sparse_reward="float(state.height > 1)"), "sparse_reward .* fails"),
    ],
)
def test_names_are_checked_against_the_model(tmp_path: Path, edit: Any, match: str) -> None:
    raw = _hopper_raw()
    edit(raw)
    task = load_task(_write(tmp_path, raw))
    env = task.make_env()
    env.reset(seed=0)
    with pytest.raises(TaskError, match=match):
        task.state_builder(env)
    env.close()


def test_unknown_env_id(tmp_path: Path) -> None:
    raw = _hopper_raw()
    raw["env_id"] = "Hoppr-v5"
    with pytest.raises(TaskError, match="cannot make 'Hoppr-v5'"):
        load_task(_write(tmp_path, raw)).make_env()


def test_unknown_task_lists_valid_ones_and_suggests() -> None:
    with pytest.raises(
        TaskError, match=r"unknown task 'half_cheeta'\. Did you mean 'half_cheetah'\?"
    ):
        load_task("half_cheeta")
    with pytest.raises(TaskError, match="Valid tasks: .*humanoid_standup.*walker2d"):
        load_task("quadcopter")


def test_parse_task_rejects_a_non_mapping_fitness() -> None:
    raw = _hopper_raw()
    raw["fitness"] = "state.x_position"
    with pytest.raises(TaskError, match="'fitness' needs 'expr' and 'aggregate'"):
        parse_task(raw, "hopper")
