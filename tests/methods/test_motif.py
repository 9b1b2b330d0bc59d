"""Motif's captions (default and task-declared), pair prompts and the parsing of choices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rewardgen.errors import ConfigError, TaskError
from rewardgen.methods.motif import (
    TIE,
    EpisodeRecord,
    caption,
    check_motif_run,
    combine,
    env_coefficient,
    fitness_label,
    pair_messages,
    parse_choice,
)
from rewardgen.tasks.spec import load_task, parse_task


def _episode(task_name: str, steps: int = 20, fitness: Any = None) -> tuple[EpisodeRecord, float]:
    task = load_task(task_name)
    env = task.make_env()
    env.action_space.seed(0)
    env.reset(seed=0)
    builder = task.state_builder(env)
    states, ended = [builder.build()], False
    for _ in range(steps):
        _, _, ended, truncated, _ = env.step(env.action_space.sample())
        states.append(builder.build())
        if ended or truncated:
            break
    env.close()
    score = (
        float(states[-1].x_position - states[0].x_position)
        if fitness is None
        else float(fitness(states))
    )
    return EpisodeRecord(states, score, len(states) - 1, bool(ended)), float(states[0].dt)


def test_default_caption_describes_behaviour_never_the_fitness() -> None:
    ep, dt = _episode("ant")
    task = load_task("ant")
    text = caption(task, ep, dt, cap=1000)
    lines = text.splitlines()
    assert lines[0].startswith(f"- duration: {ep.length} steps") and "of at most 1000" in lines[0]
    assert any(line.startswith("- torso height: mean ") for line in lines)
    assert any(line.startswith("- upright: mean ") for line in lines)
    assert any(line.startswith("- contact forces: in contact on ") for line in lines)
    assert "progress" not in text and "x position" not in text and "x velocity" not in text
    # the same behaviour with another fitness: the same caption (it cannot show the fitness)
    shifted = [
        s._replace(x_position=s.x_position + 0.5 * k, x_velocity=s.x_velocity + 7.0)
        for k, s in enumerate(ep.states)
    ]
    other = EpisodeRecord(shifted, ep.fitness + 10.0, ep.length, ep.ended_early)
    assert caption(task, other, dt, cap=1000) == text


def test_a_duration_fitness_leaves_the_duration_out_of_the_default_caption() -> None:
    task = load_task("inverted_pendulum")
    ep, dt = _episode("inverted_pendulum", steps=30, fitness=lambda s: 0.0)
    text = caption(task, ep, dt, cap=1000)
    assert "duration" not in text and "steps" not in text and "time limit" not in text
    assert text.splitlines()[0].startswith("- cart position: mean ")


def test_task_declared_captions_replace_the_default() -> None:
    ep, dt = _episode("hopper", steps=10)
    task = load_task("hopper")
    lines = caption(task, ep, dt).splitlines()
    heights = [s.torso_height for s in ep.states]
    assert lines[0] == f"- mean torso height (about 1.25 standing): {np.mean(heights):.3g} m"
    assert lines[1] == f"- lowest torso height: {min(heights):.3g} m"
    assert lines[-1] == f"- time before falling or the time limit: {ep.length * dt:.3g} s"
    assert "forward" not in caption(task, ep, dt)


def test_bad_captions_fail_when_the_task_loads() -> None:
    base = {
        "env_id": "Hopper-v5",
        "description": "hop",
        "fitness": {"expr": "1.0"},
        "state": [{"name": "dt", "source": "dt"}],
    }
    with pytest.raises(TaskError, match="caption #0 needs 'label' and 'expr'"):
        parse_task({**base, "captions": [{"expr": "1.0"}]}, "t")
    with pytest.raises(TaskError, match="caption 'x': fitness aggregate 'median'"):
        parse_task({**base, "captions": [{"label": "x", "expr": "1", "aggregate": "median"}]}, "t")
    with pytest.raises(TaskError, match="unknown keys \\['colour'\\]"):
        parse_task({**base, "captions": [{"label": "x", "expr": "1", "colour": 1}]}, "t")


def test_pair_prompt_and_choices() -> None:
    messages = pair_messages(load_task("ant"), "- A", "- B")
    user = messages[1]["content"]
    assert user.index("Episode 1:\n- A") < user.index("Episode 2:\n- B")
    assert "walk forward" in user and messages[0]["role"] == "system"
    assert parse_choice('thinking... {"choice": 1}') == 0.0
    assert parse_choice('Episode 1 is bad.\n{"choice": 2}') == 1.0
    assert parse_choice('{"choice": "none"}') == TIE == 0.5  # a tie: a label, trained as 0.5
    assert parse_choice("I cannot tell.") is None  # unreadable: asked again, then dropped


def test_both_orders_average_the_two_answers() -> None:
    assert combine(0.0, 1.0) == 0.0 and combine(1.0, 0.0) == 1.0  # agreeing answers
    assert combine(0.0, 0.0) == TIE  # a position bias contradicts itself: a tie
    assert combine(TIE, 1.0) == 0.25 and combine(None, 1.0) == 0.0 and combine(None, None) is None


def test_the_offline_labeller_sorts_by_fitness_with_ties() -> None:
    assert fitness_label(2.0, 1.0)["label"] == 0.0 and fitness_label(1.0, 2.0)["label"] == 1.0
    assert fitness_label(1.0, 1.0)["label"] == TIE


def test_run_level_settings_motif_cannot_honour_are_refused() -> None:
    from tests.helpers import tiny_config

    ok = tiny_config("method=motif", "loop.samples=1", "loop.generations=1", "task=hopper")
    check_motif_run(ok, load_task("hopper"))
    for override, match in [
        ("loop.samples=4", r"loop.samples=4 does not apply to method=motif"),
        ("loop.generations=3", r"loop.generations=3 does not apply"),
    ]:
        cfg = tiny_config("method=motif", "loop.samples=1", "loop.generations=1", override)
        with pytest.raises(ConfigError, match=match):
            check_motif_run(cfg, load_task("hopper"))
    bare = parse_task(
        {
            "env_id": "Hopper-v5",
            "description": "hop",
            "fitness": {"expr": "state.x_position"},
            "state": [{"name": "x_position", "source": "qpos[rootx]"}],
        },
        "bare",
    )
    with pytest.raises(
        ConfigError, match="has none; add sparse_reward to its YAML or set method.env_reward=native"
    ):
        check_motif_run(ok, bare)
    native = tiny_config(
        "method=motif", "loop.samples=1", "loop.generations=1", "method.env_reward=native"
    )
    with pytest.raises(ConfigError, match="every State field is a quantity of the fitness"):
        check_motif_run(native, bare)
    assert env_coefficient(ok.method) == 1.0 and env_coefficient(native.method) == 0.01
