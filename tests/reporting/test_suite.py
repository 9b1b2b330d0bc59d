"""The Eureka-style evaluation suite: presets compose, and the tiny suite runs for real on CPU."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rewardgen.config import register_configs
from rewardgen.reporting.sweep import COSTS, METRICS
from rewardgen.resources import resource_dir

BIN = Path(sys.executable).parent
TINY_TASKS = ["inverted_pendulum", "inverted_double_pendulum"]


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_paper_sized_suite_has_final_phase_with_both_baselines_and_every_task():
    cfg = _compose("experiment=eureka_suite")
    tasks = cfg.hydra.sweeper.params["task"].split(",")
    assert len(tasks) == 6 and cfg.hydra.sweeper.params["seed"] == "0,1,2,3,4"
    for task in tasks:
        assert (resource_dir("envs") / f"{task}.yaml").is_file(), task
    assert cfg.final.enabled and list(cfg.final.baselines) == ["native", "sparse"]
    assert (cfg.loop.generations, cfg.loop.samples) == (5, 16)
    assert cfg.final.timesteps >= cfg.train.timesteps >= 1_000_000


def test_tiny_suite_is_offline_and_tiny():
    cfg = _compose("experiment=eureka_suite_tiny")
    assert cfg.llm.provider == "offline"
    assert cfg.hydra.sweeper.params["task"].split(",") == TINY_TASKS
    assert cfg.train.timesteps <= 512 and cfg.final.timesteps <= 256
    assert list(cfg.final.baselines) == ["native", "sparse"]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run of the tiny suite (2 tasks x 1 seed), then the sweep report on it."""
    tmp = tmp_path_factory.mktemp("suite")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    out = subprocess.run(
        [str(BIN / "rewardgen"), "--multirun", "experiment=eureka_suite_tiny",
         "loop.samples=1", f"hydra.sweep.dir={tmp / 'sweep'}"],
        cwd=tmp, capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp / "sweep"


def test_suite_table_matches_each_runs_summaries(suite: Path):
    from rewardgen.reporting.report import main as report_main

    report_main(["--sweep", str(suite)])
    summary = json.loads((suite / "sweep_summary.json").read_text())
    rows = {r["task"]: r for r in csv.DictReader((suite / "sweep_summary.csv").open())}
    assert sorted(rows) == sorted(TINY_TASKS)
    header = next(csv.reader((suite / "sweep_summary.csv").open()))
    for m in METRICS:
        assert f"{m}_mean" in header, m
    assert "beats_human" in header and all(f"{m}_mean" in header for m in COSTS)

    beats = 0
    for run_dir in sorted(p for p in suite.iterdir() if (p / "manifest.json").is_file()):
        run = json.loads((run_dir / "summary.json").read_text())
        final = json.loads((run_dir / "final" / "summary.json").read_text())
        v = final["variants"]
        row = rows[json.loads((run_dir / "manifest.json").read_text())["task"]]
        gen, nat, sp = (v[k]["fitness_mean"] for k in ("generated", "native", "sparse"))
        assert float(row["search_fitness_mean"]) == pytest.approx(run["best"]["fitness"])
        assert float(row["final_fitness_mean"]) == pytest.approx(gen)
        assert float(row["native_fitness_mean"]) == pytest.approx(nat)
        assert float(row["sparse_fitness_mean"]) == pytest.approx(sp)
        hns = final["human_normalised_score"]  # None with a reason when native ≈ sparse
        assert (hns is None) == (final["human_normalised_reason"] is not None)
        assert (row["human_normalised_mean"] == "") == (hns is None)
        assert row["human_normalised_undefined"] == ("0" if hns is not None else "1")
        seed = json.loads((run_dir / "manifest.json").read_text())["seed"]
        assert final["seeds"] == [seed + 1000] and row["final_seeds"] == str(seed + 1000)
        assert float(row["generated_iqm"]) == pytest.approx(v["generated"]["fitness_iqm"])
        if hns is not None:
            assert float(row["human_normalised_mean"]) == pytest.approx(hns)
        assert row["beats_human"] == str(gen > nat)
        beats += gen > nat
        # Costs: offline proposer spends nothing; env steps = search + every final training.
        assert float(row["llm_tokens_mean"]) == run["llm_usage"]["total_tokens"] == 0
        assert float(row["llm_cost_usd_mean"]) == 0.0
        final_steps = sum(json.loads(p.read_text())["env_steps"]
                          for p in (run_dir / "final").glob("*/result.json"))
        assert final_steps == 3 * 128  # generated, native, sparse, one seed each
        assert float(row["env_steps_mean"]) == run["env_steps"] + final_steps
        assert 0 < float(row["wall_time_s_mean"]) < 300
    suite_totals = summary["suite"]
    assert suite_totals["tasks"] == suite_totals["tasks_judged"] == 2
    assert suite_totals["fraction_beats_human"] == pytest.approx(beats / 2)
    assert suite_totals["total_env_steps"] == sum(float(r["env_steps_mean"]) for r in rows.values())
