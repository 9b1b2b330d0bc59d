"""method=l2r and loop.screening=mpc end to end: real HTTP (loopback OpenAI server), replay files,
the real sandboxed MPC worker and the trusted replay, on hopper and reacher (tiny MPC)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAIServer, markdown
from tests.helpers import tiny_config

HOP = """import numpy as np


def compute_reward(state, action, prev_state):
    forward = float(state.x_velocity)
    posture = -abs(float(state.torso_angle)) - 3.0 * max(0.0, 1.2 - float(state.torso_height))
    return forward + posture, {"forward": forward, "posture": posture}
"""
BACKWARDS = HOP.replace("forward = float(state.x_velocity)", "forward = -5.0 * float(state.x_velocity)")
REACH = """import numpy as np


def compute_reward(state, action, prev_state):
    distance = float(np.linalg.norm(state.fingertip_position[:2] - state.target_position[:2]))
    return -distance, {"distance": -distance}
"""
MOTION = ("[start of description]\n* Goal in one sentence: hop forward.\n* x_velocity should be "
          "above [NUM: 1.0] m/s; importance high\n[end of description]")
MPC = ["method.mpc.horizon=4", "method.mpc.samples=4", "method.mpc.knots=2",
       "method.mpc.episode_steps=8", "method.mpc.threads=1"]


def l2r_answerer(body: dict[str, Any], index: int) -> str:
    system = body["messages"][0]["content"]
    if "You describe robot motion" in system:
        return f"Here is the description.\n{MOTION}"
    return markdown(HOP, prose=f"Sample {index}: reward for the described hop.")


def _l2r(*extra: str):
    return tiny_config("method=l2r", "method.video=false", "final.n_seeds=1", *MPC, *extra)


def test_l2r_runs_end_to_end_through_an_openai_server(tmp_path):
    with FakeOpenAIServer(answerer=l2r_answerer) as server:
        cfg = _l2r("task=hopper", "llm=openai", "llm.model=fake", f"llm.base_url={server.base_url}",
                   f"llm.cache_dir={tmp_path / 'cache'}", "loop.generations=2", "loop.samples=1",
                   "feedback.human=Lean forward more.")
        summary = run(cfg, tmp_path / "run", interactive=False)
        requests = [r.body["messages"] for r in server.chat_requests]
    run_dir = tmp_path / "run"
    # two stages per generation: description, then code (which sees the description)
    assert len(requests) == 4
    assert "x_velocity should be above" in requests[1][1]["content"]
    # the second description's conversation carries the MPC episode and the person's words
    assert [m["role"] for m in requests[2]] == ["system", "user", "assistant", "user"]
    assert "task score" in requests[2][3]["content"] and "Lean forward" in requests[2][3]["content"]
    # the coder keeps no history (L2R's keep_message_history=[True, False]): the description only
    assert [m["role"] for m in requests[3]] == ["system", "user"]
    assert "previous description" not in requests[3][1]["content"]
    assert "x_velocity should be above" in requests[3][1]["content"]
    assert {r.body["temperature"] for r in server.chat_requests} == {0.3}  # L2R's
    assert (run_dir / "gen_000" / "motion.md").is_file()
    result = json.loads((run_dir / "gen_001" / "cand_00" / "result.json").read_text())
    assert result["status"] == "ok" and result["fitness"] is not None
    assert result["env_steps"] <= 8 and set(result["component_stats"]) == {"forward", "posture"}
    # the final phase: the best reward's MPC from a fresh seed, no RL baselines
    final = json.loads((run_dir / "final" / "summary.json").read_text())
    assert set(final["variants"]) == {"generated"}
    assert final["planner"] == "mpc" and "runs no RL baselines" in final["human_normalised_reason"]
    assert summary["best"]["candidate"] in ("gen_000/cand_00", "gen_001/cand_00")
    from rewardgen.reporting.report import read_generations, write_report
    from rewardgen.reporting.summary import next_steps
    from rewardgen.runs.outcome import LoopOutcome
    from rewardgen.runs.store import RunStore

    html = write_report(run_dir).read_text()
    assert "Final MPC episodes" in html and "Final retraining" not in html
    store = RunStore.open(run_dir)
    best = read_generations(store)[0][0]
    hints = "\n".join(next_steps(LoopOutcome(store=store, best=best), True))
    assert "rewardgen-export" not in hints and "train RL on it" in hints  # export refuses MPC


def test_l2r_with_replayed_answers_on_a_manipulation_task(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "gen_000.motion.answer_00.md").write_text(
        "[start of description]\n* fingertip_position should be close to target_position "
        "[NUM: 0.0] m; importance high\n[end of description]")
    (answers / "gen_000.answer_00.md").write_text(markdown(REACH))
    cfg = _l2r("task=reacher", "llm=replay", f"llm.replay_dir={answers}", "loop.generations=1",
               "loop.samples=1", "final.enabled=false", "method.video=true")
    run(cfg, tmp_path / "run", interactive=False)
    assert "fingertip_position" in (answers / "gen_000.motion.prompt.md").read_text()
    assert "close to target_position" in (answers / "gen_000.prompt.md").read_text()
    cand = tmp_path / "run" / "gen_000" / "cand_00"
    result = json.loads((cand / "result.json").read_text())
    assert result["status"] == "ok" and result["fitness"] is not None
    assert (cand / "video.mp4").is_file() and (cand / "trajectories.npz").is_file()


def test_l2r_refuses_a_task_it_cannot_plan_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot be planned"):
        run(_l2r("task=fetch_reach", "llm=offline"), tmp_path / "run", interactive=False)


def test_mpc_screening_saves_the_rl_run_of_a_far_worse_reward(tmp_path):
    def answerer(body: dict[str, Any], index: int) -> str:
        return markdown(HOP if index == 0 else BACKWARDS)

    with FakeOpenAIServer(answerer=answerer) as server:
        cfg = tiny_config("task=hopper", "llm=openai", "llm.model=fake",
                          f"llm.base_url={server.base_url}", f"llm.cache_dir={tmp_path / 'c'}",
                          "loop.generations=1", "loop.samples=2", "final.enabled=false",
                          "loop.screening=mpc", "loop.screening_mpc.horizon=6",
                          "loop.screening_mpc.samples=6", "loop.screening_mpc.knots=2",
                          "loop.screening_mpc.episode_steps=20", "loop.screening_mpc.threads=1")
        run(cfg, tmp_path / "run", interactive=False)
    results = [json.loads((tmp_path / "run" / "gen_000" / f"cand_{i:02d}" / "result.json")
                          .read_text()) for i in range(2)]
    assert [r["status"] for r in results] == ["ok", "screened_out"]
    assert results[1]["reason"].startswith("MPC screen: fitness")
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    assert [e["rl_runs_saved"] for e in events if e["event"] == "screened_out"] == [1]


@pytest.mark.parametrize(("extra", "match"), [
    (("loop.judge=clip",), "method=l2r trains no policy for a vision judge"),
    (("method.mpc.samples=0",), r"mpc.samples=0 must be an integer in \[1, 1024\]"),
])
def test_l2r_settings_are_refused_before_anything_starts(extra, match, tmp_path):
    from rewardgen.cli.check import validate

    with pytest.raises(ConfigError, match=match):
        validate(_l2r("task=hopper", "llm=offline", *extra))
        run(_l2r("task=hopper", "llm=offline", *extra), tmp_path / "run", interactive=False)


UNFILLED = ("[start of description]\n* Goal in one sentence: [TEXT]\n* x_velocity should be "
            "[close to | above] [NUM: value] m/s; importance [low | medium | high]\n"
            "[end of description]")


def test_an_unfilled_template_is_asked_again_before_the_coder_sees_it(tmp_path):
    """L2R re-samples while "CHOICE" or "NUM" remain (conversation.py:31-44); so do we, with a
    new seed each time, and the coder gets the filled description."""
    motions = []

    def answerer(body: dict[str, Any], index: int) -> str:
        if "You describe robot motion" in body["messages"][0]["content"]:
            motions.append(body)
            return UNFILLED if len(motions) == 1 else f"Filled now.\n{MOTION}"
        return markdown(HOP)

    with FakeOpenAIServer(answerer=answerer) as server:
        cfg = _l2r("task=hopper", "llm=openai", "llm.model=fake", f"llm.base_url={server.base_url}",
                   f"llm.cache_dir={tmp_path / 'cache'}", "loop.generations=1", "loop.samples=1",
                   "final.enabled=false")
        run(cfg, tmp_path / "run", interactive=False)
        requests = [r.body for r in server.chat_requests]
    assert len(motions) == 2 and len(requests) == 3
    assert motions[0]["seed"] != motions[1]["seed"]  # a new request, not the cached answer
    assert (tmp_path / "run" / "gen_000" / "motion.md").read_text().startswith("Filled now.")
    assert "[NUM: value]" not in requests[2]["messages"][1]["content"]
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").open()]
    [asked] = [e for e in events if e["event"] == "stage_reasked"]
    assert asked["attempt"] == 1 and "[NUM: value]" in asked["unfilled"]
