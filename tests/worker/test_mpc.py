"""The MPC planner, its worker and the trusted replay, in-process on real MuJoCo (tiny settings)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from rewardgen.errors import ConfigError
from rewardgen.runs.actions import ACTIONS_FILE, ActionFileError, read_actions, write_actions
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from rewardgen.worker.mpc import derived_pass, run_mpc
from rewardgen.worker.mpc_replay import replay_actions
from rewardgen.worker.planner import controls_reason, interpolate, settings_from

REACH = """import numpy as np


def compute_reward(state, action, prev_state):
    distance = float(np.linalg.norm(state.fingertip_position[:2] - state.target_position[:2]))
    effort = -0.01 * float(np.sum(np.square(action)))
    return -distance + effort, {"distance": -distance, "effort": effort}
"""
TINY_MPC = {"horizon": 6, "samples": 6, "knots": 2, "episode_steps": 12, "threads": 1}


def test_settings_are_checked_and_name_the_key():
    assert settings_from({"samples": 4}).samples == 4
    with pytest.raises(ConfigError, match=r"mpc.samples=0 must be an integer in \[1, 1024\]"):
        settings_from({"samples": 0})
    with pytest.raises(ConfigError, match="mpc.spline='cubic'"):
        settings_from({"spline": "cubic"})
    with pytest.raises(ConfigError, match="unknown MPC settings"):
        settings_from({"horizn": 3})


def test_spline_holds_its_tail_when_shifted():
    knots, times = np.array([[0.0], [2.0]]), np.array([0.0, 4.0])
    shifted = interpolate(knots, times, times + 1.0, "linear")
    assert shifted[:, 0].tolist() == [0.5, 2.0]


def test_tasks_whose_actions_are_not_controls_are_named():
    env = load_task("reacher").make_env()
    assert controls_reason(env) is None
    env.close()
    env = load_task("fetch_reach").make_env()
    assert "not one of gymnasium's MuJoCo envs" in (controls_reason(env) or "")
    env.close()
    assert derived_pass(["qpos[0]", "xpos[torso]"]) == ["mj_kinematics"]


def test_action_file_is_read_as_hostile_input(tmp_path):
    low, high = -np.ones(2), np.ones(2)
    path = tmp_path / ACTIONS_FILE
    write_actions(path, np.zeros((3, 2)))
    assert read_actions(path, (2,), low, high, 3).shape == (3, 2)
    cases = {
        "shape": np.zeros((3, 3)), "steps;": np.zeros((4, 2)), "NaN": np.full((3, 2), np.nan),
        "bounds": np.full((3, 2), 2.0),
    }
    for what, bad in cases.items():
        write_actions(path, bad)
        with pytest.raises(ActionFileError, match=what):
            read_actions(path, (2,), low, high, 3)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ActionFileError, match="not a plain .npy"):
        read_actions(path, (2,), low, high, 3)
    path.unlink()
    os.symlink("/etc/passwd", path)
    with pytest.raises(ActionFileError, match="is a symbolic link"):
        read_actions(path, (2,), low, high, 3)


def test_mpc_worker_plans_and_the_replay_measures_it(tmp_path):
    job = CandidateJob(task="reacher", out_dir=str(tmp_path / "train"), reward_source=REACH,
                       reward_kind="mpc", seed=3, timesteps=12,
                       reward_options={"mpc": TINY_MPC, "video": False})
    reported = run_mpc(job)
    assert reported.status == "ok", reported.reason
    assert reported.episode_lengths == [12] and set(reported.component_stats) == {"distance",
                                                                                    "effort"}
    replay_job = dataclasses.replace(job, out_dir=str(tmp_path / "eval"), reward_source=None,
                                     checkpoint_dir=str(tmp_path / "train"))
    measured = replay_actions(replay_job)
    assert measured.ok and measured.fitness is not None
    assert measured.evaluations[0]["length"] == 12
    assert (tmp_path / "eval" / "trajectories.npz").is_file()
    # the planner beats doing nothing: the fingertip ends closer to the target
    write_actions(tmp_path / "train" / ACTIONS_FILE, np.zeros((12, 2)))
    idle = replay_actions(dataclasses.replace(replay_job, out_dir=str(tmp_path / "idle")))
    assert measured.fitness > idle.fitness  # type: ignore[operator]
    # a worker that writes actions outside the space gets a failed measurement, not a crash
    write_actions(tmp_path / "train" / ACTIONS_FILE, np.full((12, 2), 5.0))
    lied = replay_actions(dataclasses.replace(replay_job, out_dir=str(tmp_path / "lie")))
    assert lied.status == "failed" and "outside the action space" in lied.reason


def test_a_reward_that_breaks_in_planning_is_a_result(tmp_path):
    broken = "def compute_reward(state, action, prev_state):\n    return 1.0 / 0.0, {}\n"
    job = CandidateJob(task="reacher", out_dir=str(tmp_path), reward_source=broken,
                       reward_kind="mpc", reward_options={"mpc": TINY_MPC})
    result = run_mpc(job)
    assert result.status == "rejected" and "smoke test" in result.reason
    # a name that is no State field of the task is refused before any call
    unknown = "def compute_reward(state, action, prev_state):\n    return state.nope, {}\n"
    result = run_mpc(dataclasses.replace(job, reward_source=unknown))
    assert result.status == "rejected" and result.reason.startswith("static check")
    assert ".nope is not on the reward-program allowlist" in result.reason
