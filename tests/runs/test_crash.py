"""Crash safety: kill -9 at bad moments, then resume; locks; the LLM down for good.

Every run here is the real console script in its own session (as a user's shell would start
it), killed with ``os.killpg(SIGKILL)``, and resumed with ``rewardgen-resume``. The loopback
server's request log tells which LLM requests were sent; events.jsonl tells what was trained.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer, Reply, slow
from tests.helpers import TINY
from tests.search.test_loop_llm import pendulum_answerer

BIN = Path(sys.executable).parent
BASE = [a for a in TINY if not a.startswith(("loop.", "final."))] + ["final.enabled=false"]
_STDERR: dict[int, Path] = {}  # pid -> the file its stderr goes to


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}


def _llm_args(server: FakeOpenAIServer, tmp_path: Path, retries: int = 2) -> list[str]:
    return ["llm=openai", "llm.model=fake-model", f"llm.base_url={server.base_url}",
            f"llm.cache_dir={tmp_path / 'cache'}", f"llm.max_retries={retries}",
            "llm.backoff_initial_s=0.01", "llm.backoff_max_s=0.02"]


def _start(tmp_path: Path, script: str, *args: str) -> subprocess.Popen[str]:
    """Start a console script in a new session; stderr goes to a file (a pipe could fill up)."""
    path = tmp_path / f"{script}-{time.monotonic_ns()}.err"
    with path.open("w") as log:
        proc = subprocess.Popen([str(BIN / script), *args], cwd=tmp_path, env=_env(), text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)
    _STDERR[proc.pid] = path
    return proc


def _stderr(proc: subprocess.Popen[str]) -> str:
    return _STDERR[proc.pid].read_text()


def _finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    rc = proc.wait(timeout=timeout)
    return rc, _stderr(proc)


def _run(tmp_path: Path, script: str, *args: str) -> tuple[int, str]:
    return _finish(_start(tmp_path, script, *args))


def _wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen[str],
              timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before {what}:\n{_stderr(proc)[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _workers(run_dir: Path) -> list[int]:
    """Live sandbox workers training for ``run_dir`` (read from /proc, as ps would)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"rewardgen.sandbox.child" in cmdline and str(run_dir).encode() in cmdline:
                found.append(int(entry.name))
    return found


def _no_workers_left(run_dir: Path, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while _workers(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers(run_dir) == [], "orphaned sandbox workers survived the kill"


def _events(run_dir: Path, kind: str | None = None) -> list[dict[str, Any]]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line while the run writes
    return [e for e in out if kind is None or e["event"] == kind]


def _trained(run_dir: Path) -> Counter[tuple[int, int]]:
    return Counter((e["generation"], e["index"]) for e in _events(run_dir, "candidate_done"))


def _generation_of(request: Any, run_dir: Path) -> int:
    for path in sorted(run_dir.glob("gen_*/messages.json")):
        if json.loads(path.read_text()) == request.body["messages"]:
            return int(path.parent.name.removeprefix("gen_"))
    raise AssertionError("a request whose prompt is in no generation")


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("rewardgen: error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_kill_9_during_llm_call_writing_and_training_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(answerer=pendulum_answerer) as server:
        server.script(slow(30))  # the first answer never arrives: the run is killed waiting
        args = [*BASE, "loop.generations=2", "loop.samples=2", *_llm_args(server, tmp_path),
                f"hydra.run.dir={run_dir}"]

        # (a) killed while the LLM is thinking
        proc = _start(tmp_path, "rewardgen", *args)
        _wait_for("the LLM request", lambda: len(server.chat_requests) == 1, proc)
        _kill(proc)
        assert not (run_dir / "gen_000" / "responses.json").exists()

        # (c) killed right after the answers were written
        proc = _start(tmp_path, "rewardgen-resume", str(run_dir))
        _wait_for("saved answers", lambda: bool(_events(run_dir, "responses_saved")), proc)
        _kill(proc)

        # (b) killed while training (made long by an override, so the kill lands in it);
        # meanwhile a second resume of the live run is refused
        started = time.time()
        proc = _start(tmp_path, "rewardgen-resume", str(run_dir), "train.timesteps=1000000")
        _wait_for("training", lambda: any(
            p.stat().st_mtime >= started for p in run_dir.glob("gen_000/cand_*/train/progress.json")
        ), proc)
        rc, err = _run(tmp_path, "rewardgen-resume", str(run_dir))
        assert rc == 1
        line = _one_error_line(err)
        assert f"{run_dir} is in use by another rewardgen process (pid {proc.pid} " in line
        assert len(err.strip().splitlines()) == 1
        assert _workers(run_dir), "the training under way runs in sandbox workers"
        _kill(proc)
        _no_workers_left(run_dir)
        assert not _trained(run_dir)

        rc, err = _run(tmp_path, "rewardgen-resume", str(run_dir))
        assert rc == 0, err[-3000:]
        requests = [_generation_of(r, run_dir) for r in server.chat_requests]

    # only the unanswered request was sent again; each candidate trained to the end once
    assert requests == [0, 0, 1]
    assert _trained(run_dir) == {(g, i): 1 for g in range(2) for i in range(2)}
    assert {e["path"] for e in _events(run_dir, "training_interrupted")} >= {
        "gen_000/cand_00", "gen_000/cand_01"}
    assert len(_events(run_dir, "run_resumed")) == 3
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["generations"] == 2 and summary["candidates"] == 4
    assert summary["stopped"] is None and summary["best"] is not None
    assert _events(run_dir)[-1]["event"] == "run_finished"
    assert not list(run_dir.rglob("*.tmp"))
    assert _workers(run_dir) == []


def test_llm_down_for_good_stops_cleanly_and_resume_continues(tmp_path):
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(answerer=pendulum_answerer) as first:
        # one choice for n=2, and its fill-up request fails twice (both tries): 1 of 2 answers;
        # no keep-alive, so that no open connection outlives the server
        close = {"Connection": "close"}
        first.script(Reply(n=1, headers=close), *[Reply(status=500, headers=close)] * 2)
        port = first.base_url.split(":")[-1].split("/")[0]
        proc = _start(tmp_path, "rewardgen", *BASE, "loop.generations=2", "loop.samples=2",
                      *_llm_args(first, tmp_path, retries=1), f"hydra.run.dir={run_dir}")
        _wait_for("saved answers", lambda: bool(_events(run_dir, "responses_saved")), proc)
    # the server is gone for good before generation 1 asks
    rc, err = _finish(proc)
    assert rc == 1
    line = _one_error_line(err)
    assert err.strip().splitlines()[-1] == line
    assert line.startswith(f"rewardgen: error: LLM server at 127.0.0.1:{port} unreachable after "
                           "2 tries")
    assert line.endswith(f"the run directory is kept: resume with `rewardgen-resume {run_dir}`")
    assert _events(run_dir, "answers_short") == [
        {**_events(run_dir, "answers_short")[0], "generation": 0, "asked": 2, "got": 1}]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"].startswith("generation 1: LLM server at 127.0.0.1")
    assert summary["candidates"] == 1 and summary["best"]["candidate"] == "gen_000/cand_00"
    assert [e["event"] for e in _events(run_dir)][-1] == "run_stopped"

    rc, err = _run(tmp_path, "rewardgen-resume", str(run_dir), "llm.nonsense=1")
    assert rc == 1 and "resume override: llm.nonsense is not a config key" in err
    assert len(err.strip().splitlines()) == 1

    # as if killed between the worker's result.json and its event: resume must not retrain it
    events = (run_dir / "events.jsonl").read_text().splitlines()
    (run_dir / "events.jsonl").write_text(
        "\n".join(e for e in events if json.loads(e)["event"] != "candidate_done") + "\n")

    with FakeOpenAIServer(answerer=pendulum_answerer) as second:
        rc, err = _run(tmp_path, "rewardgen-resume", str(run_dir),
                       f"llm.base_url={second.base_url}")
        assert rc == 0, err[-3000:]
        assert [_generation_of(r, run_dir) for r in second.chat_requests] == [1]
    assert _trained(run_dir) == {(0, 0): 1, (1, 0): 1, (1, 1): 1}
    assert [e.get("recovered") for e in _events(run_dir, "candidate_done")] == [True, None, None]
    resumed = _events(run_dir, "run_resumed")
    assert resumed[-1]["overrides"] == [f"llm.base_url={second.base_url}"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] is None
    assert summary["generations"] == 2 and summary["candidates"] == 3


def test_parallel_runs_started_together_get_their_own_directories(tmp_path):
    args = [*BASE, "llm=offline", "loop.generations=1", "loop.samples=1"]
    procs = [_start(tmp_path, "rewardgen", *args) for _ in range(2)]
    for proc in procs:
        rc, err = _finish(proc)
        assert rc == 0, err[-3000:]
    dirs = sorted((tmp_path / "runs" / "inverted_pendulum").iterdir())
    assert len(dirs) == 2
    for run_dir in dirs:
        assert (run_dir / "summary.json").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
        assert [e["event"] for e in _events(run_dir)].count("run_started") == 1


def test_default_run_directory_is_unique_within_one_second():
    from hydra import compose, initialize_config_dir

    import rewardgen.cli.app  # noqa: F401 - registers the resolver
    from rewardgen.resources import resource_dir

    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        dirs = [compose("config", return_hydra_config=True).hydra.run.dir for _ in range(2)]
    assert dirs[0] != dirs[1]
    assert all(d.startswith("runs/hopper/") for d in dirs)


@pytest.mark.parametrize("script", ["rewardgen-resume", "rewardgen"])
def test_other_format_version_is_one_line(tmp_path, script):
    run_dir = tmp_path / "old"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "manifest.json").write_text(
        json.dumps({"format_version": 99, "rewardgen_version": "9.9.9", "task": "inverted_pendulum"}))
    (run_dir / ".hydra" / "config.yaml").write_text("task: inverted_pendulum\n")
    args = [str(run_dir)] if script == "rewardgen-resume" else [
        "task=inverted_pendulum", "llm=offline", f"hydra.run.dir={run_dir}"]
    rc, err = _run(tmp_path, script, *args)
    assert rc == 1
    line = _one_error_line(err)
    assert len(err.strip().splitlines()) == 1, err
    assert f"{run_dir} was written by rewardgen 9.9.9 (run-directory format 99)" in line
    assert "Open it with that version or start a new run." in line
