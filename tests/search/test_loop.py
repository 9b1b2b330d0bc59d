"""The whole loop on real MuJoCo with real SB3 training and real worker processes."""

from __future__ import annotations

import json

import pytest

from rewardgen.cli.app import run
from rewardgen.runs.store import RunStore
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
    # Fresh final seeds (seed + 1000), the same for every reward; never the search's seed 0.
    assert final["seeds"] == [1000] and final["search_seeds"] == [0]
    assert sorted(p.name for p in (run_dir / "final").iterdir() if p.is_dir()) == sorted(
        f"{name}_seed1000" for name in final["variants"])
    assert summary["seeds"] == {"search": [0], "final": [1000]}
    for v in final["variants"].values():  # one seed: an IQM, but no interval, and why
        assert v["fitness_iqm"] == v["fitness_mean"] and v["fitness_iqm_ci"] is None
        assert "1 seed" in v["fitness_iqm_ci_reason"]
    poi = final["probability_of_improvement"]["generated_over_native"]
    assert poi["value"] in (0.0, 0.5, 1.0) and poi["ci"] is None
    assert (final["human_normalised_score"] is None) != (final["human_normalised_reason"] is None)
    assert summary["final"] == final
    events = [e["event"] for e in RunStore.open(run_dir).events()]
    assert events[0] == "run_started" and "search_done" in events and "final_summary" in events
    html = (run_dir / "report.html").read_text()
    assert "<table" in html  # the report is made at the end
    assert "fitness IQM [95% CI]" in html and "P(generated &gt; native)" in html
    assert "fresh seeds 1000" in html and "no 95% CI with 1 seed: needs at least 5" in html
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
