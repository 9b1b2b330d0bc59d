"""CARD screening: stored trajectories, preference accuracy in a worker, the loop skipping RL."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli import run
from rewardgen.config import SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.screening import (
    best_trajectory,
    component_series,
    preference_accuracy,
    process_feedback,
    read_trajectories,
    save_episodes,
    screen_candidate,
)
from rewardgen.tasks import load_task
from tests.fakes.openai_server import FakeOpenAIServer, markdown
from tests.helpers import tiny_config

GOOD = """def compute_reward(state, action, prev_state):
    upright = 1.0 - abs(state.pole_angle)
    return upright, {"upright": upright}
"""
INVERTED = """def compute_reward(state, action, prev_state):
    return -1.0, {"alive": -1.0}
"""


def _record(tmp_path, episodes: int = 3):
    """Real pendulum episodes of different lengths (so different fitness) into an npz."""
    task = load_task("inverted_pendulum")
    env = task.make_env(max_episode_steps=40)
    stored = []
    for k in range(episodes):
        env.reset(seed=k)
        builder, tracker = task.state_builder(env), task.fitness_tracker(env)
        states, actions = [builder.build()], []
        tracker.reset(states[0])
        done = False
        while not done:
            push = 3.0 if k == 0 else 0.0  # a hard push ends episode 0 early
            _, _, term, trunc, info = env.step([push])
            states.append(builder.build())
            actions.append([push])
            tracker.update(states[-1], info)
            done = term or trunc
        stored.append({"states": states, "actions": actions, "fitness": tracker.value})
    path = tmp_path / "trajectories.npz"
    assert save_episodes(stored, path) == episodes
    env.close()
    return path


def test_accuracy_counts_agreeing_pairs_and_skips_equal_fitness():
    assert preference_accuracy([3.0, 2.0, 1.0], [3.0, 2.0, 1.0]) == (1.0, 3)
    assert preference_accuracy([1.0, 2.0], [2.0, 1.0]) == (0.0, 1)
    assert preference_accuracy([1.0, 1.0], [2.0, 1.0]) == (0.5, 1)  # a tie is half right
    assert preference_accuracy([1.0, 5.0], [1.0, 1.0])[1] == 0


def test_stored_episodes_and_process_feedback_scored_in_a_sandbox(tmp_path):
    path = _record(tmp_path)
    found = read_trajectories(path, "gen_000/cand_00")
    assert len(found) == 3 and found[0].fitness < found[1].fitness  # pushed episode fails early
    best = best_trajectory(path)
    assert best is not None and best.fitness == max(t.fitness for t in found)
    program = ("def compute_reward(state, action, prev_state):\n"
               "    return 1.0, {'alive': 1.0, 'tilt': -abs(state.pole_angle)}\n")
    series = component_series(program, best, tmp_path / "process", SandboxConfig(timeout_s=60),
                              "inverted_pendulum")
    assert set(series) == {"alive", "tilt"} and len(series["alive"]) == len(series["tilt"]) > 1
    text = process_feedback(best, series)
    assert "per-step reward components" in text and "alive: [1.000" in text
    broken = component_series("def compute_reward(state, action, prev_state):\n    return 1 / 0, {}\n",
                              best, tmp_path / "broken", SandboxConfig(timeout_s=60),
                              "inverted_pendulum")
    assert broken == {} and process_feedback(best, broken) == ""


def test_screening_in_a_worker_passes_a_good_reward_and_rejects_an_inverted_one(tmp_path):
    refs = read_trajectories(_record(tmp_path))
    sandbox = SandboxConfig(timeout_s=60)
    good = screen_candidate(GOOD, tmp_path / "good", refs, sandbox, 0.6, "inverted_pendulum")
    assert good.passed and good.accuracy == 1.0 and good.pairs >= 1
    bad = screen_candidate(INVERTED, tmp_path / "bad", refs, sandbox, 0.6, "inverted_pendulum")
    assert not bad.passed
    assert bad.reason == "trajectory preference accuracy 0.00 < 0.60"
    crash = screen_candidate("def compute_reward(state, action, prev_state):\n    return 1 / 0, {}\n",
                             tmp_path / "crash", refs, sandbox, 0.6, "inverted_pendulum")
    assert not crash.passed and "ZeroDivisionError" in crash.reason


def test_unknown_screening_and_progress_methods_are_config_errors(tmp_path):
    from rewardgen.screening import Screener

    with pytest.raises(ConfigError, match="loop.screening='maybe' is not one of"):
        Screener.from_config(tiny_config("loop.screening=maybe"), None, "compute_reward")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="writes progress\\(\\); use loop.screening=none"):
        Screener.from_config(tiny_config("loop.screening=trajectory_preference", "method=progress"),
                             None, "progress")  # type: ignore[arg-type]


def test_loop_screens_out_a_misranking_reward_and_counts_the_saved_run(tmp_path):
    answers = {0: GOOD, 1: GOOD}  # gen 0: two trained rewards leave trajectories

    def answerer(body, index):
        second_generation = len(body["messages"]) > 2
        return markdown(INVERTED if second_generation and index == 1 else answers[index])

    with FakeOpenAIServer(answerer=answerer) as server:
        cfg = tiny_config("llm=openai", "llm.model=fake", f"llm.base_url={server.base_url}",
                          f"llm.cache_dir={tmp_path / 'c'}", "final.enabled=false",
                          "loop.screening=trajectory_preference", "train.eval_episodes=2",
                          "feedback.process=true")
        summary = run(cfg, tmp_path / "run", interactive=False)
        second = server.chat_requests[1].body["messages"]
    gen1 = tmp_path / "run" / "gen_001"
    result = json.loads((gen1 / "cand_01" / "result.json").read_text())
    assert result["status"] == "screened_out", result
    assert result["reason"].startswith("trajectory preference accuracy 0.")
    assert not (gen1 / "cand_01" / "policy.zip").exists()  # no RL was run
    assert summary["rl_runs_saved"] == 1
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert any(e.get("kind", e.get("event")) == "screened_out" for e in events)
    assert "Process feedback" in second[3]["content"]
