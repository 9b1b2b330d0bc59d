"""Motif's captions (default and task-declared), pair prompts and the parsing of choices."""

from __future__ import annotations

import pytest

from rewardgen.errors import TaskError
from rewardgen.methods.motif import (
    EpisodeRecord,
    caption,
    combine,
    fitness_label,
    pair_messages,
    parse_choice,
)
from rewardgen.tasks.spec import load_task, parse_task


def _episode(task_name: str, steps: int = 20) -> tuple[EpisodeRecord, float]:
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
    fitness = float(states[-1].x_position - states[0].x_position)
    return EpisodeRecord(states, fitness, len(states) - 1, bool(ended)), float(states[0].dt)


def test_default_caption_summarises_progress_height_falls_contacts() -> None:
    ep, dt = _episode("ant")
    text = caption(load_task("ant"), ep, dt, cap=1000)
    lines = text.splitlines()
    assert lines[0] == f"- progress (forward distance travelled in the episode): {ep.fitness:.3g} m"
    assert lines[1].startswith(f"- duration: {ep.length} steps") and "of at most 1000" in lines[1]
    assert any(line.startswith("- torso height: mean ") for line in lines)
    assert any(line.startswith("- uprightness") for line in lines)
    assert any(line.startswith("- contact forces: in contact on ") for line in lines)


def test_task_declared_captions_replace_the_default() -> None:
    ep, dt = _episode("hopper", steps=10)
    lines = caption(load_task("hopper"), ep, dt).splitlines()
    assert lines[0] == f"- forward distance travelled: {ep.fitness:.3g} m"
    heights = [s.torso_height for s in ep.states]
    assert lines[2] == f"- lowest torso height (about 1.25 standing): {min(heights):.3g} m"
    assert lines[-1] == f"- time before falling or the time limit: {ep.length * dt:.3g} s"


def test_bad_captions_fail_when_the_task_loads() -> None:
    base = {"env_id": "Hopper-v5", "description": "hop", "fitness": {"expr": "1.0"},
            "state": [{"name": "dt", "source": "dt"}]}
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
    assert parse_choice('thinking... {"choice": 1}') == 0
    assert parse_choice('Episode 1 is bad.\n{"choice": 2}') == 1
    assert parse_choice('{"choice": "none"}') is None
    assert parse_choice("I cannot tell.") is None
    assert combine(0, 1) == 0 and combine(1, 0) == 1  # the same episode in both orders
    assert combine(0, 0) is None and combine(None, 1) is None  # position bias, no preference
    assert fitness_label(2.0, 1.0)["label"] == 0 and fitness_label(1.0, 1.0)["label"] is None


