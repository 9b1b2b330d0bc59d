"""The MPC planners on real MuJoCo models: the look-ahead in seconds, refinement iterations,
the gradient planner and the always-on regularisers."""

from __future__ import annotations

import numpy as np
import pytest

from rewardgen.config import MPCConfig
from rewardgen.errors import ConfigError
from rewardgen.tasks.spec import load_task
from rewardgen.worker.planner import Planner, horizon_steps, settings_from


def _planner(task_name: str, score, **settings) -> tuple[Planner, object]:
    env = load_task(task_name).make_env()
    env.reset(seed=0)
    base = env.unwrapped
    space = env.action_space
    planner = Planner(
        base.model,
        int(base.frame_skip),
        space.low,
        space.high,  # type: ignore[attr-defined]
        settings_from({"threads": 1, **settings}),
        score,
        seed=0,
    )
    return planner, env


@pytest.mark.parametrize(
    ("task_name", "steps"), [("hopper", 44), ("reacher", 18), ("half_cheetah", 7)]
)
def test_the_look_ahead_is_in_seconds_at_each_tasks_control_timestep(task_name, steps):
    """L2R plans 0.35 s ahead (task_barkour.xml:4); in steps that depends on the task."""
    seen: list[tuple[int, ...]] = []

    def score(states, actions):
        seen.append(actions.shape)
        return np.zeros(len(actions))

    planner, env = _planner(task_name, score, horizon=None, horizon_s=0.35, samples=3)
    base = env.unwrapped  # type: ignore[attr-defined]
    dt = float(base.model.opt.timestep) * int(base.frame_skip)
    assert planner.horizon == steps == round(0.35 / dt)
    planner.plan(base.data)
    assert seen[0][:2] == (3, steps)
    planner.close()
    env.close()  # type: ignore[attr-defined]
    assert horizon_steps(MPCConfig(horizon=8, horizon_s=0.35), dt) == 8  # steps, when set, win


def _target_objective(target: np.ndarray):
    """A simple objective the planner can see the optimum of: every action near ``target``."""

    def score(states, actions):
        return -np.square(actions - target).sum(axis=(1, 2))

    return score


@pytest.mark.parametrize("planner_name", ["sampling", "cem", "gradient"])
def test_more_iterations_reach_a_better_plan(planner_name):
    target = np.array([0.6, -0.4, 0.3])
    found = {}
    for iterations in (1, 6):
        planner, env = _planner(
            "hopper",
            _target_objective(target),
            horizon=10,
            samples=8,
            iterations=iterations,
            planner=planner_name,
            noise=0.3,
        )
        planner.plan(env.unwrapped.data)  # type: ignore[attr-defined]
        found[iterations] = planner.last_score
        planner.close()
        env.close()  # type: ignore[attr-defined]
    assert found[6] > found[1]
    if planner_name == "gradient":  # the quadratic's optimum is reached closely
        assert found[6] > -0.05 * (10 * np.square(target).sum())


def test_gradient_planner_follows_the_dynamics():
    """Finite differences through real rollouts: push the hopper's torso forward (qpos x)."""

    def forward(states, actions):
        return states[:, -1, 1]  # qpos[0] (the state vector starts with time)

    planner, env = _planner(
        "hopper", forward, horizon=20, samples=4, iterations=3, planner="gradient"
    )
    start = planner.evaluate(planner.nominal[None], planner.state_of(env.unwrapped.data))[0][0]  # type: ignore[attr-defined]
    planner.plan(env.unwrapped.data)  # type: ignore[attr-defined]
    assert planner.last_score > start
    planner.close()
    env.close()  # type: ignore[attr-defined]


def test_the_regularisers_are_on_under_any_reward_program():
    planner, env = _planner(
        "hopper",
        lambda s, a: np.zeros(len(a)),
        horizon=5,
        samples=2,
        posture_weight=0.01,
        action_rate_weight=2e-5,
    )
    assert planner.posture is not None and planner.posture[0].tolist() == [4, 5, 6]  # 3 hinges
    states = np.zeros((2, 5, planner.nstate))
    states[1, :, 4] = 0.5  # the thigh half a radian off qpos0
    actions = np.zeros((2, 5, 3))
    actions[1, 2] = 1.0  # one jump of the actions, up and back
    penalty = planner.penalty(states, actions)
    dt = planner.control_dt
    assert penalty[0] == pytest.approx(0.0)
    assert penalty[1] == pytest.approx(0.01 * 5 * 0.25 + 2e-5 * 2 * 3 / dt**2)
    planner.close()
    env.close()  # type: ignore[attr-defined]


def test_new_settings_are_checked_and_name_the_key():
    with pytest.raises(ConfigError, match="mpc.planner='ilqg' is not one of"):
        settings_from({"planner": "ilqg"})
    with pytest.raises(ConfigError, match=r"mpc.horizon_s=0 must be a number in"):
        settings_from({"horizon_s": 0})
    with pytest.raises(ConfigError, match="mpc.iterations=0 must be an integer"):
        settings_from({"iterations": 0})
    with pytest.raises(ConfigError, match="mpc.samples=1 leaves the gradient planner no step"):
        settings_from({"planner": "gradient", "samples": 1})
    with pytest.raises(ConfigError, match="mpc.posture_weight=-1"):
        settings_from({"posture_weight": -1})
    with pytest.raises(ConfigError, match="mpc.horizon_s=50.0 is 6250 control steps"):
        horizon_steps(settings_from({"horizon": None, "horizon_s": 50}), 0.008)
    with pytest.raises(ConfigError, match="mpc.horizon and mpc.horizon_s are both null"):
        settings_from({"horizon": None})
