"""State view: real MuJoCo envs, every task's declared fields, and the source grammar's errors."""

from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from rewardgen.errors import TaskError
from rewardgen.tasks.spec import load_task, task_names
from rewardgen.tasks.state import (
    StateBuilder,
    StateField,
    compile_source,
    parse_source,
    state_source,
)

TASKS = task_names()


@pytest.fixture
def hopper_env() -> Iterator[gym.Env]:
    env = gym.make("Hopper-v5")
    env.reset(seed=0)
    yield env
    env.close()


@pytest.fixture
def ant_env() -> Iterator[gym.Env]:
    env = gym.make("Ant-v5")
    env.reset(seed=0)
    yield env
    env.close()


def _stepped(name: str, steps: int = 5) -> tuple[gym.Env, StateBuilder]:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(steps):
        env.step(env.action_space.sample())
    return env, task.state_builder(env)


@pytest.mark.parametrize("name", TASKS)
def test_fields_have_declared_types_and_are_finite(name: str) -> None:
    env, builder = _stepped(name)
    state = builder.build()
    assert isinstance(state, builder.state_class)
    assert state._fields == tuple(f.name for f in builder.fields)
    for field, value in zip(builder.fields, state, strict=True):
        kind = builder.source.split(f"\n    {field.name}: ", 1)[1].split()[0]
        if kind == "float":
            assert type(value) is float, field.name
            assert math.isfinite(value), field.name
        else:
            assert kind == "np.ndarray"
            assert isinstance(value, np.ndarray) and value.dtype == np.float64, field.name
            assert np.all(np.isfinite(value)), field.name
            assert not value.flags.writeable, field.name
    env.close()


@pytest.mark.parametrize("name", TASKS)
def test_arrays_are_copies_that_do_not_follow_the_simulator(name: str) -> None:
    env, builder = _stepped(name)
    before = builder.build()
    snapshot = [np.array(v, copy=True) for v in before]
    base = env.unwrapped
    base.data.qpos[:] += 0.1  # type: ignore[attr-defined]
    base.data.qvel[:] += 0.5  # type: ignore[attr-defined]
    mujoco.mj_forward(base.model, base.data)  # type: ignore[attr-defined]
    env.step(env.action_space.sample())
    after = builder.build()
    for field, old, value in zip(builder.fields, snapshot, before, strict=True):
        np.testing.assert_array_equal(value, old, err_msg=field.name)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), (
        "a new State must see the moved simulator"
    )
    for value in before:
        if isinstance(value, np.ndarray):
            with pytest.raises(ValueError):
                value[...] = 0.0
            with pytest.raises(ValueError, match="WRITEABLE"):
                value.flags.writeable = True
    env.close()


@pytest.mark.parametrize("name", TASKS)
def test_class_is_built_from_exactly_the_shown_source(name: str) -> None:
    env, builder = _stepped(name, steps=0)
    rebuilt = StateBuilder._exec_source(builder.source)
    assert rebuilt._fields == builder.state_class._fields
    assert rebuilt.__annotations__ == builder.state_class.__annotations__
    assert rebuilt.__doc__ == builder.state_class.__doc__
    shapes = [np.shape(v) for v in builder.build()]
    assert builder.source == state_source(
        builder.fields, shapes, builder.state_class.__doc__.split(" Plain")[0]
    )
    for field in builder.fields:
        assert f"    {field.name}: " in builder.source
    env.close()


@pytest.mark.parametrize("name", ["hopper", "humanoid", "inverted_double_pendulum"])
def test_compile_source_agrees_with_the_builder(name: str) -> None:
    env, builder = _stepped(name)
    base = env.unwrapped
    state = builder.build()
    for field in builder.fields:
        value = compile_source(field.source, base.model, float(base.dt))(base.data)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(value, getattr(state, field.name), err_msg=field.name)
    env.close()


def test_named_indices_resolve_to_the_right_addresses(hopper_env: gym.Env) -> None:
    data = hopper_env.unwrapped.data  # type: ignore[attr-defined]
    fields = [
        StateField("z", "qpos[rootz]"),
        StateField("foot", "xpos[foot]"),
        StateField("foot_z", "xpos[foot][2]"),
        StateField("tail", "qvel[3:]"),
        StateField("t", "time"),
        StateField("step", "dt"),
        StateField("reach", "norm(xpos[foot])"),
        StateField("wrench", "cfrc_ext[1:]"),
    ]
    state = StateBuilder(fields, hopper_env).build()
    assert state.z == data.qpos[1]
    np.testing.assert_array_equal(state.foot, data.xpos[4])
    assert state.foot_z == data.xpos[4][2]
    np.testing.assert_array_equal(state.tail, data.qvel[3:])
    assert state.t == data.time and state.step == pytest.approx(0.008)
    assert state.reach == pytest.approx(float(np.linalg.norm(data.xpos[4])))
    assert state.wrench.shape == (4, 6)


def test_quaternion_functions_match_a_rotation(ant_env: gym.Env) -> None:
    base = ant_env.unwrapped
    angle = 0.3  # about the world z axis: yaw only
    base.data.qpos[3:7] = [math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]  # type: ignore[attr-defined]
    mujoco.mj_forward(base.model, base.data)  # type: ignore[attr-defined]
    fields = [StateField(f, f"{f}(xquat[torso])") for f in ("upright", "yaw", "pitch", "roll")]
    state = StateBuilder(fields, ant_env).build()
    assert state.upright == pytest.approx(1.0)
    assert state.yaw == pytest.approx(angle)
    assert state.pitch == pytest.approx(0.0, abs=1e-12)
    assert state.roll == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("qpso[0]", "unknown array 'qpso'"),
        ("qpos[0", "not of the form"),
        ("qpos[0][1][2]", "at most 2 indices"),
        ("qpos[1:2:3]", "bad index"),
        ("ctrl[thigh]", "cannot be indexed by name"),
        ("spin(xquat[torso])", "not of the form"),
    ],
)
def test_grammar_errors_need_no_model(source: str, match: str) -> None:
    with pytest.raises(TaskError, match=match):
        parse_source(source)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("xpos[head]", "bad index.*Invalid name 'head'"),
        ("qpos[knee]", "bad index.*Invalid name 'knee'"),
        ("qpos[99]", "bad index.*shape \\(6,\\)"),
        ("xpos[torso][3]", "bad index"),
        ("upright(xpos[torso])", "needs a quaternion"),
        ("yaw(qpos[0])", "needs a quaternion.*scalar"),
    ],
)
def test_model_errors_name_the_source(hopper_env: gym.Env, source: str, match: str) -> None:
    with pytest.raises(TaskError, match=match):
        StateBuilder([StateField("x", source)], hopper_env)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["a", "a"], "repeat a name"),
        (["class"], "Python keyword"),
        (["_hidden"], "plain identifier"),
    ],
)
def test_bad_field_names(hopper_env: gym.Env, names: list[str], match: str) -> None:
    with pytest.raises(TaskError, match=match):
        StateBuilder([StateField(n, "qpos[0]") for n in names], hopper_env)


def test_docs_cannot_break_the_rendered_source(hopper_env: gym.Env) -> None:
    field = StateField("x", "qpos[0]", unit="m\n", doc='line one\n    import os  """')
    builder = StateBuilder([field], hopper_env, title='Title """ with quotes.')
    assert builder.source.count("\n") == 4
    assert builder.state_class._fields == ("x",)
