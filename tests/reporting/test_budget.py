"""The run's budget, said before it is spent: search and final env steps, rounding to rollouts."""

from __future__ import annotations

from rewardgen.jobs import method_reward
from rewardgen.reporting.budget import budget_lines, rounded_up, run_budget
from rewardgen.tasks.spec import load_task
from tests.helpers import compose_config, tiny_config


def test_bare_rewardgen_says_its_search_and_final_budget():
    """Issue 26: bare ``rewardgen`` started 5 x 16 x 100k search steps plus the final phase's
    and said neither. Hopper's PPO rollout is 512 steps (rl-zoo3's n_steps, 1 env)."""
    cfg = compose_config([])
    budget = run_budget(cfg, load_task(cfg.task))
    assert (budget.generations, budget.samples, budget.final_seeds) == (5, 16, 5)
    assert budget.per_candidate == 100_352 and budget.per_final == 300_032
    assert budget.final_rewards == 3  # generated, native, sparse
    assert budget.total_steps == 5 * 16 * 100_352 + 3 * 5 * 300_032
    first, *notes = budget_lines(budget)
    assert first == (
        "budget: search 5 generations x 16 candidates x 100,352 = 8,028,160 env "
        "steps; final 3 rewards x 5 seeds x 300,032 = 4,500,480; total 12,528,640"
    )
    assert notes == [
        "budget: train.timesteps=100,000 is rounded up to 100,352 (whole rollouts of n_steps * "
        "n_envs = 512 steps)",
        "budget: final.timesteps=300,000 is rounded up to 300,032 (whole rollouts of n_steps * "
        "n_envs = 512 steps)",
    ]


def test_rounding_schedules_and_mpc():
    cfg = tiny_config("train.timesteps=3000", "final.enabled=false")
    budget = run_budget(cfg, load_task(cfg.task))
    assert budget.per_candidate == 3008 and budget.final_steps == 0
    assert budget_lines(budget)[1] == (
        "budget: train.timesteps=3,000 is rounded up to 3,008 "
        "(whole rollouts of n_steps * n_envs = 64 steps)"
    )
    halving = tiny_config("loop.schedule=halving")
    assert (
        "= at most 1,024 env steps"
        in budget_lines(run_budget(halving, load_task("inverted_pendulum")))[0]
    )
    l2r = tiny_config("method=l2r")
    kind, options = method_reward(l2r)
    assert kind == "mpc"
    line = budget_lines(run_budget(l2r, load_task(l2r.task), options["mpc"]["episode_steps"]))[0]
    assert "x 200 = 800 MPC control steps; final 1 reward x 1 seed x 200 = 200" in line
    sac = tiny_config("rl=sac", "train.timesteps=3000")
    assert run_budget(sac, load_task(sac.task)).rounded == []  # off-policy: stops at its budget
    assert rounded_up(3000, 64) == 3008 and rounded_up(3000, None) == 3000
