"""Eureka's prompts: bounded conversation, the reward to improve (loop.context), reflection,
failures, human feedback, parsing; the paper's defaults."""

from __future__ import annotations

import pytest

from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.methods.eureka import best_record
from rewardgen.prompts import estimate_tokens
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord
from rewardgen.tasks.spec import load_task, task_names


@pytest.fixture(scope="module")
def method():
    task = load_task("hopper")
    return make_method(MethodConfig(), task, TaskPromptInfo.from_task(task))


def _ok(gen: int, idx: int, fitness: float) -> CandidateRecord:
    result = CandidateResult(status="ok", fitness=fitness, component_stats={"forward": [1.0, 2.0]},
                             evaluations=[{"fitness": fitness, "length": 10}])
    src = f"def compute_reward(state, action, prev_state):\n    return {fitness}, {{}}\n"
    return CandidateRecord(gen, idx, src, result, f"answer {gen}/{idx}\n```python\n{src}```")


def _failed(gen: int, idx: int, reason: str) -> CandidateRecord:
    return CandidateRecord(gen, idx, None, CandidateResult(status="failed", reason=reason))


def test_first_prompt_shows_state_view_and_task(method):
    messages = method.messages([], None, eval_freq=1000)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "class State(NamedTuple):" in user and "torso_height: float" in user
    assert method.task.description in user
    assert "compute_reward(state: State, action: np.ndarray, prev_state: State)" in messages[0]["content"]


def test_feedback_prompt_is_bounded_and_carries_best_code_and_failures(method):
    history = [[_ok(0, 0, 1.0), _failed(0, 1, "compute_reward raised KeyError")],
               [_ok(1, 0, 0.5), _ok(1, 1, 3.0), _failed(1, 2, "smoke test: total reward is not finite")]]
    messages = method.messages(history, "hop higher please", eval_freq=1000)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "answer 1/1" in messages[2]["content"]  # the best so far, fitness 3.0
    feedback = messages[3]["content"]
    assert "forward: [1.00, 2.00]" in feedback
    assert "smoke test: total reward is not finite" in feedback  # last generation's failures
    assert "KeyError" not in feedback  # older generations' failures are not repeated
    assert "hop higher please" in feedback


def test_all_failed_generation_gives_error_summary_not_repetition(method):
    history = [[_failed(0, 0, "static check: import of 'os' is not allowed"),
                _failed(0, 1, "no code defining compute_reward() found in the answer")]]
    messages = method.messages(history, None, eval_freq=1000)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "import of 'os' is not allowed" in messages[1]["content"]
    assert "do not repeat these mistakes" in messages[1]["content"]


def test_parse_answers(method):
    good = method.parse("Here:\n```python\ndef compute_reward(state, action, prev_state):\n    return 1.0, {}\n```")
    assert good.source is not None and "def compute_reward" in good.source
    assert method.parse("").reason == "empty answer"
    assert "no code defining compute_reward" in method.parse("I cannot help with that.").reason


@pytest.mark.parametrize("name", task_names())
def test_prompts_render_for_every_task_within_budget(name):
    task = load_task(name)
    method = make_method(MethodConfig(), task, TaskPromptInfo.from_task(task))
    history = [[_ok(0, 0, 1.0), _failed(0, 1, "x" * 10_000)]]
    for messages in (method.messages([], None, 100), method.messages(history, "h" * 20_000, 100)):
        total = sum(estimate_tokens(m["content"]) for m in messages)
        assert total < 8_000, f"{name}: prompt of ~{total} tokens"


def test_unknown_method_is_a_config_error():
    task = load_task("hopper")
    with pytest.raises(ConfigError, match="unknown method 'nope'; valid methods: eureka"):
        make_method(MethodConfig(name="nope"), task, TaskPromptInfo.from_task(task))


def test_context_iteration_improves_the_latest_generation_all_time_the_best_so_far(method):
    """loop.context: Eureka's next prompt holds the best of the latest generation that trained a
    candidate (the official code repeats an all-failed iteration from the same messages);
    all_time holds the best so far."""
    history = [[_ok(0, 0, 5.0), _ok(0, 1, 1.0)],
               [_ok(1, 0, 2.0), _ok(1, 1, 3.0)],
               [_failed(2, 0, "compute_reward raised ZeroDivisionError")]]
    assert best_record(history, "iteration").label == "gen_001/cand_01"
    assert best_record(history, "all_time").label == "gen_000/cand_00"
    assert best_record(history).label == "gen_000/cand_00"  # the run's best: max over all
    latest = method.messages(history, None, eval_freq=1000)  # the paper's default
    assert "answer 1/1" in latest[2]["content"] and "task_score: [3.00]" in latest[3]["content"]
    assert "ZeroDivisionError" in latest[3]["content"]  # the failed generation's reasons
    best = method.messages(history, None, eval_freq=1000, context="all_time")
    assert "answer 0/0" in best[2]["content"] and "task_score: [5.00]" in best[3]["content"]
    assert best_record([], "iteration") is None
    with pytest.raises(ConfigError, match="loop.context='latest' is not one of iteration, all_time"):
        best_record(history, "latest")


def test_paper_defaults_selection_max_and_context_iteration():
    """Eureka takes a training's peak (max_success) and improves the iteration's best;
    last_k and all_time are named options."""
    from rewardgen.cli import check as config_check
    from rewardgen.config import LoopConfig
    from rewardgen.jobs import candidate_job
    from rewardgen.runs.store import CONTEXTS
    from tests.helpers import compose_config, tiny_config

    assert (LoopConfig().selection, LoopConfig().context) == ("max", "iteration")
    cfg = compose_config([])
    assert (cfg.loop.selection, cfg.loop.context) == ("max", "iteration")
    assert candidate_job(tiny_config(), "/tmp/x", None, "native").selection == "max"
    assert config_check.CONTEXTS == CONTEXTS
    with pytest.raises(ConfigError, match="loop.context='best' is not one of iteration, all_time"):
        config_check.validate(tiny_config("loop.context=best"))
