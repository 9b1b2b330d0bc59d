"""What Motif may caption: behaviour, never the fitness or a quantity it is computed from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rewardgen.errors import TaskError
from rewardgen.tasks.captions import (
    behaviour_fields,
    caption_fields,
    check_captions,
    fitness_fields,
    step_values,
)
from rewardgen.tasks.spec import load_task, parse_task, task_names

HOPPER_STATE = [
    {"name": "x_position", "source": "qpos[rootx]"},
    {"name": "torso_height", "source": "qpos[rootz]"},
    {"name": "x_velocity", "source": "qvel[rootx]"},
    {"name": "z_velocity", "source": "qvel[rootz]"},
    {"name": "dt", "source": "dt"},
]


def _task(captions: list[dict[str, Any]], fitness: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "env_id": "Hopper-v5",
        "description": "hop",
        "state": HOPPER_STATE,
        "fitness": fitness or {"expr": "state.x_position", "aggregate": "delta"},
        "captions": captions,
    }


def test_the_fitness_quantity_and_its_rate_are_the_fitness_s() -> None:
    hopper = load_task("hopper")
    assert fitness_fields(hopper) == {"x_position", "x_velocity"}  # qpos[rootx] and qvel[rootx]
    assert {"torso_height", "z_velocity"} <= {f.name for f in behaviour_fields(hopper)}
    assert fitness_fields(load_task("humanoid")) >= {"x_position", "x_velocity", "com_position"}
    assert fitness_fields(load_task("humanoid_standup")) >= {"torso_height", "z_velocity"}
    pendulum = load_task("inverted_pendulum")  # a duration fitness: the clock is the score
    assert fitness_fields(pendulum) == {"dt"} and "dt" not in caption_fields(pendulum)
    push = load_task("fetch_push")  # info's success flag: what the sparse reward reads
    assert {"object_position", "goal_position"} <= fitness_fields(push)


@pytest.mark.parametrize(
    ("caption", "match"),
    [
        (
            {"label": "forward distance", "expr": "state.x_position", "aggregate": "delta"},
            r"caption 'forward distance' reads state.x_position, a quantity of the fitness \(delta of "
            r"state.x_position\)",
        ),
        ({"label": "mean speed", "expr": "state.x_velocity"}, r"reads state.x_velocity"),
        ({"label": "success", "expr": "float(info.get('x', 0))"}, r"reads info"),
    ],
)
def test_a_caption_of_the_fitness_is_refused_when_the_task_loads(
    caption: dict[str, Any], match: str
) -> None:
    with pytest.raises(TaskError, match=match) as error:
        parse_task(_task([caption]), "t")
    assert "\n" not in str(error.value)


def test_a_duration_caption_is_refused_when_the_fitness_is_the_duration() -> None:
    duration = {"aggregate": "duration", "unit": "s"}
    with pytest.raises(TaskError, match="is the episode's duration, which is the fitness"):
        parse_task(_task([{"label": "time", "aggregate": "duration"}], duration), "t")
    task = parse_task(
        _task(
            [
                {"label": "time", "aggregate": "duration"},
                {"label": "height", "expr": "state.torso_height"},
            ]
        ),
        "t",
    )
    check_captions(task)  # duration is behaviour when the fitness is distance
    assert caption_fields(task) == ["torso_height"]


def test_every_built_in_task_loads_with_its_captions_checked() -> None:
    for name in task_names():
        task = load_task(name)
        assert not set(caption_fields(task)) & fitness_fields(task), name


def _first_state(name: str) -> Any:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=0)
    state = task.state_builder(env).build()
    env.close()
    return task, state


def test_the_step_values_are_the_caption_s_quantities() -> None:
    task, state = _first_state("hopper")  # declared captions: one value per non-duration one
    values = step_values(task)(state)
    assert len(values) == sum(1 for c in task.captions if c.aggregate != "duration")
    assert values[0] == state.torso_height
    moved = state._replace(x_position=state.x_position + 3.0, x_velocity=2.0)
    assert step_values(task)(moved) == values  # the fitness moves, the message does not
    ant, state = _first_state("ant")  # default caption: scalar behaviour fields, contact bits
    values = step_values(ant)(state)
    scalars = [f for f in behaviour_fields(ant) if np.ndim(getattr(state, f.name)) == 0]
    assert len(values) == len(scalars) + 1 and values[-1] in (0.0, 1.0)
