"""Text2Reward: the Env abstraction, the few-shot library (never the task's own reward; similarity
by the server's embeddings), the paper's defaults, refinement rounds, and whole runs."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli.app import run
from rewardgen.config import Text2RewardMethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.methods.text2reward import env_abstraction, load_library, nearest, similarity
from rewardgen.prompts import estimate_tokens
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord
from rewardgen.tasks.spec import load_task, task_names
from tests.fakes.openai_server import GOOD_CODE, FakeOpenAIServer, markdown
from tests.helpers import compose_config, tiny_config

PENDULUM_CODE = """import numpy as np


def compute_reward(state, action, prev_state):
    upright_weight = 1.0
    upright = upright_weight * float(np.exp(-5.0 * abs(state.pole_angle)))
    return upright, {"upright": upright}
"""


def _cfg(**kw) -> Text2RewardMethodConfig:
    return Text2RewardMethodConfig(**kw)


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


def test_few_shot_never_shows_the_target_tasks_own_reward(tmp_path):
    lib = _library(tmp_path / "lib", {
        "hopper_backflip": "make the hopper do a backflip",  # the target task itself
        "hopper": "make the hopper hop forward as fast as possible",
        "ant": "make the ant quadruped walk forward",
    })
    task = load_task("hopper_backflip")
    picked = nearest(load_library(lib), task, 3)
    assert [e.task for e in picked] == ["hopper", "ant"]
    method = make_method(_cfg(mode="few_shot", library_dir=str(lib)), task,
                         TaskPromptInfo.from_task(task))
    prompt = method.messages([], None, 100)[1]["content"]
    assert "# hopper_backflip" not in prompt and "Task (hopper_backflip)" not in prompt
    assert "# hopper\n" in prompt and "# ant" not in prompt  # k=1 by default, as in the paper


def _llm(server, tmp_path):
    return tiny_config("llm=openai", "llm.model=fake", f"llm.base_url={server.base_url}",
                       f"llm.cache_dir={tmp_path / 'c'}").llm


def test_few_shot_similarity_through_the_servers_embeddings(tmp_path):
    lib = _library(tmp_path / "lib", {
        "hopper_backflip": "make the hopper do a backflip",
        "hopper": "make the hopper hop forward as fast as possible",
        "reacher": "move the arm tip to the target",
    })
    task = load_task("hopper_backflip")
    info = TaskPromptInfo.from_task(task)
    with FakeOpenAIServer() as server:
        method = make_method(_cfg(mode="few_shot", library_dir=str(lib)), task, info,
                             _llm(server, tmp_path))
        [request] = server.embedding_requests
        texts = request.body["input"]
        assert request.body["model"] == "text-embedding-3-small"
        assert texts[0].startswith("hopper backflip ") and len(texts) == 3  # query + 2 others
        assert not any("do a backflip" in t for t in texts[1:])
        assert [e.task for e in method.examples] == ["hopper"]  # type: ignore[attr-defined]
        del server.routes[("POST", "/v1/embeddings")]  # a server without embeddings
        tokens = make_method(_cfg(mode="few_shot", library_dir=str(lib)), task, info,
                             _llm(server, tmp_path))
        assert [e.task for e in tokens.examples] == ["hopper"]  # type: ignore[attr-defined]
        with pytest.raises(ConfigError, match="similarity=embeddings: the server's embeddings"):
            make_method(_cfg(mode="few_shot", library_dir=str(lib), similarity="embeddings"),
                        task, info, _llm(server, tmp_path))
    with pytest.raises(ConfigError, match="similarity=embeddings needs an OpenAI-compatible"):
        make_method(_cfg(mode="few_shot", library_dir=str(lib), similarity="embeddings"), task,
                    info)


def test_text2reward_defaults_are_the_papers_one_sample_one_generation():
    cfg = compose_config(["method=text2reward"])
    assert (cfg.loop.samples, cfg.loop.generations, cfg.method.few_shot_k) == (1, 1, 1)
    assert cfg.method.similarity == "auto"
    search = compose_config(["method=text2reward", "loop.samples=16", "loop.generations=5"])
    assert (search.loop.samples, search.loop.generations) == (16, 5)  # our search, on request
    eureka = compose_config(["method=eureka"])
    assert (eureka.loop.samples, eureka.loop.generations) == (16, 5)


def _round(g: int) -> CandidateRecord:
    code = f"def compute_reward(state, action, prev_state):\n    return {g}.0, {{'term{g}': {g}.0}}\n"
    result = CandidateResult(status="ok", fitness=float(g), component_stats={f"term{g}": [1.0, 2.0]},
                             evaluations=[{"fitness": float(g), "length": 10}])
    return CandidateRecord(g, 0, code, result, markdown(code))


def test_refinement_keeps_every_earlier_round_in_the_conversation():
    task = load_task("inverted_pendulum")
    method = make_method(_cfg(), task, TaskPromptInfo.from_task(task))
    history: list[list[CandidateRecord]] = []
    assert [m["role"] for m in method.messages(history, None, 100)] == ["system", "user"]
    for g in range(3):  # as the loop calls it: after each generation, with that round's feedback
        history.append([_round(g)])
        messages = method.messages(history, f"The person on round {g}: lean less.", 100)
    assert [m["role"] for m in messages] == ["system", "user", *["assistant", "user"] * 3]
    for g in range(3):
        assert f"return {g}.0, {{'term{g}'" in messages[2 + 2 * g]["content"]
        seen = messages[3 + 2 * g]["content"]
        assert f"term{g}: [1.00, 2.00]" in seen and f"The person on round {g}: lean less." in seen
    failed = CandidateRecord(3, 0, "def compute_reward(s, a, p):\n    return 1 / 0, {}\n",
                             CandidateResult(status="failed", reason="during training: boom"))
    messages = method.messages([*history, [failed]], None, 100)
    assert "This reward function did not train:" in messages[-1]["content"]
    assert "during training: boom" in messages[-1]["content"] and len(messages) == 10


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


def test_text2reward_few_shot_run_asks_the_loopback_servers_embeddings(tmp_path):
    lib = _library(tmp_path / "lib", {
        "inverted_pendulum": "keep the pole on the cart upright",  # the task itself: left out
        "reacher": "move the arm tip to the target",
        "cartpole": "balance the pole on the cart",
    })
    with FakeOpenAIServer(answerer=lambda body, i: markdown(PENDULUM_CODE)) as server:
        cfg = _server_cfg(server, tmp_path, "inverted_pendulum", "method.mode=few_shot",
                          f"method.library_dir={lib}", "loop.generations=1", "loop.samples=1")
        summary = run(cfg, tmp_path / "run", interactive=False)
        prompt = server.chat_requests[0].body["messages"][1]["content"]
        assert len(server.embedding_requests) == 1
    assert summary["statuses"] == {"ok": 1}
    assert "Task (cartpole): balance the pole on the cart" in prompt
    assert "# inverted_pendulum" not in prompt and "# reacher" not in prompt


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
