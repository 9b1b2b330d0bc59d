"""Every task rl=brax_ppo offers passes the MJX vs C-MuJoCo parity check (tiny, on CPU)."""

from __future__ import annotations

import pytest

from rewardgen.tasks.spec import load_task
from rewardgen.train.brax_config import OFFERED_ENV_IDS
from rewardgen.train.brax_parity import TOLERANCE, check_parity

OFFERED_TASKS = {"Hopper-v5": "hopper", "Walker2d-v5": "walker2d", "HalfCheetah-v5": "half_cheetah"}


def test_every_offered_env_has_a_parity_task() -> None:
    assert set(OFFERED_TASKS) == set(OFFERED_ENV_IDS)


@pytest.mark.slow
@pytest.mark.mjx_compile
@pytest.mark.parametrize("env_id", OFFERED_ENV_IDS)
def test_the_same_policy_returns_the_same_in_mjx_and_c_mujoco(env_id: str) -> None:
    result = check_parity(load_task(OFFERED_TASKS[env_id]), seeds=(0, 1), steps=30)
    assert result.ok, result.line()
    assert max(result.gaps) <= TOLERANCE
    # the two sides started from the same state and ran the same policy: not trivially zero
    assert any(abs(r) > 1e-3 for r in result.c_returns)
