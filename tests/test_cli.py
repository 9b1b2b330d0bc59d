"""One subprocess smoke test per console script, plus the one-line errors users see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

BIN = Path(sys.executable).parent


def _run(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    full_env.update(env or {})
    return subprocess.run([str(BIN / script), *args], cwd=cwd, capture_output=True, text=True,
                          env=full_env, timeout=600)


def test_rewardgen_tasks_lists_every_task(tmp_path):
    out = _run("rewardgen-tasks", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("hopper", "half_cheetah", "humanoid_standup", "inverted_double_pendulum"):
        assert name in out.stdout


def test_rewardgen_tasks_shows_one_state_view(tmp_path):
    out = _run("rewardgen-tasks", "hopper", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "class State(NamedTuple):" in out.stdout and "torso_height" in out.stdout


def test_unknown_task_is_one_clear_line(tmp_path):
    out = _run("rewardgen-tasks", "hoper", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        out.stderr.strip().splitlines()[0]
    ] and "unknown task 'hoper'. Did you mean 'hopper'?" in out.stderr


def test_rewardgen_auto_without_key_runs_offline_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("loop.", "final."))]
    out = _run("rewardgen", *args, "loop.generations=1", "loop.samples=2", "final.enabled=false",
               f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "offline" in out.stderr.lower() and "no language model" in out.stderr.lower()
    assert f"run directory: {run_dir}" in out.stderr.replace("\n", "")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["candidates"] == 2
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_rewardgen_bad_override_fails_cleanly(tmp_path):
    out = _run("rewardgen", "loop.generation=3", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert out.returncode == 1
    assert "loop.generation" in out.stderr


def test_rewardgen_eval_trains_a_reward_file(tmp_path):
    reward = tmp_path / "reward.py"
    reward.write_text(
        "import numpy as np\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    upright = 1.0 - abs(state.pole_angle)\n"
        "    return upright, {'upright': upright}\n"
    )
    run_dir = tmp_path / "eval"
    args = [a for a in TINY if a.startswith(("task=", "train.", "rl.", "++rl.", "sandbox."))]
    out = _run("rewardgen-eval", *args, f"reward_file={reward}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["results"][0]["status"] == "ok", summary["results"][0]["reason"]
    assert summary["results"][0]["component_stats"].keys() == {"upright"}


def test_rewardgen_eval_rejects_hostile_file_in_one_line(tmp_path):
    reward = tmp_path / "reward.py"
    reward.write_text("import os\n\ndef compute_reward(state, action, prev_state):\n    return 0.0, {}\n")
    out = _run("rewardgen-eval", "task=inverted_pendulum", f"reward_file={reward}",
               f"hydra.run.dir={tmp_path / 'e'}", cwd=tmp_path)
    assert out.returncode == 1
    assert "import of 'os' is not allowed" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script", ["rewardgen", "rewardgen-eval"])
def test_help(script, tmp_path):
    out = _run(script, "--help", cwd=tmp_path)
    assert out.returncode == 0 and "Hydra" in out.stdout


def test_rewardgen_resume_finishes_only_what_is_missing(tmp_path):
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("loop.", "final."))]
    first = _run("rewardgen", *args, "loop.generations=1", "loop.samples=2", "final.enabled=false",
                 f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir / "gen_000" / "cand_01" / "result.json").unlink()  # as if killed while training it
    out = _run("rewardgen-resume", str(run_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    done = [(e["generation"], e["index"]) for e in events if e["event"] == "candidate_done"]
    assert sorted(done) == [(0, 0), (0, 1), (0, 1)]  # cand_00 was not trained again
    assert sum(e["event"] == "llm_request" for e in events) == 1
    assert (run_dir / "gen_000" / "cand_01" / "result.json").is_file()


def test_rewardgen_resume_rejects_a_foreign_directory(tmp_path):
    out = _run("rewardgen-resume", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1
    assert "not a rewardgen run directory" in out.stderr
