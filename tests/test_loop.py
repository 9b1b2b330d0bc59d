"""The whole loop on real MuJoCo with real SB3 training and real worker processes."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli import run
from rewardgen.store import RunStore
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = tiny_config("llm=offline")
    summary = run(cfg, run_dir, interactive=False)
    return cfg, run_dir, summary


def test_offline_run_end_to_end(offline_run):
    cfg, run_dir, summary = offline_run
    assert summary["generations"] == 2 and summary["candidates"] == 4
    assert summary["statuses"].get("ok", 0) >= 1
    assert summary["best"] is not None
    assert (run_dir / "best" / "reward.py").is_file()
    assert (run_dir / "best" / "policy.zip").is_file()
    for gen in range(2):
        assert (run_dir / f"gen_{gen:03d}" / "messages.json").is_file()
        for cand in range(2):
            cand_dir = run_dir / f"gen_{gen:03d}" / f"cand_{cand:02d}"
            assert (cand_dir / "response.md").is_file()
            result = json.loads((cand_dir / "result.json").read_text())
            assert result["status"] in ("ok", "rejected", "failed", "timeout")
    # generation 1's prompt carries generation 0's reflection
    messages = json.loads((run_dir / "gen_001" / "messages.json").read_text())
    assert any("task_score" in m["content"] for m in messages)
    final = json.loads((run_dir / "final" / "summary.json").read_text())
    assert set(final["variants"]) == {"generated", "native", "sparse"} or set(final["variants"]) == {"generated", "native"}
    assert final["variants"]["native"]["n_ok"] == 1
    events = [e["event"] for e in RunStore.open(run_dir).events()]
    assert events[0] == "run_started" and "search_done" in events and "final_summary" in events
    assert "<table" in (run_dir / "report.html").read_text()  # the report is made at the end
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["llm_provider"] == "offline"
    assert "offline" in summary["llm_usage"].get("proposer", "offline")


def test_resume_repeats_nothing(offline_run):
    cfg, run_dir, _ = offline_run
    store = RunStore.open(run_dir)
    before = [e for e in store.events() if e["event"] in ("candidate_done", "final_done", "llm_request")]
    run(cfg, run_dir, interactive=False)
    after = [e for e in store.events() if e["event"] in ("candidate_done", "final_done", "llm_request")]
    assert after == before
