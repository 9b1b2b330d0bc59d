"""Manipulation tasks (MetaWorld, Fetch, Shadow Hand, Adroit): build, State, success, training.

These need the ``manipulation`` extra (metaworld, gymnasium-robotics; part of ``[all]``). Known
states are set directly in MuJoCo's data, so each task's State view, fitness and success check are
compared with the env's own success flag on states where the answer is known.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest

from rewardgen.cli.app import run
from rewardgen.cli.tasks import tasks_markdown
from rewardgen.errors import TaskError
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.fitness import FitnessSpec, FitnessTracker
from rewardgen.tasks.spec import TASK_DIRS_ENV, load_task, task_names, tasks_dir, use_task_dirs
from rewardgen.tasks.state import StateBuilder, StateField
from tests.helpers import tiny_config
from tests.train.helpers import train_and_evaluate_inline

FAMILIES = ("metaworld_", "fetch_", "shadow_", "adroit_")
MANIPULATION = [n for n in task_names() if n.startswith(FAMILIES)]
METAWORLD = [n for n in MANIPULATION if n.startswith("metaworld_")]
TINY_PPO = {
    "algo": "ppo",
    "n_envs": 1,
    "hyperparams": {"n_steps": 32, "batch_size": 32, "n_epochs": 1,
                    "policy_kwargs": {"net_arch": [8]}},
}


def _eval(expr: str, **names: Any) -> Any:
    return eval(expr, {"np": np, "math": math}, names)  # trusted: the shipped task files


def _env_success(info: dict[str, Any]) -> float:
    return float(info.get("success", info.get("is_success", 0.0)))


def _seed_term_program(name: str) -> str:
    """A reward program summing the task's seed terms, as the offline proposer builds them."""
    terms = load_task(name).seed_terms
    lines = ["import math", "import numpy as np", "", "",
             "def compute_reward(state, action, prev_state):", "    components = {"]
    lines += [f"        {term!r}: float({expr})," for term, expr in terms.items()]
    lines += ["    }", "    return float(sum(components.values())), components", ""]
    return "\n".join(lines)


def test_the_listed_tasks_are_all_there() -> None:
    expected = {
        *(f"metaworld_{t}" for t in ("reach", "push", "pick_place", "door_open", "drawer_open",
                                     "drawer_close", "button_press_topdown", "peg_insert_side",
                                     "window_open", "window_close")),
        *(f"fetch_{t}" for t in ("reach", "push", "pick_and_place", "slide")),
        *(f"shadow_{t}" for t in ("block", "egg", "pen")),
        *(f"adroit_{t}" for t in ("door", "hammer", "pen", "relocate")),
    }
    assert expected == set(MANIPULATION)
    for name in METAWORLD:
        task = load_task(name)
        assert task.env_id == "metaworld:Meta-World/MT1"
        assert task.env_kwargs["env_name"] == name.removeprefix("metaworld_").replace("_", "-") + "-v3"
        assert task.fitness.aggregate == "max" and "success" in task.fitness.expr


@pytest.mark.parametrize("name", MANIPULATION)
def test_task_builds_steps_and_its_success_check_agrees_with_the_env(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    assert obs.ndim == 1  # dict observations are flattened for MlpPolicy
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    prev = builder.build()
    tracker.reset(prev)
    for _ in range(8):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.all(np.isfinite(obs)) and math.isfinite(float(reward))
        state = builder.build()
        tracker.update(state, info)
        for field in state._fields:
            assert np.all(np.isfinite(getattr(state, field))), field
        for term, expr in task.seed_terms.items():
            value = _eval(expr, state=state, action=action, prev_state=prev)
            assert isinstance(value, (float, int)) and math.isfinite(value), term
        sparse = _eval(task.sparse_reward or "", state=state)
        assert sparse in (0.0, 1.0)
        if "success" in info or "is_success" in info:
            assert sparse == _env_success(info)
        prev = state
    assert math.isfinite(tracker.value) and isinstance(task.is_success(tracker.value), bool)
    env.close()


def _set(env: Any, joint: str, value: Any) -> None:
    u = env.unwrapped
    j = u.model.joint(joint)
    adr, width = int(j.qposadr[0]), {0: 7, 1: 4}.get(int(j.type[0]), 1)
    u.data.qpos[adr : adr + min(width, np.size(value))] = value
    mujoco.mj_forward(u.model, u.data)


def _one_step(task: Any, env: Any) -> tuple[Any, dict[str, Any], FitnessTracker]:
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    tracker.reset(builder.build())
    action = np.zeros(env.action_space.shape)
    _, _, _, _, info = env.step(action)
    state = builder.build()
    tracker.update(state, info)
    return state, info, tracker


def _place(name: str, env: Any, goal: np.ndarray) -> None:
    """Put a MetaWorld task's object where its success check holds."""
    u = env.unwrapped
    if name in ("metaworld_push", "metaworld_pick_place"):
        _set(env, "objjoint", goal)
    elif name == "metaworld_drawer_open":
        _set(env, "goal_slidey", -0.19)
    elif name == "metaworld_drawer_close":
        _set(env, "goal_slidey", 0.0)
    elif name == "metaworld_window_open":
        _set(env, "window_slide", 0.2)
    elif name == "metaworld_window_close":
        _set(env, "window_slide", 0.0)
    elif name == "metaworld_reach":
        u._target_pos = u.tcp_center.copy()  # the goal moves to the hand


@pytest.mark.parametrize(
    "name",
    ["metaworld_reach", "metaworld_push", "metaworld_pick_place", "metaworld_drawer_open",
     "metaworld_drawer_close", "metaworld_window_open", "metaworld_window_close"],
)
def test_metaworld_success_when_the_object_is_at_the_goal(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=1)
    state, info, tracker = _one_step(task, env)
    assert info["success"] == 0.0 and _eval(task.sparse_reward or "", state=state) == 0.0
    assert tracker.value == 0.0 and task.is_success(tracker.value) is False
    _place(name, env, task.state_builder(env).build().goal_position)
    state, info, tracker = _one_step(task, env)
    assert info["success"] == 1.0
    assert _eval(task.sparse_reward or "", state=state) == 1.0
    assert tracker.value == 1.0 and task.is_success(tracker.value) is True
    env.close()


def test_fetch_success_follows_the_goal_attribute_and_the_block() -> None:
    reach = load_task("fetch_reach")
    env = reach.make_env()
    env.reset(seed=0)
    env.unwrapped.goal = env.unwrapped.data.site("robot0:grip").xpos.copy()  # goal at the gripper
    state, info, tracker = _one_step(reach, env)
    assert np.allclose(state.goal_position, env.unwrapped.goal)  # read afresh at every build
    assert info["is_success"] == 1.0 and tracker.value == 1.0
    assert _eval(reach.sparse_reward or "", state=state) == 1.0
    push = load_task("fetch_push")
    env = push.make_env()
    env.reset(seed=0)
    state, info, _ = _one_step(push, env)
    assert info["is_success"] == 0.0 and _eval(push.sparse_reward or "", state=state) == 0.0
    qpos = env.unwrapped.data.joint("object0:joint").qpos.copy()
    _set(env, "object0:joint", np.concatenate([env.unwrapped.goal, qpos[3:]]))
    state, info, tracker = _one_step(push, env)
    assert np.linalg.norm(state.object_position - state.goal_position) < 0.01
    assert info["is_success"] == 1.0 and tracker.value == 1.0
    assert _eval(push.sparse_reward or "", state=state) == 1.0


def _quat_about_z(angle: float) -> np.ndarray:
    return np.array([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


@pytest.mark.parametrize("name", ["shadow_block", "shadow_pen"])
def test_shadow_hand_orientation_error(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    env.reset(seed=0)
    u = env.unwrapped
    builder = task.state_builder(env)
    error = task.fitness.compile()
    assert -error(builder.build()) > 0.1  # a random goal is not met at reset
    goal = u.goal[3:7].copy()
    _set(env, "object:joint", np.concatenate([u.data.joint("object:joint").qpos[:3], goal]))
    state = builder.build()
    assert abs(error(state)) < 1e-6 and _eval(task.sparse_reward or "", state=state) == 1.0
    assert u._is_success(u._get_achieved_goal(), u.goal) == 1.0  # the env agrees
    # a half turn about the object's own axis: the pen (symmetric about it) still matches
    turned = _quat_mul(goal, _quat_about_z(math.pi / 2))
    _set(env, "object:joint", np.concatenate([u.data.joint("object:joint").qpos[:3], turned]))
    state = builder.build()
    if name == "shadow_pen":
        assert abs(error(state)) < 1e-6 and _eval(task.sparse_reward or "", state=state) == 1.0
    else:
        assert -error(state) == pytest.approx(math.pi / 2)
        assert _eval(task.sparse_reward or "", state=state) == 0.0


def test_adroit_door_open_is_a_success() -> None:
    task = load_task("adroit_door")
    env = task.make_env()
    env.reset(seed=0)
    state, info, tracker = _one_step(task, env)
    assert not info["success"] and task.is_success(tracker.value) is False
    _set(env, "door_hinge", 1.45)
    state, info, tracker = _one_step(task, env)
    assert info["success"] and state.door_angle > 1.35
    assert task.is_success(tracker.value) is True
    assert _eval(task.sparse_reward or "", state=state) == 1.0


def _train(tmp_path: Path, name: str, **kw: Any) -> Any:
    job = CandidateJob(**{
        "task": name, "out_dir": str(tmp_path / name), "reward_source": _seed_term_program(name),
        "rl": TINY_PPO, "timesteps": 64, "eval_freq": 64, "eval_episodes": 1,
        "max_episode_steps": 16, "smoke_states": 4, "save_policy": False, "tensorboard": False,
        **kw,
    })
    return train_and_evaluate_inline(job)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_task_trains_end_to_end_on_its_seed_terms(tmp_path: Path, family: str) -> None:
    for name in [n for n in MANIPULATION if n.startswith(family)]:
        result = _train(tmp_path, name)
        assert result.status == "ok", (name, result.reason)
        assert result.fitness is not None and math.isfinite(result.fitness), name
        assert result.env_steps >= 64 and set(result.component_stats) == set(load_task(name).seed_terms)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["native", "sparse"])
def test_metaworld_baselines_train(tmp_path: Path, kind: str) -> None:
    result = _train(tmp_path, "metaworld_drawer_open", reward_source=None, reward_kind=kind)
    assert result.status == "ok" and result.fitness in (0.0, 1.0)


@pytest.mark.slow
def test_rewardgen_runs_metaworld_drawer_open_offline(tmp_path: Path) -> None:
    cfg = tiny_config(
        "task=metaworld_drawer_open", "llm=offline", "loop.generations=1",
        "train.timesteps=64", "train.eval_freq=64", "train.max_episode_steps=16",
        "++rl.hyperparams.n_steps=32", "final.timesteps=64", "final.baselines=[native]",
    )
    summary = run(cfg, tmp_path / "run", interactive=False)
    assert summary["statuses"] == {"ok": 2}, summary
    assert summary["best"]["fitness"] in (0.0, 1.0)  # a success rate
    assert (tmp_path / "run" / "best" / "reward.py").is_file()
    assert summary["final"] is not None


@pytest.fixture
def task_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TASK_DIRS_ENV, "")  # restored (removed) after the test


def test_a_task_from_a_folder_given_by_config(tmp_path: Path, task_dir_env: None) -> None:
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    shutil.copy(tasks_dir() / "inverted_pendulum.yaml", folder / "my_balance.yaml")
    with pytest.raises(TaskError, match="unknown task 'my_balance'"):
        load_task("my_balance")
    cfg = tiny_config("task=my_balance", f"task_dirs=[{folder}]", "llm=offline",
                      "loop.generations=1", "final.enabled=false")
    summary = run(cfg, tmp_path / "run", interactive=False)  # workers train in subprocesses
    assert summary["statuses"] == {"ok": 2}, summary
    assert load_task("my_balance").path == folder / "my_balance.yaml"
    assert "my_balance" in task_names()


def test_task_dirs_must_exist(tmp_path: Path, task_dir_env: None) -> None:
    with pytest.raises(TaskError, match="task_dirs: .*nowhere.* not found"):
        use_task_dirs([tmp_path / "nowhere"])


def test_env_sources_are_checked(tmp_path: Path) -> None:
    task = load_task("fetch_reach")
    env = task.make_env()
    env.reset(seed=0)
    for source, match in [
        ("env.__class__", "no dunder names"),
        ("env.goal(1)", "env.<attribute>"),
        ("env.no_such_thing", "has no attribute 'no_such_thing'"),
        ("env.goal[7]", "bad index"),
        ("env.goal[a]", "take numbers or slices"),
        ("env.spec", "is not numeric"),
    ]:
        with pytest.raises(TaskError, match=match):
            StateBuilder([StateField("x", source)], env)
    builder = StateBuilder([StateField("goal_z", "env.goal[2]"),
                            StateField("grip", "norm(site_xpos[robot0:grip])")], env)
    state = builder.build()
    assert state.goal_z == env.unwrapped.goal[2]
    assert state.grip == pytest.approx(np.linalg.norm(env.unwrapped.data.site("robot0:grip").xpos))


def test_fitness_reads_the_step_info() -> None:
    tracker = FitnessTracker(FitnessSpec("float(info.get('success', 0.0))", "max"), 0.01)
    tracker.reset(None)
    for flag in (0.0, 1.0, 0.0):
        tracker.update(None, {"success": flag})
    assert tracker.value == 1.0
    tracker.reset(None)
    tracker.update(None)  # no info (a rendered rollout): the expression sees an empty mapping
    assert tracker.value == 0.0


def test_a_missing_env_module_names_the_extra(tmp_path: Path) -> None:
    raw = (tasks_dir() / "metaworld_reach.yaml").read_text()
    path = tmp_path / "gone.yaml"
    path.write_text(raw.replace("metaworld:Meta-World/MT1", "no_such_module_xyz:Meta-World/MT1"))
    with pytest.raises(TaskError, match="install the package 'no_such_module_xyz'"):
        load_task(str(path)).make_env()


def test_docs_hold_the_generated_catalogue() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "tasks.md").read_text()
    assert tasks_markdown(task_names()) in docs, "regenerate: rewardgen-tasks --markdown"
