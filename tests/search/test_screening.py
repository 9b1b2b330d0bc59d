"""CARD screening: stored trajectories, CARD's test and our pairwise one, preference and process
feedback scored in a sandboxed worker, the loop skipping RL."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli.app import run
from rewardgen.config import MethodConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.methods.feedback import failure_summary
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.runs.trajectories import Trajectory, read_trajectories, save_episodes
from rewardgen.search.scoring import (
    best_trajectory,
    candidate_process_feedback,
    component_series,
    process_feedback,
)
from rewardgen.search.screening import (
    PREFERENCE_FEEDBACK_CHARS,
    Screener,
    card_accuracy,
    card_pair_accuracy,
    judge_returns,
    preference_accuracy,
    preference_feedback,
    screen_candidate,
    success_labels,
)
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import FakeOpenAIServer, markdown
from tests.helpers import tiny_config

GOOD = """def compute_reward(state, action, prev_state):
    upright = 1.0 - abs(state.pole_angle)
    return upright, {"upright": upright}
"""
INVERTED = """def compute_reward(state, action, prev_state):
    return -1.0, {"alive": -1.0}
"""
ALIVE = """def compute_reward(state, action, prev_state):
    return 1.0, {"alive": 1.0}
"""
TIME_PENALTY = """def compute_reward(state, action, prev_state):
    tilt = abs(state.pole_angle)
    return -1.0 - tilt, {"time": -1.0, "tilt": -tilt}
"""
# The recorded episodes (below) last 3, 19 and 26 steps (0.12, 0.76, 1.04 s): at a success
# threshold of 0.5 s the two long ones succeed and the pushed one fails.
SUCCESS_S = 0.5


def _record(tmp_path, episodes: int = 3):
    """Real pendulum episodes of different lengths (so different fitness) into an npz."""
    tmp_path.mkdir(parents=True, exist_ok=True)
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


def _traj(fitness: float, length: int) -> Trajectory:
    return Trajectory("unused.npz", 0, fitness, "", length)


def _official_card(returns, lengths, success, threshold):
    """CARD's trajectories_return_check, transcribed (ShengjieSun419/CARD
    code_generation/self_reflection/utils.py:277-304): per-step rewards, the best failure, the
    share of successes strictly above it; all-success or all-failure passes at rate 1.0."""
    wins = [r / n for r, n, s in zip(returns, lengths, success, strict=True) if s]
    fails = [r / n for r, n, s in zip(returns, lengths, success, strict=True) if not s]
    if not wins or not fails:
        return 1.0, True
    failure_max_r = max(fails)
    correct_count = sum(1 for r in wins if r > failure_max_r)
    rate = correct_count / len(wins)
    return rate, rate >= threshold


def test_card_statistic_matches_the_official_formula_where_pairwise_disagrees():
    import numpy as np

    # A hand-built pool: 5 successes, 5 failures, one failure scoring high under the reward.
    # Pairwise, successes win 21 of 25 pairs (0.84, passes 0.8); against the best failure only
    # 1 of 5 successes is above it (0.2, rejected). CARD's code rejects.
    success = [True] * 5 + [False] * 5
    per_step = [2.0, 1.5, 1.4, 1.3, 1.2] + [0.1, 0.2, 0.3, 0.4, 1.8]
    lengths = [50, 40, 30, 20, 10, 60, 10, 20, 30, 40]
    returns = [p * n for p, n in zip(per_step, lengths, strict=True)]
    pool = [_traj(1.0 if s else 0.0, n) for s, n in zip(success, lengths, strict=True)]
    assert card_pair_accuracy(returns, lengths, success) == pytest.approx((0.84, 25))
    assert judge_returns(returns, pool, "card_pairs", 0.8, 0.5).passed
    official = _official_card(returns, lengths, success, 0.8)
    ours = judge_returns(returns, pool, "card", 0.8, 0.5)
    assert official == (0.2, False)
    assert (ours.accuracy, ours.passed, ours.pairs) == (pytest.approx(0.2), False, 5)
    # And on random pools, wherever both kinds exist, the two agree to the last digit.
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        success = [bool(v) for v in rng.random(n) < 0.5]
        lengths = [int(v) for v in rng.integers(1, 200, n)]
        returns = [float(v) for v in rng.normal(0, 50, n)]
        rate, _ = _official_card(returns, lengths, success, 0.8)
        ours_rate, judged = card_accuracy(returns, lengths, success)
        if any(success) and not all(success):
            assert ours_rate == pytest.approx(rate) and judged == sum(success)
        else:
            assert judged == 0  # nothing to judge: the candidate trains (CARD passes it)


def test_card_test_compares_mean_reward_per_step_of_successes_against_failures():
    assert success_labels([0.1, 0.8, 1.0], 0.5) == [False, True, True]
    assert success_labels([1.0, 3.0, 2.5], None) == [False, True, True]  # no threshold: midpoint
    long_success, short_failure = _traj(1.0, 40), _traj(0.1, 10)
    pair = [long_success, short_failure]
    # An alive bonus: the total favours the long success, per step it is a tie (no win).
    alive = judge_returns([40.0, 10.0], pair, "card", 0.8, 0.5)
    assert not alive.passed and alive.accuracy == 0.0 and alive.pairs == 1
    assert alive.reason == "trajectory preference accuracy 0.00 < 0.80"
    assert judge_returns([40.0, 10.0], pair, "pairwise", 0.6, 0.5).passed  # our old test
    # A time penalty: -1.1 per step for the success beats -1.2 for the failure; the total does not.
    assert judge_returns([-44.0, -12.0], pair, "card", 0.8, 0.5).passed
    assert not judge_returns([-44.0, -12.0], pair, "pairwise", 0.6, 0.5).passed
    # Only successes against failures count: the two successes may rank either way.
    four = [_traj(1.0, 10), _traj(0.9, 10), _traj(0.2, 10), _traj(0.1, 10)]
    labels = success_labels([t.fitness for t in four], 0.5)
    assert card_accuracy([5.0, 9.0, 1.0, 2.0], [10] * 4, labels) == (1.0, 2)
    assert preference_accuracy([5.0, 9.0, 1.0, 2.0], [1.0, 0.9, 0.2, 0.1])[0] < 1.0
    # One failure above one success: 3 of 4 pairs won, but only 1 of 2 successes beats the best
    # failure. CARD's 0.5 fails at 0.6 where the pairwise reading (card_pairs) passes.
    three_of_four = [5.0, 9.0, 1.0, 6.0]
    assert card_accuracy(three_of_four, [10] * 4, labels) == (0.5, 2)
    assert card_pair_accuracy(three_of_four, [10] * 4, labels) == (0.75, 4)
    assert not judge_returns(three_of_four, four, "card", 0.6, 0.5).passed
    assert judge_returns(three_of_four, four, "card_pairs", 0.6, 0.5).passed
    # Nothing to judge without a success (or without a failure): the candidate trains.
    none = judge_returns([1.0, 2.0], [_traj(0.1, 5), _traj(0.2, 5)], "card", 0.8, 0.5)
    assert none.passed and none.pairs == 0


def test_card_is_the_default_test_at_0_8_and_pairwise_a_named_option():
    screener = Screener.from_config(tiny_config("loop.screening=trajectory_preference"), None,  # type: ignore[arg-type]
                                    "compute_reward")
    assert screener is not None and (screener.test, screener.threshold) == ("card", 0.8)
    old = Screener.from_config(tiny_config("loop.screening=trajectory_preference",
                                           "loop.screening_test=pairwise",
                                           "loop.screening_threshold=0.6"), None, "compute_reward")  # type: ignore[arg-type]
    assert old is not None and (old.test, old.threshold) == ("pairwise", 0.6)
    with pytest.raises(ConfigError, match="loop.screening_test='both' is not one of"):
        Screener.from_config(tiny_config("loop.screening=trajectory_preference",
                                         "loop.screening_test=both"), None, "compute_reward")  # type: ignore[arg-type]


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


def test_screening_in_a_worker_judges_mean_reward_per_step(tmp_path):
    refs = read_trajectories(_record(tmp_path), "gen_000/cand_00")
    sandbox = SandboxConfig(timeout_s=60)

    def screen(source, name, **kw):
        kw.setdefault("success_threshold", SUCCESS_S)
        threshold = kw.pop("threshold", 0.8)
        return screen_candidate(source, tmp_path / name, refs, sandbox, threshold,
                                "inverted_pendulum", **kw)

    good = screen(GOOD, "good")
    assert good.passed and good.accuracy == 1.0 and good.pairs == 2
    alive = screen(ALIVE, "alive")  # longer episodes earn more in total, not per step
    assert not alive.passed and alive.reason == "trajectory preference accuracy 0.00 < 0.80"
    assert screen(ALIVE, "alive_pairwise", test="pairwise", threshold=0.6).passed
    assert screen(TIME_PENALTY, "penalty").passed  # less per step lost while succeeding
    assert not screen(TIME_PENALTY, "penalty_pairwise", test="pairwise", threshold=0.6).passed
    crash = screen("def compute_reward(state, action, prev_state):\n    return 1 / 0, {}\n",
                   "crash")
    assert not crash.passed and "ZeroDivisionError" in crash.reason
    # The task's own threshold (38 s) leaves these short episodes all failed: nothing to judge.
    assert screen(ALIVE, "task_threshold", success_threshold=None).passed


def test_a_screened_out_reward_teaches_the_worst_success_against_the_best_failure(tmp_path):
    refs = read_trajectories(_record(tmp_path), "gen_000/cand_00")
    alive = screen_candidate(ALIVE, tmp_path / "alive", refs, SandboxConfig(timeout_s=60), 0.8,
                             "inverted_pendulum", success_threshold=SUCCESS_S)
    text = alive.feedback
    assert ("of 2 successful episodes, 2 earn a smaller mean reward per step than the best "
            "failed one, so this reward is 0.00% accurate in distinguishing successful episodes "
            "(needed: 80%)") in text
    assert ("Worst successful episode (gen_000/cand_00 episode 1: task score 0.76, 19 steps): "
            "mean reward per step 1.000") in text
    assert ("Best failed episode (gen_000/cand_00 episode 0: task score 0.12, 3 steps): "
            "mean reward per step 1.000") in text
    assert "  success step 0: reward 1.000; cart_position=" in text
    assert "  failure step 2: reward 1.000; cart_position=" in text and "pole_angle=" in text
    assert len(text) <= PREFERENCE_FEEDBACK_CHARS
    labels = success_labels([t.fitness for t in refs], SUCCESS_S)
    short = preference_feedback(refs, [3.0, 19.0, 26.0], None, labels, alive, 0.8, max_chars=900)
    assert len(short) <= 900 and "failure step 2: cart_position=" in short  # no rewards: States
    # It reaches the next prompt under the failed candidates of the generation.
    record = CandidateRecord(1, 0, ALIVE, CandidateResult("screened_out", reason=alive.reason,
                                                          feedback=text))
    assert "Worst successful episode" in failure_summary([record])
    task = load_task("inverted_pendulum")
    method = make_method(MethodConfig(), task, TaskPromptInfo.from_task(task))
    trained = CandidateRecord(0, 0, GOOD, CandidateResult("ok", fitness=1.0))
    prompt = method.messages([[trained], [record]], None, 100)[-1]["content"]
    assert "Best failed episode (gen_000/cand_00 episode 0" in prompt


def test_the_screener_screens_out_with_preference_feedback_from_the_run(tmp_path):
    store = RunStore(tmp_path / "run")
    _record(store.cand_dir(0, 0))
    history = [[CandidateRecord(0, 0, GOOD, CandidateResult("ok", fitness=1.0))]]
    screener = Screener(store, "inverted_pendulum", SandboxConfig(timeout_s=60), 0.8,
                        success_threshold=SUCCESS_S)
    found = screener.trajectories(history)
    assert [t.length for t in found] == [3, 19, 26]
    assert screener.screen(1, 0, GOOD, found) is None
    result = screener.screen(1, 1, ALIVE, found)
    assert result is not None and result.status == "screened_out"
    assert "Worst successful episode (gen_000/cand_00 episode 1" in result.feedback
    assert screener.saved == 1
    assert [e["event"] for e in store.events()] == ["screening", "screening", "screened_out"]


def test_process_feedback_shows_the_highest_and_lowest_return_episodes(tmp_path):
    cand = tmp_path / "cand"
    _record(cand)
    text = candidate_process_feedback(TIME_PENALTY, cand, SandboxConfig(timeout_s=60),
                                      "inverted_pendulum")
    highest, lowest = text.split("\n\n")
    assert highest.startswith("Along the stored episode with the highest return under this "
                              "reward (return -3.") and "3 steps, task score 0.12" in highest
    assert lowest.startswith("Along the stored episode with the lowest return under this reward")
    assert "26 steps, task score 1.04" in lowest
    assert "time: [-1.000" in highest and "tilt: [" in lowest
    broken = candidate_process_feedback("def compute_reward(state, action, prev_state):\n"
                                        "    return 1 / 0, {}\n", cand,
                                        SandboxConfig(timeout_s=60), "inverted_pendulum")
    assert broken == ""


def test_unknown_screening_and_progress_methods_are_config_errors(tmp_path):
    from rewardgen.search.screening import Screener

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
                          # the tiny policies never reach the task's 38 s, so CARD's test
                          # (success vs failure) has nothing to judge here: our pairwise test
                          "loop.screening_test=pairwise", "loop.screening_threshold=0.6")
        # (feedback.process is left at null: on, because CARD screens)
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
    assert "the stored episode with the highest return" in second[3]["content"]


def test_cards_pool_takes_up_to_its_episodes_from_every_trained_candidate(tmp_path):
    from rewardgen.jobs import candidate_job
    from rewardgen.search.scoring import process_feedback_on

    store = RunStore(tmp_path / "run")
    for index in range(3):
        _record(store.cand_dir(0, index))
    history = [[CandidateRecord(0, 0, GOOD, CandidateResult("ok", fitness=1.0)),
                CandidateRecord(0, 1, GOOD, CandidateResult("ok", fitness=0.5)),
                CandidateRecord(0, 2, ALIVE, CandidateResult("screened_out", reason="x"))]]
    sandbox = SandboxConfig(timeout_s=60)
    every = Screener(store, "inverted_pendulum", sandbox, 0.8).trajectories(history)
    assert len(every) == 6  # 3 episodes of each trained candidate, none of the screened-out one
    assert {t.label for t in every} == {"gen_000/cand_00", "gen_000/cand_01"}
    two = Screener(store, "inverted_pendulum", sandbox, 0.8, episodes=2).trajectories(history)
    assert len(two) == 4 and {t.length for t in two} == {3, 26}  # each one's extremes kept
    capped = Screener(store, "inverted_pendulum", sandbox, 0.8, pool=3).trajectories(history)
    assert len(capped) == 3
    with pytest.raises(ConfigError, match="loop.screening_episodes=0"):
        Screener(store, "inverted_pendulum", sandbox, 0.8, episodes=0)
    # CARD's pool needs the episodes stored: 100 per candidate when CARD screens, else 6;
    # and CARD's process feedback is on by default exactly then.
    card = tiny_config("loop.screening=trajectory_preference")
    assert candidate_job(card, str(tmp_path / "c"), GOOD).stored_episodes == 100
    assert candidate_job(tiny_config(), str(tmp_path / "c"), GOOD).stored_episodes == 6
    assert process_feedback_on(card) and not process_feedback_on(tiny_config())
    assert not process_feedback_on(tiny_config("loop.screening=trajectory_preference",
                                               "feedback.process=false"))
    assert process_feedback_on(tiny_config("feedback.process=true"))
