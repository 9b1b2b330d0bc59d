"""method=clip and method=vlm_preference end to end: config → isolated worker → run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardgen.cli import run
from rewardgen.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAIServer, preference_answerer
from tests.helpers import tiny_config
from tests.rewards.test_clip import tiny_model_config
from tests.rewards.test_preference import pole_left

pytest.importorskip("open_clip")

RENDER = ["method.render.width=32", "method.render.height=32"]


def _check_run_dir(root: Path, method: str) -> dict:
    summary = json.loads((root / "summary.json").read_text())
    assert summary["method"] == method and summary["statuses"] == {"ok": 1}, summary
    assert summary["best"]["fitness"] is not None
    events = [json.loads(line)["event"] for line in (root / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert "candidate_done" in events and "best_updated" in events
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["method"] == method
    for name in ("result.json", "policy.zip", "train/job.json", "evaluation/job.json",
                 "vision.json"):
        assert (root / "gen_000" / "cand_00" / name).is_file(), name
    assert (root / "best" / "policy.zip").is_file()
    return summary


def test_clip_method_trains_end_to_end(tmp_path: Path) -> None:
    model = tiny_model_config(tmp_path)
    cfg = tiny_config(
        "method=clip", *RENDER, f"method.clip.model={model}", "method.clip.pretrained=null",
        "method.clip.goal_prompts=[a pole balanced upright]",
        "method.clip.baseline_prompts=[a pole]", "train.timesteps=128",
    )
    run(cfg, tmp_path / "run", False)
    _check_run_dir(tmp_path / "run", "clip")
    job = json.loads((tmp_path / "run" / "gen_000" / "cand_00" / "train" / "job.json").read_text())
    assert job["reward_kind"] == "clip" and job["vision"]["clip"]["alpha"] == 0.5


def test_vlm_preference_method_trains_end_to_end(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(pole_left)) as server:
        cfg = tiny_config(
            "method=vlm_preference", *RENDER, "llm=openai", f"llm.base_url={server.base_url}",
            "llm.api_key=secret-test-key", "llm.model=fake-vlm", f"llm.cache_dir={tmp_path}/c",
            "method.preference.first_round_after=32", "method.preference.steps_between_rounds=64",
            "method.preference.pairs_per_round=4", "method.preference.budget=8",
            "method.preference.max_epochs=5", "method.preference.image_size=16",
            "train.timesteps=128",
        )
        run(cfg, tmp_path / "run", False)
        assert server.chat_requests, "the worker never reached the VLM server"
        assert all(r.headers["authorization"] == "Bearer secret-test-key"
                   for r in server.chat_requests)
    _check_run_dir(tmp_path / "run", "vlm_preference")
    for path in (tmp_path / "run").rglob("*.json"):
        assert "secret-test-key" not in path.read_text(), path


def test_vision_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no vision.goal_prompts"):
        run(tiny_config("method=clip"), tmp_path / "a", False)
    cfg = tiny_config("method=vlm_preference", "llm=openai", "llm.base_url=null",
                      "llm.api_key=null")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OPENAI_API_KEY", raising=False)
        mp.delenv("OPENAI_BASE_URL", raising=False)
        with pytest.raises(ConfigError, match="needs an API key or a server"):
            run(cfg, tmp_path / "b", False)
