"""OfflineProposer: valid programs on real states of every task, determinism, evolution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardgen.errors import ConfigError
from rewardgen.llm.base import ProposalContext
from rewardgen.llm.extract import extract_code
from rewardgen.llm.offline import OFFLINE_NAME, OfflineProposer, parse_weights
from rewardgen.runs.records import CandidateResult
from rewardgen.sandbox.program import check_reward_output, load_program
from rewardgen.sandbox.validate import check_source
from rewardgen.tasks.spec import load_task, task_names


def _real_states(task_name: str, steps: int = 5) -> list[tuple[object, np.ndarray, object]]:
    task = load_task(task_name)
    env = task.make_env()
    try:
        env.reset(seed=0)
        builder = task.state_builder(env)
        env.action_space.seed(0)
        prev = builder.build()
        out = []
        for _ in range(steps):
            action = env.action_space.sample()
            env.step(action)
            state = builder.build()
            out.append((state, action, prev))
            prev = state
        return out
    finally:
        env.close()


@pytest.mark.parametrize("task_name", task_names())
def test_programs_are_valid_on_real_states_of_every_task(task_name: str) -> None:
    task = load_task(task_name)
    if not task.seed_terms:
        pytest.skip(f"{task_name} declares no seed_terms")
    states = _real_states(task_name)
    proposer = OfflineProposer()
    history: list[tuple[str, CandidateResult]] = []
    for generation in range(2):
        ctx = ProposalContext(task=task, generation=generation, seed=3, history=history)
        for i, completion in enumerate(proposer.propose([], 4, ctx)):
            code = extract_code(completion.text)
            assert code is not None
            check_source(code, state_fields=task.state_names)  # the loop's own check
            program = load_program(code, state_fields=task.state_names)
            weights = parse_weights(code)
            assert weights is not None and len(weights) >= min(2, len(task.seed_terms))
            for state, action, prev in states:
                total, components = check_reward_output(program.fn(state, action, prev))
                assert set(components) == set(weights)
                assert total == pytest.approx(sum(components.values()))
            history.append((code, CandidateResult(status="ok", fitness=float(i))))


def test_deterministic_given_seed_and_generation() -> None:
    task = load_task("hopper")

    def texts(seed: int, generation: int) -> list[str]:
        ctx = ProposalContext(task=task, generation=generation, seed=seed)
        return [c.text for c in OfflineProposer().propose([], 4, ctx)]

    assert texts(0, 0) == texts(0, 0)
    assert texts(0, 0) != texts(1, 0)
    assert texts(0, 0) != texts(0, 1)
    assert len(set(texts(0, 0))) == 4


def test_later_generations_evolve_the_fittest_parents() -> None:
    task = load_task("hopper")
    proposer = OfflineProposer(elite=2)
    first = [
        extract_code(c.text) or "" for c in proposer.propose([], 6, ProposalContext(task, 0, 0))
    ]
    fitness = [1.0, 9.0, 3.0, 8.0, -1.0, 2.0]
    history = [
        (code, CandidateResult(status="ok", fitness=f))
        for code, f in zip(first, fitness, strict=True)
    ]
    history.append(
        (
            "def compute_reward(s, a, p):\n    return 0.0, {}\n",
            CandidateResult(status="ok", fitness=99.0),
        )
    )
    history.append((first[4], CandidateResult(status="failed", reason="boom")))
    ctx = ProposalContext(task=task, generation=1, seed=0, history=history)
    parents = proposer.parents(ctx)
    assert [f for f, _ in parents] == [9.0, 8.0]  # the LLM-written and failed ones are ignored
    children = proposer.propose([], 8, ctx)
    assert all("mutated from a parent with fitness" in c.text for c in children)
    parent_sets = [set(w) for _, w in parents]
    for c in children:
        weights = parse_weights(extract_code(c.text) or "")
        assert weights is not None
        assert all(0 < w < math.inf for w in weights.values())
        assert weights not in [w for _, w in parents]  # mutated, not copied
    overlap = [
        max(len(set(parse_weights(c.text) or {}) & s) for s in parent_sets) for c in children
    ]
    assert all(o >= 1 for o in overlap)


def test_identity_and_zero_usage() -> None:
    proposer = OfflineProposer()
    proposer.propose(
        [{"role": "user", "content": "ignored"}], 3, ProposalContext(load_task("hopper"), 0, 0)
    )
    assert proposer.name == OFFLINE_NAME and proposer.is_llm is False
    assert proposer.usage.to_dict()["total_tokens"] == 0 and proposer.usage.cost_usd == 0.0


def test_task_without_seed_terms_is_a_config_error() -> None:
    import dataclasses

    task = dataclasses.replace(load_task("hopper"), seed_terms={})
    with pytest.raises(ConfigError, match="no seed_terms.*add seed_terms to envs/hopper.yaml"):
        OfflineProposer().propose([], 1, ProposalContext(task, 0, 0))


def test_parse_weights_rejects_foreign_programs() -> None:
    assert parse_weights("def compute_reward(s, a, p):\n    return 0.0, {}\n") is None
    assert parse_weights('# rewardgen-offline: {"weights": {"a": -1}}') is None
    assert parse_weights('# rewardgen-offline: {"weights": {"a": 2}}') == {"a": 2.0}


@pytest.mark.parametrize("task_name", ["inverted_pendulum", "hopper_backflip"])
def test_progress_functions_for_method_progress_on_real_states(task_name: str) -> None:
    """method=progress offline: progress() from the state-only seed terms, in [0, 1]."""
    from rewardgen.rewards.progress import progress_terms

    task = load_task(task_name)
    states = _real_states(task_name)
    proposer = OfflineProposer()
    history: list[tuple[str, CandidateResult]] = []
    for generation in range(2):
        ctx = ProposalContext(task=task, generation=generation, seed=5, history=history,
                              entry="progress")
        for i, completion in enumerate(proposer.propose([], 3, ctx)):
            assert completion.text.startswith("Offline proposal (baseline, no language model)")
            code = extract_code(completion.text, "progress")
            assert code is not None and "def compute_reward" not in code
            check_source(code, "progress", task.state_names)
            fn = load_program(code, "progress", task.state_names).fn
            weights = parse_weights(code)
            assert weights and not any("action" in task.seed_terms[k] for k in weights)
            for state, _, _ in states:
                assert 0.0 <= progress_terms(fn(state))["progress"] <= 1.0
            history.append((code, CandidateResult(status="ok", fitness=float(i))))
    assert "mutated from a parent" in completion.text  # generation 1 evolved generation 0


def test_progress_needs_a_seed_term_of_the_state_alone() -> None:
    from dataclasses import replace

    from rewardgen.llm.offline import offline_terms

    task = load_task("inverted_pendulum")
    only_action = replace(task, seed_terms={"ctrl": "-float(np.sum(np.square(action)))"})
    assert offline_terms(only_action) == only_action.seed_terms
    with pytest.raises(ConfigError, match="method=progress with llm=offline needs a seed term"):
        offline_terms(only_action, "progress")
