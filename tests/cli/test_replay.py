"""rewardgen-replay: a folder of reward programs trained on a task without any LLM."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rewardgen.cli.replay import compose_eval, find_programs, replay, replay_main
from rewardgen.errors import ConfigError

GOOD = """import numpy as np

def compute_reward(state, action, prev_state):
    upright = 1.0 - abs(state.pole_angle)
    return float(upright), {"upright": float(upright)}
"""
CENTERED = """def compute_reward(state, action, prev_state):
    return -abs(state.cart_position), {}
"""
FORBIDDEN = """import os

def compute_reward(state, action, prev_state):
    return 0.0, {}
"""
TINY = ["task=inverted_pendulum", "seeds=[0]", "train.timesteps=128", "train.eval_freq=64",
        "train.eval_episodes=1", "train.max_episode_steps=64", "train.save_policy=false",
        "train.tensorboard=false", "rl.n_envs=1", "++rl.hyperparams.n_steps=64",
        "++rl.hyperparams.batch_size=32", "++rl.hyperparams.n_epochs=1",
        "++rl.hyperparams.policy_kwargs={net_arch:[8]}", "sandbox.smoke_states=8"]


def test_run_directory_layout_finds_candidates_and_dedupes_best(tmp_path):
    for gen, cand, text in [(0, 0, GOOD), (0, 1, CENTERED), (1, 0, GOOD + "\n# v2\n")]:
        d = tmp_path / f"gen_{gen:03d}" / f"cand_{cand:02d}"
        d.mkdir(parents=True)
        (d / "reward.py").write_text(text)
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "reward.py").write_text(CENTERED)  # the same program as gen_000/cand_01
    (tmp_path / "notes.py").write_text("x = 1")  # ignored: the folder has reward.py files

    programs = find_programs(tmp_path)

    assert [p.label for p in programs] == ["gen_000/cand_00", "gen_000/cand_01", "gen_001/cand_00"]
    assert programs[1].duplicates == ["best"]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"reward folder .*nope does not exist"):
        find_programs(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"holds no reward program .*compute_reward"):
        find_programs(tmp_path)
    with pytest.raises(ConfigError, match=r"unknown baseline\(s\) \['dense'\]"):
        (tmp_path / "a.py").write_text(GOOD)
        replay(compose_eval(TINY), tmp_path, tmp_path / "out", ("dense",))
    with pytest.raises(ConfigError, match=r"do not fit conf/eval.yaml"):
        compose_eval(["no_such_key=1"])


def test_replay_trains_each_program_in_a_worker_and_writes_the_table(tmp_path, capsys):
    rewards = tmp_path / "rewards"
    rewards.mkdir()
    (rewards / "upright.py").write_text(GOOD)
    (rewards / "centered.py").write_text(CENTERED)
    (rewards / "forbidden.py").write_text(FORBIDDEN)
    (rewards / "__init__.py").write_text("")
    out = tmp_path / "out"

    summary = replay_main([str(rewards), *TINY, "--baselines", "native", "--out", str(out)])

    rows = {r["label"]: r for r in summary["rows"]}
    assert list(rows) == ["centered.py", "forbidden.py", "upright.py", "[native]"]
    for label in ("centered.py", "upright.py", "[native]"):
        row = rows[label]
        assert row["statuses"] == ["ok"] and row["n_ok"] == 1, row
        result = json.loads((out / label.strip("[]") / "seed0" / "result.json").read_text())
        assert row["fitness_mean"] == pytest.approx(result["fitness"])
        assert result["env_steps"] == row["env_steps"] == 128
        # Trained in the sandbox, measured by the trusted evaluator: both leave their job files.
        seed_dir = out / label.strip("[]") / "seed0"
        assert (seed_dir / "train.job.json").is_file()
        assert (seed_dir / "evaluation" / "job.json").is_file()
    bad = rows["forbidden.py"]
    assert bad["statuses"] == ["rejected"] and bad["fitness_mean"] is None
    assert "os" in bad["reasons"][0]
    table = list(csv.DictReader((out / "replay.csv").open()))
    assert [r["label"] for r in table] == list(rows)
    assert float(table[0]["fitness_mean"]) == pytest.approx(rows["centered.py"]["fitness_mean"])
    assert json.loads((out / "replay.json").read_text())["rows"] == summary["rows"]
    assert "replay on inverted_pendulum" in capsys.readouterr().err
    assert Path(summary["files"]["csv"]) == out / "replay.csv"


def test_console_script_exits_0_without_printing_the_summary(tmp_path):
    import subprocess
    import sys

    (tmp_path / "forbidden.py").write_text(FORBIDDEN)  # rejected without training: quick
    out = subprocess.run([str(Path(sys.executable).parent / "rewardgen-replay"), str(tmp_path),
                          *TINY, "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'rows'" not in out.stderr and "{'task'" not in out.stderr  # no dict dumped
    assert "replay on inverted_pendulum" in out.stderr and out.stdout == ""


def test_schedule_replay_of_a_recorded_run_prints_what_it_saves(tmp_path):
    import os
    import subprocess
    import sys

    from tests.search.test_schedule import CURVES, _recorded_run

    run_dir = _recorded_run(tmp_path / "run", [CURVES])
    script = str(Path(sys.executable).parent / "rewardgen-replay")
    out = subprocess.run([script, "--schedule", "halving", str(run_dir), "--workers", "2",
                          "reduction_factor=2"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "steps_saved 0.375  same_best_rate 1.000" in out.stdout
    assert "cand_01@1000" in out.stdout
    bad = subprocess.run([script, "--schedule", "halving", str(run_dir), "rungs"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "is not key=value" in bad.stderr


def test_programs_below_a_workers_folder_or_not_plain_files_are_not_read(tmp_path):
    import os

    cand = tmp_path / "gen_000" / "cand_00"
    (cand / "train" / "sub").mkdir(parents=True)
    (cand / "reward.py").write_text(GOOD)
    (cand / "train" / "reward.py").write_text(CENTERED)  # planted by the worker
    os.mkfifo(cand / "train" / "sub" / "reward.py")
    (tmp_path / "gen_000" / "cand_01").mkdir()
    os.mkfifo(tmp_path / "gen_000" / "cand_01" / "reward.py")  # would block a read forever
    (tmp_path / "gen_000" / "cand_02").mkdir()
    (tmp_path / "gen_000" / "cand_02" / "reward.py").symlink_to("/etc/passwd")
    (tmp_path / "gen_000" / "cand_03").mkdir()
    (tmp_path / "gen_000" / "cand_03" / "reward.py").write_bytes(b"\xff\xfe")

    programs = find_programs(tmp_path)

    assert [p.label for p in programs] == ["gen_000/cand_00", "gen_000/cand_03"]
    assert programs[0].source == GOOD
    assert programs[1].source is None and "cannot be read" in (programs[1].error or "")
