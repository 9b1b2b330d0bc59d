"""Text2Reward: the Env abstraction, the few-shot library, prompts, and whole runs (server, replay)."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli import run
from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.methods.text2reward import env_abstraction, load_library, nearest, similarity
from rewardgen.prompts import estimate_tokens
from rewardgen.results import CandidateResult
from rewardgen.store import CandidateRecord
from rewardgen.tasks import load_task, task_names
from tests.fakes.openai_server import GOOD_CODE, FakeOpenAIServer, markdown
from tests.helpers import tiny_config

PENDULUM_CODE = """import numpy as np


def compute_reward(state, action, prev_state):
    upright_weight = 1.0
    upright = upright_weight * float(np.exp(-5.0 * abs(state.pole_angle)))
    return upright, {"upright": upright}
"""


def _cfg(**kw) -> MethodConfig:
    return MethodConfig(name="text2reward", prompt_dir="text2reward", **kw)


def _library(root, entries: dict[str, str]):
    for name, description in entries.items():
        (root / name).mkdir(parents=True)
        (root / name / "reward.py").write_text(f"def compute_reward(state, action, prev_state):\n"
                                               f"    return 0.0, {{}}  # {name}\n")
        (root / name / "meta.json").write_text(json.dumps({"task": name, "description": description}))
    return root


def test_env_abstraction_names_bodies_and_actions():
    text = env_abstraction(load_task("hopper"))
    assert text.startswith("class Env:")
    assert "Bodies: torso, thigh, leg, foot." in text
    assert "action[0]: thigh_joint (force or torque = 200 * action, action in [-1, 1])" in text


def test_few_shot_picks_the_most_similar_library_entries(tmp_path):
    lib = _library(tmp_path / "lib", {
        "hopper": "make the hopper hop forward as fast as possible",
        "ant": "make the ant quadruped walk forward",
        "reacher": "move the arm tip to the target",
    })
    task = load_task("hopper_backflip")
    picked = nearest(load_library(lib), task, 2)
    assert [e.task for e in picked] == ["hopper", "ant"]
    assert similarity("pole cart up", "the pole cart down") == pytest.approx(0.5)
    method = make_method(_cfg(mode="few_shot", library_dir=str(lib), few_shot_k=1), task,
                         TaskPromptInfo.from_task(task))
    prompt = method.messages([], None, 100)[1]["content"]
    assert "Task (hopper): make the hopper hop forward" in prompt and "# hopper" in prompt
    assert "# ant" not in prompt


def test_bad_modes_and_libraries_are_config_errors(tmp_path):
    task = load_task("hopper")
    info = TaskPromptInfo.from_task(task)
    with pytest.raises(ConfigError, match="method.mode='two_shot' is not one of"):
        make_method(_cfg(mode="two_shot"), task, info)
    with pytest.raises(ConfigError, match="few_shot needs method.library_dir"):
        make_method(_cfg(mode="few_shot"), task, info)
    with pytest.raises(ConfigError, match="is not a folder"):
        make_method(_cfg(mode="few_shot", library_dir=str(tmp_path / "nope")), task, info)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no <entry>/reward.py"):
        load_library(tmp_path / "empty")


@pytest.mark.parametrize("name", task_names())
def test_prompts_render_for_every_task_within_budget(name):
    task = load_task(name)
    method = make_method(_cfg(), task, TaskPromptInfo.from_task(task))
    result = CandidateResult(status="ok", fitness=1.0, component_stats={"a": [1.0, 2.0]},
                             evaluations=[{"fitness": 1.0, "length": 10}])
    history = [[CandidateRecord(0, 0, "def compute_reward(s, a, p):\n    return 0.0, {}\n", result),
                CandidateRecord(0, 1, None, CandidateResult(status="failed", reason="x" * 9000))]]
    budget = tiny_config().llm.context_tokens
    for messages in (method.messages([], None, 100), method.messages(history, "h" * 20_000, 100)):
        assert "class Env:" in messages[1]["content"] and "class State" in messages[1]["content"]
        total = sum(estimate_tokens(m["content"]) for m in messages)
        assert total < min(8_000, budget), f"{name}: prompt of ~{total} tokens"


def _server_cfg(server, tmp_path, task: str, *extra: str):
    return tiny_config(
        "method=text2reward", f"task={task}", "llm=openai", "llm.model=fake-model",
        f"llm.base_url={server.base_url}", f"llm.cache_dir={tmp_path / 'cache'}",
        "final.enabled=false", *extra,
    )


def test_text2reward_refines_from_a_feedback_file_on_inverted_pendulum(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("The pole wobbles; keep the cart near the centre too.")
    with FakeOpenAIServer(answerer=lambda body, i: markdown(PENDULUM_CODE)) as server:
        cfg = _server_cfg(server, tmp_path, "inverted_pendulum", "feedback.mode=file",
                          f"feedback.human_file={notes}")
        summary = run(cfg, tmp_path / "run", interactive=False)
        first = server.chat_requests[0].body["messages"]
        second = server.chat_requests[1].body["messages"]
    assert "class Env:" in first[1]["content"] and "action[0]: slide (force or torque = 100 * action" in first[1]["content"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert "Feedback from a person who watched the trained policy" in second[3]["content"]
    assert "keep the cart near the centre" in second[3]["content"]
    assert summary["statuses"] == {"ok": 4}


def test_text2reward_runs_on_hopper_with_the_loopback_server(tmp_path):
    with FakeOpenAIServer(answerer=lambda body, i: markdown(GOOD_CODE)) as server:
        summary = run(_server_cfg(server, tmp_path, "hopper", "loop.generations=1"),
                      tmp_path / "run", interactive=False)
    assert summary["statuses"] == {"ok": 2}
    assert summary["best"]["fitness"] is not None


def test_text2reward_runs_with_llm_replay(tmp_path):
    replay = tmp_path / "replay"
    replay.mkdir()
    for k in range(2):
        (replay / f"gen_000.answer_{k:02d}.md").write_text(markdown(GOOD_CODE))
    cfg = tiny_config("method=text2reward", "task=half_cheetah", "llm=replay",
                      f"llm.replay_dir={replay}", "loop.generations=1", "final.enabled=false")
    summary = run(cfg, tmp_path / "run", interactive=False)
    assert summary["statuses"] == {"ok": 2}
    assert "class Env:" in (replay / "gen_000.prompt.md").read_text()
