"""method=progress: prompts for every task, parsing, and whole runs (loopback server, replay)."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli.app import run
from rewardgen.config import ProgressMethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods import TaskPromptInfo, make_method
from rewardgen.prompts import estimate_tokens
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord
from rewardgen.tasks.spec import load_task, task_names
from tests.fakes.openai_server import FakeOpenAIServer, markdown
from tests.helpers import compose_config, tiny_config

PENDULUM_PROGRESS = """import numpy as np


def progress(state):
    return float(np.clip(1.0 - abs(state.pole_angle) / 0.2, 0.0, 1.0))
"""
BACKFLIP_PROGRESS = """import numpy as np


def progress(state):
    rotation = float(np.clip(-state.torso_angle / (2 * np.pi), 0.0, 1.0))
    height = float(np.clip((state.torso_height - 0.7) / 1.0, 0.0, 1.0))
    return {"rotation": rotation, "height": height}
"""


def _cfg(**kw) -> ProgressMethodConfig:
    return ProgressMethodConfig(**kw)


@pytest.mark.parametrize("name", [n for n in task_names() if load_task(n).sparse_reward])
def test_prompts_render_for_every_task_with_a_sparse_reward(name):
    task = load_task(name)
    method = make_method(_cfg(), task, TaskPromptInfo.from_task(task))
    result = CandidateResult(status="ok", fitness=1.0, component_stats={"bonus": [1.0, 0.5]},
                             evaluations=[{"fitness": 1.0, "length": 10}])
    history = [[CandidateRecord(0, 0, "def progress(state):\n    return 0.5\n", result)]]
    first = method.messages([], None, 100)
    assert "def progress(state: State) -> float:" in first[0]["content"]
    assert task.sparse_reward in first[1]["content"]
    later = method.messages(history, "h" * 20_000, 100)
    assert [m["role"] for m in later] == ["system", "user", "assistant", "user"]
    assert "bonus: [1.00, 0.50]" in later[3]["content"]
    total = sum(estimate_tokens(m["content"]) for m in later)
    assert total < min(8_000, tiny_config().llm.context_tokens)


def test_method_needs_a_sparse_reward_and_valid_options():
    task = load_task("hopper")
    info = TaskPromptInfo.from_task(task)
    bare = type(task)(**{**task.__dict__, "sparse_reward": None})
    with pytest.raises(ConfigError, match="task 'hopper' has no sparse_reward"):
        make_method(_cfg(), bare, info)
    with pytest.raises(ConfigError, match="method.bins must be at least 1"):
        make_method(_cfg(bins=0), task, info)
    method = make_method(_cfg(bonus="hash"), task, info)
    assert method.reward_options(method.cfg)["bonus"] == "hash"  # type: ignore[attr-defined]
    assert method.parse(markdown(PENDULUM_PROGRESS)).source is not None
    assert "no code defining progress()" in method.parse("Progress is hard to say.").reason


def test_progress_defaults_to_the_papers_handful_of_samples():
    cfg = compose_config(["method=progress"])
    assert (cfg.loop.samples, cfg.loop.generations) == (4, 1)  # 80 / 20: Eureka's budget / 20
    assert (cfg.method.bonus, cfg.method.bins) == ("count", 10)
    search = compose_config(["method=progress", "loop.samples=16", "loop.generations=5"])
    assert (search.loop.samples, search.loop.generations) == (16, 5)


def _server_run(tmp_path, task: str, code: str, *extra: str) -> tuple[dict, list]:
    with FakeOpenAIServer(answerer=lambda body, i: markdown(code)) as server:
        cfg = tiny_config("method=progress", f"task={task}", "llm=openai", "llm.model=fake",
                          f"llm.base_url={server.base_url}", f"llm.cache_dir={tmp_path / 'c'}",
                          "final.enabled=false", *extra)
        summary = run(cfg, tmp_path / "run", interactive=False)
        return summary, [r.body["messages"] for r in server.chat_requests]


def test_progress_runs_on_inverted_pendulum_with_the_loopback_server(tmp_path):
    summary, requests = _server_run(tmp_path, "inverted_pendulum", PENDULUM_PROGRESS)
    assert summary["statuses"] == {"ok": 4}
    assert len(requests) == 2 and "bonus: [" in requests[1][3]["content"]
    job = json.loads((tmp_path / "run" / "gen_001" / "cand_00" / "train.job.json").read_text())
    assert job["reward_kind"] == "progress" and job["reward_options"]["bonus"] == "count"


def test_progress_runs_on_hopper_backflip_with_named_terms(tmp_path):
    summary, _ = _server_run(tmp_path, "hopper_backflip", BACKFLIP_PROGRESS, "loop.generations=1",
                             "method.bonus=dense")
    assert summary["statuses"] == {"ok": 2}
    result = json.loads((tmp_path / "run" / "gen_000" / "cand_00" / "result.json").read_text())
    assert {"progress", "sparse"} <= set(result["component_stats"])


def test_progress_runs_with_llm_replay(tmp_path):
    replay = tmp_path / "replay"
    replay.mkdir()
    for k in range(2):
        (replay / f"gen_000.answer_{k:02d}.md").write_text(markdown(PENDULUM_PROGRESS))
    cfg = tiny_config("method=progress", "llm=replay", f"llm.replay_dir={replay}",
                      "loop.generations=1", "final.enabled=false", "method.bonus=hash")
    summary = run(cfg, tmp_path / "run", interactive=False)
    assert summary["statuses"] == {"ok": 2}
    assert "def progress(state: State)" in (replay / "gen_000.prompt.md").read_text()


def test_progress_runs_offline_on_the_seed_term_baseline(tmp_path):
    """llm=offline (or llm=auto without a key) trains progress functions, not rejections."""
    cfg = tiny_config("method=progress", "llm=auto", "loop.generations=1", "final.enabled=false")
    summary = run(cfg, tmp_path / "run", interactive=False)
    assert summary["statuses"] == {"ok": 2}, summary
    best = (tmp_path / "run" / "best" / "reward.py").read_text()
    assert "def progress(state)" in best and "offline baseline" in best
