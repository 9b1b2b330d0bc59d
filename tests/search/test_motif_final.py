"""Motif's final phase: its reward and the env rewards alone over fresh seeds; a resume of it
trains nothing that finished."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rewardgen.config import as_sandbox_config
from rewardgen.executors import make_executor
from rewardgen.jobs import training_job
from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import RunStore
from rewardgen.search.motif_final import motif_final
from rewardgen.tasks.spec import load_task
from tests.helpers import tiny_config


def test_finished_final_trainings_are_read_not_retrained(tmp_path: Path) -> None:
    cfg = tiny_config(
        "method=motif",
        "loop.samples=1",
        "loop.generations=1",
        "task=hopper",
        "final.n_seeds=1",
        "final.baselines=[native,sparse]",
    )
    task = load_task("hopper")
    store = RunStore.create(tmp_path / "run", {"task": "hopper", "method": "motif", "seed": 0})
    fitness = {"generated": 2.0, "native": 1.0, "sparse": 0.5}
    for name, value in fitness.items():
        result = CandidateResult(status="ok", fitness=value, seed=1000)
        atomic_write_json(store.final_dir / f"{name}_seed1000" / "result.json", result.to_dict())
    job = dataclasses.replace(
        training_job(cfg, str(tmp_path / "cand"), None, "motif"),
        reward_options={"env_reward": "sparse"},
    )
    executor = make_executor(cfg.executor, as_sandbox_config(cfg.sandbox), cfg.rl, "cpu")
    summary = motif_final(cfg, store, task, job, executor, RunUI(enabled=False))
    assert set(summary["variants"]) == {"generated", "native", "sparse"}
    assert {k: v["fitness_mean"] for k, v in summary["variants"].items()} == fitness
    assert summary["motif_env_reward"] == "sparse" and summary["seeds"] == [1000]
    assert summary["human_normalised_score"] == (2.0 - 0.5) / (1.0 - 0.5)
    saved = json.loads((store.final_dir / "summary.json").read_text())
    assert saved["variants"]["native"]["n_ok"] == 1
    events = [json.loads(x) for x in (store.root / "events.jsonl").read_text().splitlines()]
    assert all(e.get("recovered") for e in events if e["event"] == "final_done")
    assert not (store.final_dir / "generated_seed1000" / "train").exists()  # nothing retrained
