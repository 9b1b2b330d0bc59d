"""Sweeps: presets compose, real multiruns with Hydra's launchers, and the sweep report."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from rewardgen.config import register_configs
from rewardgen.errors import RunDirError
from rewardgen.reporting.sweep import find_runs, group_runs
from rewardgen.reporting.sweep_report import main_sweep
from rewardgen.resources import resource_dir

BIN = Path(sys.executable).parent
LOCOMOTION = ["hopper", "half_cheetah", "walker2d", "ant", "humanoid", "swimmer"]


def _compose(*overrides: str):
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def _multirun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [str(BIN / "rewardgen"), "--multirun", "experiment=sweep_smoke", "llm=offline",
         "task=inverted_pendulum", "loop.samples=1", f"hydra.sweep.dir={tmp_path / 'sweep'}", *args],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )


# ---------------------------------------------------------------- presets
def test_locomotion_sweep_is_every_locomotion_task_times_three_seeds():
    cfg = _compose("experiment=locomotion_sweep")
    params = cfg.hydra.sweeper.params
    assert params["task"].split(",") == LOCOMOTION
    assert params["seed"] == "0,1,2"
    for task in LOCOMOTION:
        assert (resource_dir("envs") / f"{task}.yaml").is_file()


def test_slurm_preset_and_launchers_compose():
    cfg = _compose("experiment=locomotion_sweep_slurm", "hydra.launcher.partition=cpu")
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.hydra.launcher.partition == "cpu" and cfg.hydra.launcher.cpus_per_task == 16
    assert cfg.hydra.sweeper.params["task"].split(",") == LOCOMOTION
    slurm = _compose("hydra/launcher=submitit_slurm", "executor=ray", "executor.address=auto")
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher") and slurm.executor.name == "ray"
    joblib = _compose("hydra/launcher=joblib", "hydra.launcher.n_jobs=3")
    assert joblib.hydra.launcher._target_.endswith("JoblibLauncher") and joblib.hydra.launcher.n_jobs == 3


# ---------------------------------------------------------------- real sweeps
def test_joblib_sweep_runs_seeds_side_by_side(tmp_path):
    out = _multirun(tmp_path, "seed=0,1", "final.enabled=false", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2")
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [
        "0_inverted_pendulum_seed0", "1_inverted_pendulum_seed1"]
    summary = main_sweep(sweep, show=False)
    [group] = summary["groups"]
    assert group["name"] == "inverted_pendulum" and group["seeds"] == [0, 1] and group["finished"] == 2
    assert len(group["values"]["search_fitness"]) == 2 and group["mean"]["final_fitness"] is None


def test_basic_launcher_run_with_final_and_the_sweep_report(tmp_path):
    out = _multirun(tmp_path, "seed=3")
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "sweep"

    from rewardgen.reporting.report import main as report_main

    report_main(["--sweep", str(sweep)])

    summary = json.loads((sweep / "sweep_summary.json").read_text())
    [group] = summary["groups"]
    assert group["seeds"] == [3] and group["finished"] == 1
    # Each run's final/summary.json was read: the retrained reward and both baselines.
    for metric in ("final_fitness", "native_fitness", "sparse_fitness"):
        assert len(group["values"][metric]) == 1, metric
    assert (sweep / "sweep_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").open()))
    assert [r["group"] for r in rows] == ["inverted_pendulum"] and rows[0]["runs"] == "1"
    # seed=3: the final phase trained every reward on the fresh seed 1003, never on 3.
    [run] = [p for p in sweep.iterdir() if (p / "manifest.json").is_file()]
    assert sorted(p.name for p in (run / "final").iterdir() if p.is_dir()) == [
        "generated_seed1003", "native_seed1003", "sparse_seed1003"]
    assert group["final_seeds"] == [1003] and group["final_timesteps"] == [128]
    assert set(group["final_iqm"]) == {"generated", "native", "sparse"}
    assert rows[0]["final_seeds"] == "1003" and rows[0]["final_timesteps"] == "128"


def test_submitit_local_runs_one_job(tmp_path):
    out = _multirun(tmp_path, "seed=0", "final.enabled=false", "hydra/launcher=submitit_local",
                    "hydra.launcher.timeout_min=5")
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "sweep" / "0_inverted_pendulum_seed0"
    assert json.loads((run / "summary.json").read_text())["candidates"] == 1


# ---------------------------------------------------------------- aggregation
def _fake_run(root: Path, name: str, task: str, seed: int, *, best: float | None,
              final: tuple[float, float, float] | None, overrides: tuple[str, ...] = (),
              per_seed: dict[str, list[float]] | None = None) -> None:
    """A run directory as `rewardgen` leaves it (only the files the sweep report reads)."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"task": task, "seed": seed}))
    (run / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"task={task}", f"seed={seed}", "llm=offline", *overrides]))
    if best is not None:
        (run / "summary.json").write_text(json.dumps({"best": {"fitness": best}}))
    if final is not None:
        generated, native, sparse = final
        (run / "final").mkdir()
        (run / "final" / "summary.json").write_text(json.dumps({
            "variants": {"generated": {"fitness_mean": generated},
                         "native": {"fitness_mean": native}, "sparse": {"fitness_mean": sparse}},
            "human_normalised_score": (generated - sparse) / abs(native - sparse),
        }))
    if per_seed is not None:  # as rewardgen writes it: per-seed values, mean and std of each
        seeds = [seed + 1000 * k for k in range(1, len(per_seed["generated"]) + 1)]
        (run / "final").mkdir()
        (run / "final" / "summary.json").write_text(json.dumps({
            "timesteps": 300_000, "seeds": seeds, "search_seeds": [seed],
            "variants": {k: {"fitness_mean": statistics.fmean(v), "fitness_std": statistics.pstdev(v),
                             "fitness_per_seed": {str(s): f for s, f in zip(seeds, v, strict=True)}}
                         for k, v in per_seed.items()},
        }))


def test_groups_by_task_and_swept_knobs_with_mean_and_spread_over_seeds(tmp_path):
    for seed, gen in enumerate([3.0, 5.0, 4.0]):
        _fake_run(tmp_path, f"{seed}_hopper_seed{seed}", "hopper", seed, best=gen - 1,
                  final=(gen, 4.0, 0.0), overrides=("loop.samples=4",))
    _fake_run(tmp_path, "3_hopper_seed0", "hopper", 0, best=1.0, final=(8.0, 4.0, 0.0),
              overrides=("loop.samples=8",))
    _fake_run(tmp_path, "4_ant_seed0", "ant", 0, best=10.0, final=None, overrides=("loop.samples=4",))
    _fake_run(tmp_path, "5_ant_seed1", "ant", 1, best=None, final=None, overrides=("loop.samples=4",))

    groups = {g.name: g for g in group_runs(find_runs(tmp_path))}

    # llm=offline is the same everywhere: a fixed setting, not a grouping key.
    assert sorted(groups) == ["ant loop.samples=4", "hopper loop.samples=4", "hopper loop.samples=8"]
    hopper = groups["hopper loop.samples=4"]
    assert hopper.seeds == [0, 1, 2] and hopper.finished == 3
    assert hopper.mean["final_fitness"] == pytest.approx(4.0)
    assert hopper.std["final_fitness"] == pytest.approx((2 / 3) ** 0.5)
    assert hopper.mean["human_normalised"] == pytest.approx(1.0)
    assert hopper.values["human_normalised"] == pytest.approx([0.75, 1.25, 1.0])
    assert groups["hopper loop.samples=8"].mean["human_normalised"] == pytest.approx(2.0)
    ant = groups["ant loop.samples=4"]
    assert ant.finished == 1 and ant.mean["search_fitness"] == 10.0 and ant.mean["final_fitness"] is None

    summary = main_sweep(tmp_path, show=False)
    assert len(summary["runs"]) == 6
    assert Path(summary["files"]["plot"]).read_bytes()[:4] == b"\x89PNG"


def test_sweep_table_reports_iqm_intervals_and_probability_of_improvement(tmp_path, capsys,
                                                                         monkeypatch):
    # hopper: two runs x three fresh final seeds, pooled per group.
    _fake_run(tmp_path, "0_hopper_seed0", "hopper", 0, best=1.0, final=None,
              per_seed={"generated": [1.0, 2.0, 3.0], "native": [2.0, 2.0, 2.0],
                        "sparse": [0.0, 0.0, 0.0]})
    _fake_run(tmp_path, "1_hopper_seed1", "hopper", 1, best=1.0, final=None,
              per_seed={"generated": [4.0, 5.0, 100.0], "native": [2.0, 2.0, 2.0],
                        "sparse": [0.0, 0.0, 0.0]})
    # walker: native 0.04 ± 0.08 and sparse 0.12 ± 0.17, the exploding case.
    _fake_run(tmp_path, "2_walker2d_seed0", "walker2d", 0, best=1.0, final=None,
              per_seed={"generated": [0.5, 0.7], "native": [-0.04, 0.12],
                        "sparse": [-0.05, 0.29]})
    monkeypatch.setenv("COLUMNS", "400")
    summary = main_sweep(tmp_path)
    groups = {g["name"]: g for g in summary["groups"]}
    hopper, walker = groups["hopper"], groups["walker2d"]
    # Pooled generated [1, 2, 3, 4, 5, 100]: one trimmed at each end -> mean(2, 3, 4, 5) = 3.5.
    assert hopper["final_iqm"]["generated"]["iqm"] == pytest.approx(3.5)
    low, high = hopper["final_iqm"]["generated"]["ci"]
    assert 1.0 <= low <= 3.5 <= high <= 100.0
    assert hopper["final_iqm"]["native"] == {"iqm": 2.0, "ci": [2.0, 2.0], "ci_reason": None,
                                             "n": 6}
    # P(generated > native): 1 loses to 2 (0), 2 ties six times (3), 3, 4, 5, 100 win (24): 27/36.
    assert hopper["p_improvement"]["value"] == pytest.approx(0.75)
    assert hopper["final_seeds"] == [1000, 1001, 2000, 2001, 3000, 3001]
    # Per-run human-normalised scores: (2 - 0) / 2 = 1 and (109 / 3) / 2.
    assert hopper["values"]["human_normalised"] == pytest.approx([1.0, 109 / 6])
    assert walker["mean"]["human_normalised"] is None
    [why] = walker["human_normalised_undefined"]
    assert why.startswith("2_walker2d_seed0: native and sparse are within their spread")
    rows = {r["group"]: r for r in csv.DictReader((tmp_path / "sweep_summary.csv").open())}
    assert float(rows["hopper"]["generated_iqm"]) == pytest.approx(3.5)
    assert float(rows["hopper"]["p_generated_over_native"]) == pytest.approx(0.75)
    assert rows["walker2d"]["human_normalised_mean"] == ""
    assert rows["walker2d"]["human_normalised_undefined"] == "1"
    assert "bootstrap" in summary["statistics"]["method"]
    table = capsys.readouterr().err
    assert "generated IQM [95% CI]" in table and "P(generated > native)" in table
    assert "3.5 [" in table and "0.75 [" in table and "300,000 steps, seeds 1000 1001" in table
    assert "undefined" in table and "human-normalised score undefined for 2_walker2d_seed0" in table


def test_sweep_table_stays_readable_in_80_columns(tmp_path, capsys, monkeypatch):
    """rewardgen-report --sweep in an 80-column terminal: every value whole, no ellipses."""
    for seed in (0, 1):
        _fake_run(tmp_path, f"{seed}_hopper_seed{seed}", "hopper", seed, best=1.0, final=None,
                  per_seed={"generated": [1.0, 2.0, 3.0], "native": [2.0, 2.0, 2.0],
                            "sparse": [0.0, 0.0, 0.0]})
    monkeypatch.setenv("COLUMNS", "80")
    main_sweep(tmp_path)
    table = capsys.readouterr().err
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80
    for text in ("generated IQM [95% CI]", "P(generated > native) [95% CI]", "beats human",
                 "300,000 steps, seeds 1000 1001", "LLM tokens (mean)", "hopper"):
        assert text in table, text
    assert "2 [2, 2]" in table  # native's IQM and its interval, whole


def test_sweep_table_leads_with_the_final_iqm_and_says_why_there_is_no_interval(
        tmp_path, capsys, monkeypatch):
    """Issue 26: the search's single-seed peak came first and unlabelled ("search best"); a
    2-seed group showed an interval that was only its two values."""
    _fake_run(tmp_path, "0_walker2d_seed0", "walker2d", 0, best=3.408, final=None,
              per_seed={"generated": [1.49, 2.56], "native": [1.0, 1.2], "sparse": [0.0, 0.1]})
    for columns in ("400", "80"):
        monkeypatch.setenv("COLUMNS", columns)
        main_sweep(tmp_path)
        table = " ".join(capsys.readouterr().err.replace("│", " ").split())
        assert "search best" not in table
        assert table.index("generated IQM") < table.index("search peak, 1 seed")
        assert "no 95% CI with 2 seeds: needs at least 5" in table, table
        assert "no 95% CI with 2 seeds on one side: needs at least 5" in table


def test_not_a_sweep_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match=r"sweep directory .*missing.* does not exist"):
        main_sweep(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match=r"holds no run directories .*rewardgen --multirun"):
        main_sweep(tmp_path / "empty")


def test_runs_planted_in_a_workers_folder_and_fifos_do_not_count(tmp_path):
    _fake_run(tmp_path, "0", "hopper", 0, best=None, final=None)  # trained nothing
    train = tmp_path / "0" / "gen_000" / "cand_00" / "train"
    for k in range(3):  # what a worker could plant in its own folder
        _fake_run(train, f"run_{k}", "hopper", k, best=900.0, final=(1000.0, 1.0, 0.0))
    _fake_run(tmp_path / "0" / "gen_000", "x", "hopper", 5, best=900.0, final=(1000.0, 1.0, 0.0))
    os.mkfifo(train / "manifest.json")
    (tmp_path / "elsewhere").mkdir()
    _fake_run(tmp_path / "elsewhere", "linked", "hopper", 6, best=900.0, final=(1000.0, 1.0, 0.0))
    (tmp_path / "1").symlink_to(tmp_path / "elsewhere" / "linked")
    (tmp_path / "2").mkdir()
    os.mkfifo(tmp_path / "2" / "manifest.json")  # not a regular file: not a run
    runs = find_runs(tmp_path)
    assert [Path(r.run_dir).name for r in runs] == ["0", "linked"]  # linked: 2 folders down
    [hopper] = group_runs(runs[:1])
    assert hopper.beats_human is None and hopper.finished == 0
