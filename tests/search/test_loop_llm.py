"""The loop driven by a real HTTP server speaking the OpenAI API, through the real openai client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rewardgen.cli.app import run
from tests.fakes.openai_server import BROKEN_CODE, FakeOpenAIServer, Reply, markdown, rate_limited
from tests.helpers import tiny_config

PENDULUM_CODE = """import numpy as np


def compute_reward(state, action, prev_state):
    temperature = 5.0
    upright = float(np.exp(-temperature * abs(state.pole_angle)))
    centred = -0.1 * abs(state.cart_position)
    return upright + centred, {"upright": upright, "centred": centred}
"""
HOSTILE_CODE = """import os


def compute_reward(state, action, prev_state):
    os.system("touch /tmp/pwned")
    return 0.0, {}
"""


def pendulum_answerer(body: dict[str, Any], index: int) -> str:
    return markdown(PENDULUM_CODE, prose=f"Sample {index}: keep the pole upright.")


@pytest.fixture
def server():
    with FakeOpenAIServer(answerer=pendulum_answerer) as srv:
        yield srv


def _cfg(server: FakeOpenAIServer, tmp_path, *extra: str):
    return tiny_config(
        "llm=openai",
        "llm.model=fake-model",
        f"llm.base_url={server.base_url}",
        f"llm.cache_dir={tmp_path / 'cache'}",
        "llm.backoff_initial_s=0.01",
        "llm.backoff_max_s=0.05",
        "final.enabled=false",
        "loop.samples=4",
        *extra,
    )


def test_llm_loop_turns_bad_answers_into_reasons_for_the_next_prompt(server, tmp_path):
    server.script(
        rate_limited(),
        Reply(contents=[
            markdown(PENDULUM_CODE),
            markdown(BROKEN_CODE),
            "I would reward keeping the pole upright.",
            markdown(HOSTILE_CODE),
        ]),
    )
    summary = run(_cfg(server, tmp_path), tmp_path / "run", interactive=False)
    assert len(server.chat_requests) == 3  # 429 + gen 0 + gen 1
    gen0 = [json.loads((tmp_path / "run" / "gen_000" / f"cand_{i:02d}" / "result.json").read_text())
            for i in range(4)]
    assert [r["status"] for r in gen0] == ["ok", "rejected", "rejected", "rejected"]
    assert "syntax error" in gen0[1]["reason"]
    assert "no code defining compute_reward" in gen0[2]["reason"]
    assert "import of 'os' is not allowed" in gen0[3]["reason"]
    assert gen0[0]["component_stats"].keys() == {"upright", "centred"}
    # the second request carries the best code, its reflection and every failure reason
    second = server.chat_requests[2].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert "upright: [" in second[3]["content"] and "task_score" in second[3]["content"]
    for reason in ("syntax error", "no code defining", "import of 'os'"):
        assert reason in second[3]["content"]
    assert summary["llm_usage"]["prompt_tokens"] > 0
    assert summary["best"]["candidate"].startswith("gen_")


def test_rerun_with_same_config_is_served_from_the_cache(server, tmp_path):
    cfg = _cfg(server, tmp_path, "loop.generations=1")
    run(cfg, tmp_path / "first", interactive=False)
    sent = len(server.chat_requests)
    summary = run(cfg, tmp_path / "second", interactive=False)
    assert len(server.chat_requests) == sent
    assert summary["llm_usage"]["cached_answers"] == 4


def test_dead_server_is_one_clear_error_and_keeps_the_run_dir(tmp_path):
    with FakeOpenAIServer() as srv:
        base_url = srv.base_url
    cfg = tiny_config("llm=openai", f"llm.base_url={base_url}", f"llm.cache_dir={tmp_path}",
                      "llm.max_retries=2", "llm.backoff_initial_s=0.01", "llm.backoff_max_s=0.02")
    from rewardgen.errors import LLMError

    with pytest.raises(LLMError, match="unreachable after"):
        run(cfg, tmp_path / "run", interactive=False)
    assert (tmp_path / "run" / "manifest.json").is_file()


def _long_pendulum(tag: str, first: str, second: str) -> str:
    """A valid pendulum reward far longer than the old 600-character cut, named components."""
    notes = "\n".join(f"    # {tag} note {k}: weigh the pole angle against the cart drift."
                      for k in range(40))
    return (f"import numpy as np\n\n\ndef compute_reward(state, action, prev_state):\n{notes}\n"
            f"    {first} = float(np.exp(-5.0 * abs(state.pole_angle)))\n"
            f"    {second} = -0.1 * abs(state.cart_position)\n"
            f"    return {first} + {second}, {{\"{first}\": {first}, \"{second}\": {second}}}\n")


def test_a_preference_for_the_lower_fitness_candidate_steers_prompt_best_and_final(tmp_path):
    """ICPL: the person's choice, not the fitness, is the next reward to improve, the reflected
    one and (with feedback.preference_best=preferred) the run's best (best/ and the final phase
    retrain it); both codes reach the prompt whole, the bad example with its training feedback,
    and no task score or success rate is shown. The person ranks after seeing generation 0 (the
    run is continued with a ranking)."""
    codes = [_long_pendulum("A", "upright", "centred"), _long_pendulum("B", "balance", "drift")]
    assert min(map(len, codes)) > 2000
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(answerer=pendulum_answerer) as server:
        server.script(Reply(contents=[markdown(codes[0], prose="Sample A."),
                                      markdown(codes[1], prose="Sample B.")]))
        run(_cfg(server, tmp_path, "loop.samples=2", "loop.generations=1"), run_dir,
            interactive=False)
        fitness = [json.loads((run_dir / f"gen_000/cand_{i:02d}/result.json").read_text())["fitness"]
                   for i in (0, 1)]
        # prefer the candidate fitness would not pick (on a tie, fitness picks the first)
        preferred, other = (1, 0) if fitness[1] <= fitness[0] else (0, 1)
        ranking = tmp_path / "ranking.txt"
        ranking.write_text(f"gen_000/cand_{preferred:02d}\ngen_000/cand_{other:02d}\n")
        server.script(Reply(contents=[markdown(BROKEN_CODE), markdown(BROKEN_CODE)]))
        summary = run(_cfg(server, tmp_path, "loop.samples=2", "loop.generations=2",
                           "feedback.preference=file", f"feedback.preference_file={ranking}",
                           "feedback.preference_samples=2", "feedback.preference_best=preferred",
                           "final.enabled=true", "final.baselines=[]"), run_dir, interactive=False)
        second = server.chat_requests[-1].body["messages"]
    label = f"gen_000/cand_{preferred:02d}"
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert f"Sample {'AB'[preferred]}." in second[2]["content"]
    assert codes[preferred] in second[2]["content"]  # the preferred reward, whole
    feedback = second[3]["content"]
    names = [("upright", "centred"), ("balance", "drift")]
    assert f"{names[preferred][0]}: [" in feedback  # its reward reflection
    bad = feedback.index(f"Least preferred reward (gen_000/cand_{other:02d})")
    assert feedback.index(f"{names[other][0]}: [") > bad  # the bad example's own feedback
    assert "Its training feedback:" in feedback[bad:]
    assert "task_score" not in feedback and "success_rate" not in feedback  # ICPL hides them
    assert "task score" not in feedback
    assert "Preference (file)" in feedback and f"Most preferred: {label}" in feedback
    assert codes[other] in feedback  # the least preferred reward, whole
    assert json.loads((run_dir / "gen_000" / "ranking.json").read_text())["ranking"][0] == label
    assert json.loads((run_dir / "best" / "origin.json").read_text())["candidate"] == label
    assert (run_dir / "best" / "reward.py").read_text() == codes[preferred]
    assert summary["best"]["candidate"] == label
    assert json.loads((run_dir / "final" / "summary.json").read_text())["best"] == label
