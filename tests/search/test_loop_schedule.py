"""loop.schedule=halving end to end: real search, real training, real pruning, on the local pool."""

from __future__ import annotations

import json
import logging

from rewardgen.cli.app import run
from rewardgen.runs.store import RunStore
from tests.helpers import tiny_config


def test_halving_prunes_and_every_reader_sees_it(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="rewardgen.reporting.terminal")  # the terminal's lines
    # reacher: a continuous fitness, so candidates rarely tie at a rung. Evaluation seeds are
    # secret (drawn per evaluation), so which candidate leads is not repeatable: with 4 per
    # generation one of the later three is pruned unless each leads every rung (p < 1/500).
    cfg = tiny_config("llm=offline", "task=reacher", "loop.schedule=halving", "executor.workers=1",
                      "loop.samples=4",
                      "train.timesteps=1000", "train.eval_freq=250", "train.max_episode_steps=50",
                      "++rl.hyperparams.n_steps=250", "++rl.hyperparams.batch_size=50",
                      "final.enabled=false", "device=cpu")
    summary = run(cfg, tmp_path, interactive=False)
    terminal = caplog.text

    assert summary["statuses"].get("pruned", 0) >= 1, summary["statuses"]
    assert summary["env_steps"] < 8 * 1000  # pruned candidates stopped short of the budget
    pruned = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("gen_*/cand_*/result.json"))
              if json.loads(p.read_text())["status"] == "pruned"]
    for result in pruned:
        assert result["reason"].startswith("stopped early by successive halving at rung ")
        assert result["env_steps"] < 1000 and result["evaluations"]
    assert "pruned" in terminal and "stopped early by successive" in terminal
    assert "pruned" in (tmp_path / "report.html").read_text()
    gen0 = [p.parent.name for p in sorted(tmp_path.glob("gen_000/cand_*/result.json"))
            if json.loads(p.read_text())["status"] == "pruned"]
    prompt = (tmp_path / "gen_001" / "messages.json").read_text()
    for name in gen0:  # the next prompt names generation 0's pruned candidates as such
        assert f"gen_000/{name}: pruned: stopped early by successive halving" in prompt

    # Resume keeps every decision: nothing trains again, pruned stays pruned.
    store = RunStore.open(tmp_path)
    before = [e for e in store.events() if e["event"] == "candidate_done"]
    run(cfg, tmp_path, interactive=False)
    assert [e for e in store.events() if e["event"] == "candidate_done"] == before
