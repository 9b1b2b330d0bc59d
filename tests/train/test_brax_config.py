"""rl=brax_ppo's config: which tasks it offers, one-line refusals, keyword arguments."""

from __future__ import annotations

import pytest

from rewardgen.cli.check import validate
from rewardgen.errors import ConfigError
from rewardgen.tasks.spec import load_task
from rewardgen.train.brax_config import OFFERED_ENV_IDS, refusal, steps_per_update, train_kwargs
from tests.helpers import compose_config


@pytest.mark.parametrize("name", ["hopper", "walker2d", "half_cheetah", "hopper_backflip"])
def test_offered_tasks_are_not_refused(name: str) -> None:
    assert load_task(name).env_id in OFFERED_ENV_IDS
    assert refusal(load_task(name)) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("humanoid", "PGS solver, which MJX does not implement"),
        ("humanoid_standup", "PGS solver"),
        ("ant", "only Hopper-v5, Walker2d-v5, HalfCheetah-v5 are ported"),
        ("fetch_reach", "only Hopper-v5"),
    ],
)
def test_other_tasks_are_refused_in_one_line(name: str, why: str) -> None:
    reason = refusal(load_task(name))
    assert reason is not None and why in reason and "\n" not in reason
    assert reason.startswith(f"task {name!r}")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["task=humanoid"], r"^task 'humanoid' \(Humanoid-v5\) does not run on rl=brax_ppo: .*PGS"),
        (["task=hopper", "method=l2r"], r"method=l2r trains an MPC controller, which rl=brax_ppo"),
        (["task=hopper", "+rl.hyperparams.n_steps=5"], r"\['n_steps'\] are not Brax PPO's"),
        (["task=hopper", "+rl.hyperparams.num_envs=3"], r"must be a multiple of num_envs \(3\)"),
    ],
)
def test_the_pre_run_check_refuses_before_anything_is_spent(
    overrides: list[str], match: str
) -> None:
    cfg = compose_config(["rl=brax_ppo", "llm=offline", *overrides])
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_a_hopper_config_passes_the_check() -> None:
    validate(compose_config(["rl=brax_ppo", "task=hopper", "llm=offline"]))


def test_per_task_values_and_network_sizes_are_split() -> None:
    rl = {
        "n_envs": 8,
        "common": {"batch_size": 4, "num_minibatches": 2},
        "per_task": {"hopper": {"unroll_length": 5}},
        "hyperparams": {"policy_hidden_layer_sizes": [8, 8]},
    }
    kwargs, network = train_kwargs(rl, "hopper")
    assert kwargs == {"batch_size": 4, "num_minibatches": 2, "unroll_length": 5, "num_envs": 8}
    assert network == {"policy_hidden_layer_sizes": (8, 8)}
    assert steps_per_update(kwargs) == 40
