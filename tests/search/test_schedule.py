"""loop.schedule's pruner (Optuna, in memory) and its replay on recorded curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rewardgen.errors import ConfigError
from rewardgen.search.schedule import GenerationPruner, make_pruner
from rewardgen.search.schedule_replay import replay_run, simulate

STEP = 1000


def curve(*values: float) -> list[dict[str, float]]:
    return [{"timesteps": STEP * (k + 1), "fitness": v} for k, v in enumerate(values)]


CURVES = {  # cand_02 leads early and wins; cand_01 and cand_03 trail from the first point
    "cand_00": curve(1.0, 2.0, 3.0, 4.0),
    "cand_01": curve(0.5, 0.6, 0.7, 0.8),
    "cand_02": curve(2.0, 3.0, 4.0, 5.0),
    "cand_03": curve(0.1, 0.1, 0.1, 0.1),
}


def run_through(pruner: GenerationPruner, curves: dict[str, list[dict[str, float]]]) -> dict[str, str]:
    """Each candidate in turn (one worker): its outcome, ok or the prune reason."""
    outcome = {}
    for key, points in curves.items():
        for n in range(1, len(points) + 1):
            reason = pruner.report(key, points[:n])
            if reason:
                pruner.finish(key, "pruned", points[:n])
                outcome[key] = reason
                break
        else:
            pruner.finish(key, "ok", points)
            outcome[key] = "ok"
    return outcome


def test_halving_stops_trailing_candidates_at_their_rung_with_the_value() -> None:
    outcome = run_through(GenerationPruner("halving", {}, STEP), CURVES)
    assert outcome["cand_00"] == outcome["cand_02"] == "ok"
    assert outcome["cand_01"] == ("stopped early by successive halving at rung 0 (1000 env steps): "
                                  "fitness 0.5 was not in the top 1/2 of the candidates there")
    assert "rung 0" in outcome["cand_03"] and "fitness 0.1 " in outcome["cand_03"]


def test_median_waits_for_finished_candidates() -> None:
    pruner = GenerationPruner("median", {"startup_candidates": 2}, STEP)
    outcome = run_through(pruner, CURVES)
    assert outcome["cand_00"] == outcome["cand_01"] == "ok"  # nothing is pruned before 2 finish
    assert outcome["cand_02"] == "ok"
    assert outcome["cand_03"].startswith("stopped early by the median rule at 1000 env steps")


def test_a_resumed_generation_keeps_its_decisions() -> None:
    live = GenerationPruner("halving", {}, STEP)
    first = run_through(live, dict(list(CURVES.items())[:2]))
    # The run is killed here; the resumed generation's pruner replays the finished candidates.
    resumed = GenerationPruner(**live.spec())
    assert resumed.history == live.history and first["cand_01"].startswith("stopped early")
    rest = run_through(resumed, dict(list(CURVES.items())[2:]))
    assert rest == {k: v for k, v in run_through(GenerationPruner("halving", {}, STEP),
                                                 CURVES).items() if k in rest}


def test_bad_schedules_are_one_line_config_errors() -> None:
    loop = OmegaConf.create({"schedule": "hyper", "pruner": {}})
    with pytest.raises(ConfigError, match="loop.schedule='hyper' is not one of full, halving, median"):
        make_pruner(loop, STEP)
    loop = OmegaConf.create({"schedule": "halving", "pruner": {"reduction_factor": 1}})
    with pytest.raises(ConfigError, match="reduction_factor=1 must be >= 2"):
        make_pruner(loop, STEP)
    with pytest.raises(ConfigError, match="train.eval_freq > 0"):
        make_pruner(OmegaConf.create({"schedule": "median"}), 0)
    with pytest.raises(ConfigError, match="unknown keys"):
        make_pruner(OmegaConf.create({"schedule": "halving", "pruner": {"rungs": 3}}), STEP)
    assert make_pruner(OmegaConf.create({"schedule": "full"}), STEP) is None


def test_simulate_counts_the_steps_a_pool_would_train() -> None:
    used = simulate(CURVES, GenerationPruner("halving", {}, STEP), workers=2)
    assert used == {"cand_00": 4000, "cand_01": 1000, "cand_02": 4000, "cand_03": 1000}


def _recorded_run(root: Path, generations: list[dict[str, list[dict[str, float]]]]) -> Path:
    (root / ".hydra").mkdir(parents=True)
    (root / ".hydra" / "config.yaml").write_text(
        "task: hopper\nloop: {selection: max, last_k: 3}\ntrain: {eval_freq: 1000}\n"
        "executor: {workers: 1}\n")
    for g, curves in enumerate(generations):
        for key, points in curves.items():
            cand = root / f"gen_{g:03d}" / key
            cand.mkdir(parents=True)
            (cand / "result.json").write_text(json.dumps({"status": "ok", "evaluations": points}))
    failed = root / "gen_000" / "cand_09"
    failed.mkdir()
    (failed / "result.json").write_text(json.dumps({"status": "failed", "evaluations": []}))
    return root


def test_replay_of_a_recorded_run_says_what_it_saves_and_whether_the_best_survives(tmp_path) -> None:
    late_bloomer = {"cand_00": curve(1.0, 1.0, 1.0, 1.0), "cand_01": curve(0.5, 0.5, 0.5, 9.0)}
    run_dir = _recorded_run(tmp_path / "run", [CURVES, late_bloomer])

    replay = replay_run(run_dir, "halving")

    first, second = replay["generations"]
    assert first["steps_full"] == 16_000 and first["steps_schedule"] == 10_000
    assert first["pruned"] == {"cand_01": 1000, "cand_03": 1000}
    assert first["best_full"] == first["best_schedule"] == "cand_02" and first["same_best"]
    assert second["best_full"] == "cand_01" and second["best_schedule"] == "cand_00"
    assert not second["same_best"]  # the late bloomer is pruned: the schedule changed the best
    assert first["regret"] == 0.0 and second["regret"] == 1.0  # lost all of the spread (1 vs 9)
    assert replay["steps_saved"] == pytest.approx(1 - 15_000 / 24_000)
    assert replay["same_best_rate"] == 0.5 and replay["workers"] == 1 and replay["task"] == "hopper"
    with pytest.raises(ConfigError, match="not a run directory"):
        replay_run(tmp_path, "halving")
