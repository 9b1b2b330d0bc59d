"""ICPL rankings (fitness, file, terminal, VLM tournament), how they steer the search, the text
they put in the next prompt (least preferred code whole, reward trace, its own budget), and
human text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from rewardgen.config import FeedbackConfig, MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.methods.eureka import best_record
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.search.ranking import (
    check_feedback_config,
    collect_feedback,
    mark_ranking,
    preference_feedback,
    preference_text,
    rank_candidates,
    rank_generation,
    run_best,
    samples_per_generation,
)
from rewardgen.tasks.spec import load_task


def _records(generation: int = 1) -> list[CandidateRecord]:
    def ok(i: int, fitness: float) -> CandidateRecord:
        src = f"def compute_reward(state, action, prev_state):\n    return {i}.0, {{}}  # r{i}\n"
        return CandidateRecord(generation, i, src, CandidateResult(status="ok", fitness=fitness))

    failed = CandidateRecord(generation, 3, None, CandidateResult(status="failed", reason="boom"))
    return [ok(0, 1.0), ok(1, 3.0), ok(2, 2.0), failed]


def _dirs(tmp_path):
    return lambda r: tmp_path / r.label


def _long_source(tag: str, lines: int = 120) -> str:
    """A reward program far longer than the old 600-character cut, every line distinct."""
    body = "\n".join(f"    term_{tag}_{k} = {k}.0 * abs(state.pole_angle)  # line {k} of {tag}"
                     for k in range(lines))
    total = " + ".join(f"term_{tag}_{k}" for k in range(0, lines, 10))
    return (f"def compute_reward(state, action, prev_state):\n{body}\n"
            f"    return -({total}), {{\"{tag}\": -term_{tag}_1}}\n")


def _trained(gen: int, idx: int, fitness: float, source: str) -> CandidateRecord:
    result = CandidateResult(status="ok", fitness=fitness, component_stats={f"c{idx}": [1.0]},
                             evaluations=[{"fitness": fitness, "length": 10}])
    return CandidateRecord(gen, idx, source, result, f"answer {gen}/{idx}\n```python\n{source}```")


@pytest.fixture(scope="module")
def method():
    task = load_task("inverted_pendulum")
    return make_method(MethodConfig(), task, TaskPromptInfo.from_task(task))


def test_fitness_ranking_is_saved_marks_the_generation_and_goes_into_the_next_prompt(tmp_path):
    store = RunStore(tmp_path)
    cfg = FeedbackConfig(preference="fitness")
    ranked = rank_generation(cfg, store, 1, _records())
    assert [r.preference_rank for r in ranked] == [2, 0, 1, None]
    saved = json.loads((tmp_path / "gen_001" / "ranking.json").read_text())
    assert saved == {"source": "fitness",
                     "ranking": ["gen_001/cand_01", "gen_001/cand_02", "gen_001/cand_00"]}
    text = preference_feedback(cfg, [ranked])
    assert text is not None and text.startswith("Preference (fitness):")
    assert "gen_001/cand_01 > gen_001/cand_02 > gen_001/cand_00" in text
    assert "Most preferred: gen_001/cand_01, the reward function of your previous answer" in text
    assert "Least preferred reward (gen_001/cand_00)" in text and "# r0" in text
    assert preference_feedback(FeedbackConfig(), [ranked]) is None  # preferences off


def test_a_saved_ranking_is_reused_never_asked_again(tmp_path):
    """A resumed run reads gen_XXX/ranking.json: a changed file (or a person) is not asked."""
    store = RunStore(tmp_path)
    ranking = tmp_path / "ranking.txt"
    ranking.write_text("gen_001/cand_02\ngen_001/cand_00\ngen_001/cand_01\n")
    cfg = FeedbackConfig(preference="file", preference_file=str(ranking))
    first = rank_generation(cfg, store, 1, _records())
    ranking.write_text("gen_001/cand_00\n")
    again = rank_generation(cfg, store, 1, _records())
    assert [r.preference_rank for r in again] == [r.preference_rank for r in first] == [1, 2, 0, None]
    assert [e["ranking"] for e in store.events() if e["event"] == "ranked"] == [
        ["gen_001/cand_02", "gen_001/cand_00", "gen_001/cand_01"]]
    assert rank_generation(FeedbackConfig(), store, 1, _records())[1].preference_rank is None


def test_the_preferred_candidate_beats_fitness_in_best_record():
    """Without marks the fitness decides; with them the latest preferred candidate, in both
    contexts, even when an earlier or a sibling candidate scored higher."""
    gen0 = _records(0)
    gen1 = mark_ranking(_records(1), ["gen_001/cand_00", "gen_001/cand_01"])  # fitness 1 over 3
    assert best_record([gen0, _records(1)]).label == "gen_000/cand_01"
    for context in ("iteration", "all_time"):
        assert best_record([gen0, gen1], context).label == "gen_001/cand_00"
        # a later generation where nothing trained keeps the latest preferred candidate
        failed = [CandidateRecord(2, 0, None, CandidateResult(status="failed", reason="x"))]
        assert best_record([gen0, gen1, failed], context).label == "gen_001/cand_00"


def test_preferred_code_is_the_in_context_reward_and_long_code_is_never_cut(method):
    long_a, long_b, long_c = _long_source("a"), _long_source("b"), _long_source("c")
    assert min(len(long_a), len(long_b), len(long_c)) > 5000
    gen0 = [_trained(0, 0, 9.0, long_a), _trained(0, 1, 1.0, long_b), _trained(0, 2, 5.0, long_c)]
    history = [mark_ranking(gen0, ["gen_000/cand_01", "gen_000/cand_02", "gen_000/cand_00"])]
    cfg = FeedbackConfig(preference="human")
    messages = method.messages(history, None, 100, preference=preference_feedback(cfg, history))
    assistant, feedback = messages[2]["content"], messages[3]["content"]
    assert long_b in assistant  # the preferred (fitness 1.0) reward, whole, not the 9.0 one
    assert "c1: [1.00]" in feedback and "c0: [" not in feedback  # its reflection
    assert long_a in feedback  # the least preferred reward, whole
    assert "Least preferred reward (gen_000/cand_00)" in feedback


def test_the_reward_trace_appears_from_generation_2_on():
    sources = [f"def compute_reward(state, action, prev_state):\n    w = {k}.0\n    return w, {{}}\n"
               for k in range(3)]
    gens = [mark_ranking([_trained(g, 0, 1.0, sources[g]), _trained(g, 1, 0.0, "x = 1\n")],
                         [f"gen_{g:03d}/cand_00", f"gen_{g:03d}/cand_01"]) for g in range(3)]
    assert "Reward trace" not in preference_text(gens[:1])  # the prompt of generation 1
    second = preference_text(gens[:2])  # the prompt of generation 2
    assert "Reward trace" in second
    assert "--- gen_000/cand_00\n+++ gen_001/cand_00" in second
    assert "-    w = 0.0\n+    w = 1.0" in second
    third = preference_text(gens)
    assert third.count("```diff") == 2
    assert third.index("+++ gen_001/cand_00") < third.index("+++ gen_002/cand_00")  # oldest first


def test_the_budget_drops_whole_parts_never_cuts_code():
    base = _long_source("g", lines=30)
    sources = [base.replace("return -(", f"return -{g + 1}.0 * (") for g in range(4)]
    least = _long_source("z")
    gens = [mark_ranking([_trained(g, 0, 1.0, sources[g]), _trained(g, 1, 0.0, least)],
                         [f"gen_{g:03d}/cand_00", f"gen_{g:03d}/cand_01"]) for g in range(4)]
    full = preference_text(gens, limit_chars=100_000)
    assert full.count("```diff") == 3 and least.rstrip() in full
    tight = preference_text(gens, limit_chars=len(full) - 1)  # the oldest diff has to go
    assert len(tight) <= len(full) - 1
    assert least.rstrip() in tight and tight.count("```diff") == 2
    assert "(1 earlier change(s) of the trace left out" in tight
    assert "+++ gen_001/cand_00" not in tight and "+++ gen_003/cand_00" in tight
    tiny = preference_text(gens, limit_chars=500)
    assert "is left out: its code does not fit feedback.preference_chars" in tiny
    assert "```python" not in tiny and "```diff" not in tiny
    whole_diffs = re.findall(r"```diff\n.*?\n```", full, re.S)
    for text in (full, tight):  # every block shown is a whole program or a whole diff
        for block in re.findall(r"```python\n(.*?)\n```", text, re.S):
            assert block == least.rstrip()
        for diff in re.findall(r"```diff\n.*?\n```", text, re.S):
            assert diff in whole_diffs


def test_vlm_ranking_keeps_the_incumbent_on_top_when_it_wins_the_tournament(tmp_path):
    """The VLM tournament also plays the incumbent; if it wins, no new candidate is preferred
    and the incumbent stays the reward to improve and the run's best."""
    def judged(gen: int, idx: int, fitness: float, rate: float) -> CandidateRecord:
        result = CandidateResult(status="ok", fitness=fitness,
                                 evaluations=[{"judge": "vlm", "win_rate": rate, "fitness": fitness}])
        return CandidateRecord(gen, idx, f"x = {gen}{idx}\n", result)

    incumbent = mark_ranking([judged(0, 0, 0.5, 0.5)], ["gen_000/cand_00"])[0]
    gen1 = [judged(1, 0, 0.4, 0.25), judged(1, 1, 0.45, 0.5)]
    (tmp_path / "gen_001").mkdir()
    (tmp_path / "gen_001" / "judge_vlm.json").write_text(json.dumps(
        {"ranking": ["gen_000/cand_00", "gen_001/cand_01", "gen_001/cand_00"]}))
    store = RunStore(tmp_path)
    ranked = rank_generation(FeedbackConfig(preference="vlm"), store, 1, gen1, incumbent)
    assert [r.preference_rank for r in ranked] == [2, 1]
    assert best_record([[incumbent], ranked], "iteration").label == "gen_000/cand_00"
    text = preference_text([[incumbent], ranked])
    assert "None of them was preferred over gen_000/cand_00" in text


def test_file_ranking_reads_labels_best_first(tmp_path):
    ranking = tmp_path / "ranking.txt"
    ranking.write_text("gen_001/cand_02\ngen_001/cand_00\n")
    order = rank_candidates(_records(), "file", _dirs(tmp_path), preference_file=str(ranking))
    assert [r.index for r in order] == [2, 0, 1]  # the unranked one goes last
    ranking.write_text("gen_009/cand_00\n")
    with pytest.raises(ConfigError, match="names none of"):
        rank_candidates(_records(), "file", _dirs(tmp_path), preference_file=str(ranking))


def test_config_errors_name_the_fix(tmp_path):
    check_feedback_config(FeedbackConfig(preference="vlm"))  # the judge checks its endpoint
    with pytest.raises(ConfigError, match="has not judged"):
        rank_candidates(_records(), "vlm", _dirs(tmp_path))
    with pytest.raises(ConfigError, match="preference=file needs feedback.preference_file"):
        check_feedback_config(FeedbackConfig(preference="file"))
    with pytest.raises(ConfigError, match="feedback.mode=file needs feedback.human_file"):
        check_feedback_config(FeedbackConfig(mode="file"))
    with pytest.raises(ConfigError, match="feedback.mode='chat' is not one of"):
        check_feedback_config(FeedbackConfig(mode="chat"))
    with pytest.raises(ConfigError, match="feedback.preference_chars=-1 must be at least 0"):
        check_feedback_config(FeedbackConfig(preference="fitness", preference_chars=-1))


def test_terminal_ranking_and_text_through_a_real_stdin_pipe(tmp_path):
    """A person answers in a terminal: a child process reads the ranking and text from stdin."""
    (tmp_path / "gen_001" / "cand_01").mkdir(parents=True)
    (tmp_path / "gen_001" / "cand_01" / "video.mp4").write_bytes(b"\0")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from rewardgen.config import FeedbackConfig
        from rewardgen.runs.store import RunStore
        from tests.search.test_ranking import _records
        cfg = FeedbackConfig(mode="interactive", preference="human")
        from rewardgen.search.ranking import collect_feedback, preference_feedback, rank_generation
        store = RunStore({str(tmp_path)!r})
        history = [rank_generation(cfg, store, 1, _records())]
        text = collect_feedback(cfg, history, lambda r: store.cand_dir(r.generation, r.index))
        print("RESULT" + repr(text) + repr(preference_feedback(cfg, history)))
    """)
    answer = "0 1\n1 0 2\nThe middle one falls over at the end.\n\n"  # bad order, good one, text
    proc = subprocess.run([sys.executable, "-c", script], input=answer, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[0] gen_001/cand_00" in proc.stdout and "Please name each of 0..2 exactly once." in proc.stdout
    assert "rollout: " + str(tmp_path / "gen_001" / "cand_01" / "video.mp4") in proc.stdout
    result = proc.stdout.split("RESULT", 1)[1]
    assert "The middle one falls over at the end." in result
    assert "gen_001/cand_01 > gen_001/cand_00 > gen_001/cand_02" in result


def test_collect_feedback_keeps_human_text_without_preferences(tmp_path):
    text = collect_feedback(FeedbackConfig(human="hop higher"), [_records()], _dirs(tmp_path))
    assert text == "hop higher"


def test_human_ranking_shows_each_video_recorded_from_the_policy_and_its_reward(tmp_path):
    """feedback.preference=human: a video per candidate (recorded from the trusted policy.zip
    when missing) and the reward it trained on (file and components), not policy.zip paths."""
    import io

    from stable_baselines3 import PPO

    task = load_task("inverted_pendulum")
    store = RunStore.create(tmp_path / "run", {"task": task.name,
                                               "config": {"rl": {"algo": "ppo"}}})
    records = []
    for i, alive in enumerate((61.5, 12.25)):
        source = f"def compute_reward(state, action, prev_state):\n    return {i}.0, {{}}\n"
        result = CandidateResult(status="ok", fitness=float(i),
                                 component_stats={"alive": [1.0, alive], "bad\x1b[2Kname": [0.5]})
        record = CandidateRecord(1, i, source, result)
        store.write_reward(1, i, source)
        env = task.make_env()
        PPO("MlpPolicy", env, n_steps=16, batch_size=16, policy_kwargs={"net_arch": [8]}).save(
            store.cand_dir(1, i) / "policy.zip")
        env.close()
        records.append(record)
    out = io.StringIO()
    ranked = rank_generation(FeedbackConfig(preference="human"), store, 1, records,
                             stdin=io.StringIO("1 0\n"), stdout=out, video_steps=8)
    assert [r.preference_rank for r in ranked] == [1, 0]
    shown = out.getvalue()
    for i, alive in enumerate(("61.5", "12.2")):
        video = store.cand_dir(1, i) / "video.mp4"
        assert video.is_file() and f"video:  {video}\n" in shown
        assert (f"reward: {store.cand_dir(1, i) / 'reward.py'} (components, mean episode sum: "
                f"alive {alive}, bad") in shown
    assert "policy.zip" not in shown and "\x1b" not in shown


def test_icpl_prompt_hides_the_task_score_and_shows_the_bad_example_with_its_feedback(method):
    """With a preference mode the training feedback has no task_score or success_rate line
    (ICPL shows it only with use_sparse_reward, icpl.py:483-488); the bad example comes with its
    own training feedback (icpl.py:617-620), the score hidden there too."""
    def trained(idx: int, fitness: float) -> CandidateRecord:
        src = f"def compute_reward(state, action, prev_state):\n    return {idx}.0, {{}}\n"
        result = CandidateResult(status="ok", fitness=fitness, component_stats={f"c{idx}": [1.0, 2.0]},
                                 evaluations=[{"fitness": fitness, "success_rate": 0.5,
                                               "length": 10}, {"fitness": fitness,
                                                               "success_rate": 1.0, "length": 12}])
        return CandidateRecord(0, idx, src, result, f"```python\n{src}```")

    history = [mark_ranking([trained(0, 7.5), trained(1, 1.25)],
                            ["gen_000/cand_00", "gen_000/cand_01"])]
    cfg = FeedbackConfig(preference="human")
    text = preference_feedback(cfg, history, eval_freq=100, fitness_doc="seconds balanced")
    messages = method.messages(history, None, 100, preference=text, show_score=False)
    feedback = messages[-1]["content"]
    assert "c0: [1.00, 2.00]" in feedback  # the preferred reward's components
    bad = feedback.index("Least preferred reward (gen_000/cand_01)")
    assert feedback.index("c1: [1.00, 2.00]", bad) > bad  # the bad example's, after its code
    for hidden in ("task_score", "success_rate", "task score", "7.50", "1.25", "seconds balanced"):
        assert hidden not in feedback, hidden
    assert "episode_length: [10.00, 12.00]" in feedback
    # Without a preference mode (Eureka) the score stays.
    eureka = method.messages(history, None, 100)[-1]["content"]
    assert "task_score: [7.50, 7.50]" in eureka and "success_rate: [0.50, 1.00]" in eureka


def test_the_runs_best_is_the_best_by_fitness_unless_preferred_is_asked_for():
    """ICPL's code retrains the best by success over every iteration (icpl.py:652-661), however
    the preferences ranked; feedback.preference_best=preferred keeps the latest preferred."""
    gen0 = _records(0)  # fitness 1, 3, 2
    gen1 = mark_ranking(_records(1), ["gen_001/cand_00", "gen_001/cand_01"])  # prefers fitness 1
    history = [gen0, gen1]
    best = run_best(history, FeedbackConfig(preference="human"))
    assert best is not None and best.label == "gen_000/cand_01" and best is gen0[1]
    chosen = run_best(history, FeedbackConfig(preference="human", preference_best="preferred"))
    assert chosen is not None and chosen.label == "gen_001/cand_00"
    assert run_best([gen0], FeedbackConfig()).label == "gen_000/cand_01"  # type: ignore[union-attr]
    assert run_best([], FeedbackConfig(preference="human")) is None


def test_a_preference_mode_asks_icpls_six_samples_per_generation():
    from tests.helpers import tiny_config

    assert samples_per_generation(tiny_config("loop.samples=16")) == 16
    assert samples_per_generation(tiny_config("loop.samples=16", "feedback.preference=fitness")) == 6
    assert samples_per_generation(tiny_config("loop.samples=16", "feedback.preference=fitness",
                                              "feedback.preference_samples=null")) == 16
    with pytest.raises(ConfigError, match="feedback.preference_best='best' is not one of"):
        check_feedback_config(FeedbackConfig(preference_best="best"))
    with pytest.raises(ConfigError, match="feedback.preference_samples=0 must be at least 1"):
        check_feedback_config(FeedbackConfig(preference_samples=0))
