"""The novel-behaviour tasks: they load, run, and their success checks tell success from failure."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest

from rewardgen.rewards.wrappers import RewardProgramWrapper
from rewardgen.tasks.fitness import FitnessTracker
from rewardgen.tasks.spec import load_task

NOVEL = ["hopper_backflip", "half_cheetah_front_leg_stand", "ant_circle", "ant_backwards",
         "humanoid_raise_arms", "walker2d_one_leg_hop"]


@pytest.mark.parametrize("name", NOVEL)
def test_task_runs_with_random_actions_and_does_not_succeed_by_chance(name):
    task = load_task(name)
    assert "novel" in task.tags and task.sparse_reward and task.success_threshold is not None
    env = RewardProgramWrapper(task.make_env(max_episode_steps=30), task)
    env.reset(seed=0)
    env.action_space.seed(0)
    while True:
        _, _, term, trunc, info = env.step(env.action_space.sample())
        if term or trunc:
            break
    env.close()
    episode = info["rewardgen"]["episode"]
    assert math.isfinite(episode["fitness"]) and episode["success"] is False


def _score(name: str, states: list) -> float:
    task = load_task(name)
    tracker = FitnessTracker(task.fitness, dt=0.05)
    tracker.reset(states[0])
    for state in states[1:]:
        tracker.update(state)
    return tracker.value


class _S(NamedTuple):
    x_position: float = 0.0
    y_position: float = 0.0
    x_velocity: float = 0.0
    y_velocity: float = 0.0
    torso_angle: float = 0.0
    torso_height: float = 1.2
    dt: float = 0.05
    back_foot_position: np.ndarray = np.zeros(3)
    front_foot_position: np.ndarray = np.zeros(3)
    left_foot_position: np.ndarray = np.zeros(3)
    right_arm_position: np.ndarray = np.zeros(3)
    left_arm_position: np.ndarray = np.zeros(3)


def test_success_checks_on_scripted_states():
    flip = [_S(torso_angle=-a) for a in np.linspace(0, 2.1 * math.pi, 20)]
    assert _score("hopper_backflip", flip) >= 1.0
    assert _score("hopper_backflip", [_S(torso_angle=a) for a in np.linspace(0, 7, 20)]) < 0.01
    stand = [_S(back_foot_position=np.array([0, 0, 0.8]), front_foot_position=np.array([0, 0, 0.1]))] * 5
    assert _score("half_cheetah_front_leg_stand", stand) == 1.0
    # one lap around (0, 2) at 1 rad/s, sampled every dt
    lap = [_S(x_position=2 * math.sin(t), y_position=2 - 2 * math.cos(t),
              x_velocity=2 * math.cos(t), y_velocity=2 * math.sin(t)) for t in np.arange(0, 6.4, 0.05)]
    assert _score("ant_circle", lap) == pytest.approx(6.4, abs=0.1)
    assert _score("ant_backwards", [_S(x_position=0.0), _S(x_position=-6.0)]) == 6.0
    up = [_S(torso_height=1.3, right_arm_position=np.array([0, 0, 1.7]),
             left_arm_position=np.array([0, 0, 1.7]))] * 3
    assert _score("humanoid_raise_arms", up) == 1.0
    hop = [_S(x_velocity=1.0, left_foot_position=np.array([0, 0, 0.3]))] * 50
    assert _score("walker2d_one_leg_hop", hop) == pytest.approx(49 * 0.05)  # steps after the first
    assert _score("walker2d_one_leg_hop", [_S(x_velocity=1.0)] * 50) == 0.0
