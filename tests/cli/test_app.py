"""One subprocess smoke test per console script, plus the one-line errors users see."""

from __future__ import annotations

import json
import os
import re
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


def test_state_view_piped_is_the_code_unwrapped(tmp_path):
    from rewardgen.methods.base import TaskPromptInfo
    from rewardgen.tasks.spec import load_task

    source = TaskPromptInfo.from_task(load_task("hopper")).state_source
    assert max(len(line) for line in source.splitlines()) > 80  # a pipe is 80 columns wide
    out = _run("rewardgen-tasks", "hopper", cwd=tmp_path, env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert source in out.stdout  # pasted into a file, it is the same code
    compile(source, "<state>", "exec")


def test_rewardgen_tasks_in_an_80_column_terminal_keeps_every_name(tmp_path):
    from rewardgen.tasks.spec import task_names

    out = _run("rewardgen-tasks", cwd=tmp_path, env={"COLUMNS": "80", "TTY_COMPATIBLE": "1"})
    assert out.returncode == 0, out.stderr
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout).splitlines()  # without the colours
    assert max(len(line) for line in lines) <= 80
    first_cells = {line.split("│")[1].strip() for line in lines if line.count("│") > 2}
    assert set(task_names()) <= first_cells, sorted(set(task_names()) - first_cells)


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
    # the next steps, as commands to paste; the README's log file name
    flat = " ".join(out.stderr.split())
    assert f"rewardgen-export {run_dir} --out" in flat
    assert f"rewardgen-eval task=inverted_pendulum reward_file={run_dir}/best/reward.py" in flat
    # issue 26: the budget before anything is spent, the ETA, and the search peak labelled
    assert "budget: search 1 generation x 2 candidates x 256 = 512 env steps" in flat
    assert re.search(r"env steps trained: 512; 0 left in the budget, ETA 0s at [0-9,]+ steps/s",
                     flat)
    assert "(search peak, 1 seed, loop.selection=max); no final phase retrained it" in flat
    assert summary["headline"]["source"] == "search"
    assert (run_dir / "rewardgen.log").is_file() and not (run_dir / "cli.log").exists()
    assert "[bold" not in (run_dir / "rewardgen.log").read_text()


def test_rewardgen_exits_1_when_every_candidate_failed(tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    for k in range(2):  # rejected by the static check: nothing trains, quickly
        (answers / f"gen_000.answer_{k:02d}.md").write_text(
            "```python\nimport os\ndef compute_reward(state, action, prev_state):\n"
            "    return 0.0, {}\n```\n")
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("loop.", "final."))]
    out = _run("rewardgen", *args, "llm=replay", f"llm.replay_dir={answers}", "loop.generations=1",
               "loop.samples=2", "final.enabled=false", "report.enabled=false",
               f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "no candidate trained successfully" in out.stderr
    assert "candidates" in out.stderr  # the table the message points at is there
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["statuses"] == {"rejected": 2} and summary["best"] is None


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


def test_rewardgen_eval_exits_1_when_the_reward_fails_in_its_worker(tmp_path):
    reward = tmp_path / "reward.py"  # passes the static check, fails the smoke test
    reward.write_text("def compute_reward(state, action, prev_state):\n    return 1.0 / 0.0, {}\n")
    run_dir = tmp_path / "eval"
    args = [a for a in TINY if a.startswith(("task=", "train.", "rl.", "++rl.", "sandbox."))]
    out = _run("rewardgen-eval", *args, f"reward_file={reward}", f"hydra.run.dir={run_dir}",
               cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["results"][0]["status"] != "ok"
    assert out.stderr.strip().splitlines()[-1].startswith(
        "rewardgen: error: 1 of 1 trainings did not finish")


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
    assert out.stdout.startswith(f"{script}: ")  # says what the tool is first


def test_rewardgen_help_shows_how_to_start_with_openai_vllm_and_ollama(tmp_path):
    out = _run("rewardgen", "--help", cwd=tmp_path).stdout
    assert "export OPENAI_API_KEY=sk-..." in out and "llm=openai llm.model=gpt-4o" in out
    assert "vllm serve" in out and "llm.base_url=http://127.0.0.1:8000/v1" in out
    assert "ollama pull" in out and "llm.base_url=http://127.0.0.1:11434/v1" in out
    assert "llm.model is the name the server serves" in out
    assert "rewardgen-resume RUN_DIR" in out


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
