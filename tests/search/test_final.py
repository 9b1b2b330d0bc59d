"""The final phase's seeds (fresh, never the search's, the same for every reward) and its summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from rewardgen.resources import resource_dir
from rewardgen.runs.records import CandidateResult
from rewardgen.search.final import final_seeds, final_summary, search_seeds
from tests.helpers import compose_config, tiny_config

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(("seed", "expected"), [(0, [1000, 2000, 3000, 4000, 5000]),
                                               (5, [1005, 2005, 3005, 4005, 5005])])
def test_default_final_seeds_are_fresh(seed, expected):
    cfg = compose_config([f"seed={seed}"])
    assert search_seeds(cfg) == [seed]  # every search candidate trains with `seed`
    seeds = final_seeds(cfg)
    assert seeds == expected and not set(seeds) & set(search_seeds(cfg))
    assert final_seeds(compose_config([f"seed={seed}", "final.n_seeds=3"]))[-1] == seed + 3000


def test_explicit_final_seeds_are_kept_unless_they_overlap_the_search():
    assert final_seeds(compose_config(["seed=5", "final.seeds=[0,1,2]"])) == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"final.seeds=\[0, 5\] reuses the search's training "
                                          r"seed 5 \(seed=5\).*final.seeds=null") as err:
        final_seeds(compose_config(["seed=5", "final.seeds=[0,5]"]))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="repeats a seed"):
        final_seeds(compose_config(["final.seeds=[7,7]"]))
    with pytest.raises(ConfigError, match="names no seed"):
        final_seeds(compose_config(["final.seeds=[]"]))
    with pytest.raises(ConfigError, match="final.n_seeds=0 must be at least 1"):
        final_seeds(compose_config(["final.n_seeds=0"]))


def test_overlapping_final_seeds_fail_before_anything_is_spent(tmp_path):
    with pytest.raises(ConfigError, match="reuses the search's training seed 0"):
        run(tiny_config("llm=offline", "final.seeds=[0]"), tmp_path / "run", interactive=False)
    assert not (tmp_path / "run" / "manifest.json").exists()  # no run directory was started
    # With the final phase off there is nothing to refuse.
    cfg = tiny_config("final.enabled=false", "final.seeds=[0]")
    assert cfg.final.seeds == [0]


def test_the_command_line_refuses_them_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    out = subprocess.run([str(BIN / "rewardgen"), "llm=offline", "task=inverted_pendulum", "seed=3",
                          "final.seeds=[3,4]", f"hydra.run.dir={tmp_path / 'run'}"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rewardgen: error: final.seeds=[3, 4] reuses")
    assert not (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (resource_dir("conf") / "experiment")
                                              .glob("*.yaml")))
def test_every_experiment_preset_has_fresh_final_seeds(experiment):
    from hydra import compose, initialize_config_dir

    from rewardgen.config import register_configs

    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        base = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = base.hydra.sweeper.params or {}
    swept = [int(s) for s in str(params.get("seed", base.seed)).split(",")]
    finals: list[int] = []
    for seed in swept:
        seeds = final_seeds(compose_config([f"experiment={experiment}", f"seed={seed}"]))
        assert seed not in seeds
        finals += seeds
    # Runs of one sweep do not share final trainings either (pooled in the sweep table).
    assert len(finals) == len(set(finals))
    assert not set(finals) & set(swept)
    raw = yaml.safe_load((resource_dir("conf") / "experiment" / f"{experiment}.yaml").read_text())
    assert "seeds" not in (raw.get("final") or {}), "explicit final.seeds overlap sweeps' seeds"


def _result(seed: int, fitness: float | None, status: str = "ok") -> CandidateResult:
    return CandidateResult(status=status, fitness=fitness, seed=seed,
                           reason="" if status == "ok" else "diverged")


def test_final_summary_statistics_on_hand_made_seeds():
    seeds = [1000, 2000, 3000, 4000]
    results = {
        "generated": [_result(s, f) for s, f in zip(seeds, [1.0, 2.0, 3.0, 100.0], strict=True)],
        "native": [_result(s, f) for s, f in zip(seeds, [1.0, 1.2, 0.8, 1.0], strict=True)],
        "sparse": [_result(s, 0.0) for s in seeds],
    }
    summary = final_summary("gen_001/cand_00", 300_000, seeds, [0], results)
    assert summary["seeds"] == seeds and summary["search_seeds"] == [0]
    assert summary["timesteps"] == 300_000 and "bootstrap" in summary["statistics"]["method"]
    gen = summary["variants"]["generated"]
    assert gen["fitness_mean"] == pytest.approx(26.5) and gen["fitness_iqm"] == pytest.approx(2.5)
    assert gen["fitness_iqm_ci"] is None  # 4 seeds: below statistics.MIN_SEEDS_FOR_CI
    assert gen["fitness_iqm_ci_reason"] == "no 95% CI with 4 seeds: needs at least 5"
    assert summary["variants"]["native"]["fitness_iqm"] == pytest.approx(1.0)
    # native mean 1.0, std 0.141 vs sparse 0.0: apart by more than the spread.
    assert summary["human_normalised_score"] == pytest.approx(26.5)
    assert summary["human_normalised_reason"] is None
    poi = summary["probability_of_improvement"]["generated_over_native"]
    assert poi["value"] == pytest.approx(14 / 16) and poi["ci"] is None


def test_final_summary_with_close_baselines_and_a_failed_seed():
    seeds = [1000, 2000]
    results = {
        "generated": [_result(1000, 0.5), _result(2000, None, status="failed")],
        "native": [_result(1000, -0.04), _result(2000, 0.12)],  # 0.04 ± 0.08
        "sparse": [_result(1000, -0.05), _result(2000, 0.29)],  # 0.12 ± 0.17
    }
    summary = final_summary("gen_000/cand_01", 100_000, seeds, [0], results)
    assert summary["human_normalised_score"] is None
    assert "within their spread" in summary["human_normalised_reason"]
    gen = summary["variants"]["generated"]
    assert gen["n_ok"] == 1 and gen["fitness_iqm"] == 0.5 and gen["fitness_iqm_ci"] is None
    assert "1 seed" in gen["fitness_iqm_ci_reason"]
    assert gen["failures"] == ["seed 2000: failed: diverged"]
    poi = summary["probability_of_improvement"]["generated_over_native"]
    assert poi["value"] == 1.0 and poi["ci"] is None and "1 seed" in poi["ci_reason"]


def test_a_non_finite_final_fitness_is_a_failure_not_a_score():
    results = {"generated": [CandidateResult("ok", fitness=2.0, seed=1000),
                             CandidateResult("ok", fitness=float("nan"), seed=2000),
                             CandidateResult("ok", fitness=float("inf"), seed=3000)]}
    summary = final_summary("gen_000/cand_00", 64, [1000, 2000, 3000], [0], results)
    generated = summary["variants"]["generated"]
    assert generated["fitness_per_seed"] == {"1000": 2.0} and generated["n_ok"] == 1
    assert generated["fitness_mean"] == 2.0
    assert generated["failures"] == ["seed 2000: ok: fitness nan", "seed 3000: ok: fitness inf"]
