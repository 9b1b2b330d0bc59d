"""The progress reward: count bonus over progress cells (one table per vector env), the two
ablations, checks, real training."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.rewards.progress import (
    CELL_KEY,
    ProgressReward,
    progress_reward_for,
    progress_terms,
    smoke_view,
)
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from rewardgen.train.sb3 import make_vec_env
from rewardgen.worker.train import run_candidate
from tests.helpers import tiny_config
from tests.train.helpers import train_and_evaluate_inline


def _sparse(state, action, prev_state):
    return float(state.x > 0.9), {"sparse": float(state.x > 0.9)}


class _State(NamedTuple):  # a State view is a NamedTuple of floats and arrays
    x: float
    y: float


def _state(x: float, y: float = 0.0) -> _State:
    return _State(x, y)


def test_count_bonus_shrinks_with_visits_and_adds_the_sparse_reward():
    reward = ProgressReward(lambda s: s.x, _sparse, bins=4, beta=2.0)
    totals = [reward(_state(0.3), None, None)[0] for _ in range(4)]
    assert totals == pytest.approx([2.0, 2.0 / math.sqrt(2), 2.0 / math.sqrt(3), 1.0])
    total, parts = reward(_state(0.95), None, None)  # new cell, and the sparse reward pays
    assert total == pytest.approx(3.0)
    assert parts == {"progress": 0.95, "sparse": 1.0, "bonus": 2.0}
    assert reward.cell({"progress": 1.0}) == (3,)  # 1.0 falls in the top cell


def test_named_terms_make_tuple_cells():
    reward = ProgressReward(lambda s: {"b": s.y, "a": s.x}, _sparse, bins=10)
    _, parts = reward(_state(0.15, 0.55), None, None)
    assert reward.counts == {(1, 5): 1}
    assert parts["progress/a"] == 0.15 and parts["progress/b"] == 0.55


def test_hash_ablation_counts_raw_states_and_dense_ablation_uses_progress():
    hashed = ProgressReward(lambda s: 0.5, _sparse, bonus="hash", hash_resolution=0.5)
    hashed(_state(0.1), None, None)
    hashed(_state(0.2), None, None)  # same grid cell of the raw state
    hashed(_state(0.7), None, None)
    assert sorted(hashed.counts.values()) == [1, 2]
    dense = ProgressReward(lambda s: s.x, _sparse, bonus="dense", beta=0.5)
    total, parts = dense(_state(0.4), None, None)
    assert total == pytest.approx(0.2) and parts == {"sparse": 0.0, "progress": 0.2}


def test_shared_counts_report_the_cell_and_leave_the_bonus_to_the_vector_env():
    reward = ProgressReward(lambda s: s.x, _sparse, bins=4, shared_counts=True)
    total, parts = reward(_state(0.3), None, None)
    again, _ = reward(_state(0.3), None, None)
    assert total == again == 0.0 and "bonus" not in parts and reward.counts == {}
    assert parts[CELL_KEY] == reward(_state(0.4), None, None)[1][CELL_KEY]  # the same cell
    assert parts[CELL_KEY] != reward(_state(0.6), None, None)[1][CELL_KEY]
    assert parts[CELL_KEY] == float(int(parts[CELL_KEY])) < 2**48  # exact in a float


ONE_CELL = "def progress(state):\n    return 0.5\n"  # every state in the same cell


@pytest.mark.parametrize("vec_env", ["dummy", "subproc"])
def test_two_envs_of_one_vector_env_share_visit_counts(tmp_path, vec_env):
    job = CandidateJob(task="inverted_pendulum", out_dir=str(tmp_path), reward_source=ONE_CELL,
                       reward_kind="progress", reward_options={"bins": 4, "beta": 1.0},
                       max_episode_steps=64)
    venv = make_vec_env(load_task("inverted_pendulum"), job, n_envs=2, seed=0, vec_env=vec_env)
    try:
        venv.reset()
        zero = np.zeros((2, 1), dtype=np.float32)
        _, rewards, _, infos = venv.step(zero)
        # env 0 visits the cell first; env 1 visits it second and gets the smaller bonus
        bonuses = [info[INFO_KEY]["components"]["bonus"] for info in infos]
        assert bonuses == pytest.approx([1.0, 1.0 / math.sqrt(2)])
        assert rewards == pytest.approx([1.0 + 1.0, 1.0 + 1.0 / math.sqrt(2)])  # sparse + bonus
        assert all(CELL_KEY not in info[INFO_KEY]["components"] for info in infos)
        paid = np.array(bonuses)
        for step in range(2, 200):
            _, rewards, dones, infos = venv.step(zero)
            bonuses = [info[INFO_KEY]["components"]["bonus"] for info in infos]
            assert bonuses == pytest.approx([1 / math.sqrt(2 * step - 1), 1 / math.sqrt(2 * step)])
            paid += bonuses
            if dones.any():
                k = int(np.flatnonzero(dones)[0])
                episode = infos[k][INFO_KEY]["episode"]
                assert episode["components"]["bonus"] == pytest.approx(paid[k])
                assert episode["return"] == pytest.approx(paid[k] + episode["components"]["sparse"])
                assert CELL_KEY not in episode["components"]
                break
        else:
            pytest.fail("no episode ended")
    finally:
        venv.close()


def test_bad_progress_values_and_options_are_named():
    with pytest.raises(RewardCodeError, match="progress term 'progress' is 1.5, outside"):
        progress_terms(1.5)
    with pytest.raises(RewardCodeError, match="term 'a' must be a float in"):
        progress_terms({"a": "high"})
    with pytest.raises(RewardCodeError, match="empty dict"):
        progress_terms({})
    with pytest.raises(RewardCodeError, match="progress raised ZeroDivisionError"):
        ProgressReward(lambda s: 1 / 0, _sparse)(_state(0.1), None, None)
    with pytest.raises(RewardCodeError, match="term 'b' is -0.1"):
        smoke_view(lambda s: {"a": 0.5, "b": -0.1})(None)
    assert smoke_view(lambda s: {"a": 0.2, "b": 0.4})(None) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="method.bonus='nope' is not one of"):
        ProgressReward(lambda s: 0.0, _sparse, bonus="nope")
    with pytest.raises(ConfigError, match="unknown progress options"):
        progress_reward_for(load_task("hopper"), lambda s: 0.0, _sparse, {"bin": 3})


def test_task_without_sparse_reward_is_a_config_error_naming_it(tmp_path):
    task = load_task("hopper")
    bare = type(task)(**{**task.__dict__, "sparse_reward": None})
    with pytest.raises(ConfigError, match="task 'hopper' has no sparse_reward"):
        progress_reward_for(bare, lambda s: 0.0, _sparse, {})


PROGRESS_CODE = """import numpy as np


def progress(state):
    return {"upright": float(np.clip(1.0 - abs(state.pole_angle) / 0.2, 0.0, 1.0)),
            "centred": float(np.clip(1.0 - abs(state.cart_position), 0.0, 1.0))}
"""


def _job(tmp_path, source: str) -> CandidateJob:
    from rewardgen.jobs import candidate_job

    cfg = tiny_config("method=progress", "method.bins=5")
    return candidate_job(cfg, str(tmp_path / "cand"), source)


def test_worker_trains_on_named_progress_terms(tmp_path):
    job = _job(tmp_path, PROGRESS_CODE)
    assert job.reward_kind == "progress" and job.reward_options["bins"] == 5
    result = train_and_evaluate_inline(job)
    assert result.status == "ok", result.reason
    assert {"bonus", "sparse", "progress/upright", "progress/centred"} <= set(result.component_stats)
    assert result.fitness is not None


def test_worker_rejects_progress_outside_the_unit_interval(tmp_path):
    result = run_candidate(_job(tmp_path, "def progress(state):\n    return 2.0\n"))
    assert result.status == "rejected"
    assert "progress is 2.0, outside [0, 1]" in result.reason
