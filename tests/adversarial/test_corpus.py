"""Every hostile program in programs/ through the real path, then a generation of them in the loop.

The corpus runs once per session (module fixture): the static check in this process for all,
the real isolated worker (``run_isolated`` + ``run_candidate``, tiny PPO, 40 s timeout, 4 GB)
two at a time for those that pass it. Each program is then one parametrised assertion: its
expected status and reason. Both runs also check that the host was left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rewardgen.cli.app import run
from tests.adversarial.corpus import (
    PWNED_PREFIX,
    Outcome,
    figures,
    load_corpus,
    markdown_table,
    matches,
    run_corpus,
)
from tests.fakes.openai_server import FakeOpenAIServer, Reply, markdown
from tests.helpers import tiny_config

NAMES = [p.name for p in load_corpus()]
RESULT_CAP_BYTES = 256 * 1024  # a contained candidate's result.json stays small
TRACEBACK_CAP = 4100


# ---------------------------------------------------------------- host canaries
def _snapshot(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``directory`` (directories as 'dir')."""
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _pwned_in_tmp() -> list[str]:
    return sorted(n for n in os.listdir("/tmp") if n.startswith(PWNED_PREFIX))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class Canary:
    """A directory with a file the programs aim at, and a listening loopback socket."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "canary"
        self.dir.mkdir(parents=True)
        (self.dir / "evil.npy").write_bytes(b"not really a pickle")
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.before = _snapshot(self.dir)
        self.pwned_before = _pwned_in_tmp()

    def assert_untouched(self) -> None:
        assert _snapshot(self.dir) == self.before, "a program changed the canary directory"
        assert _pwned_in_tmp() == self.pwned_before, "a program created files in /tmp"
        with pytest.raises(BlockingIOError):
            conn, peer = self.listener.accept()
            conn.close()
            raise AssertionError(f"the canary socket accepted a connection from {peer}")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Outcome], Canary]]:
    root = tmp_path_factory.mktemp("adversarial")
    canary = Canary(root)
    programs = load_corpus(canary.dir, canary.port)
    outcomes = run_corpus(programs, root / "workers", workers=2)
    print("\n" + markdown_table(outcomes))
    print(json.dumps(figures(outcomes), indent=2))
    yield outcomes, canary
    canary.close()


def _outcome(outcomes: list[Outcome], name: str) -> Outcome:
    return next(o for o in outcomes if o.program.name == name)


# ---------------------------------------------------------------- one test per program
@pytest.mark.parametrize("name", NAMES)
def test_program_is_contained_with_its_reason(
    corpus_run: tuple[list[Outcome], Canary], name: str
) -> None:
    outcome = _outcome(corpus_run[0], name)
    program = outcome.program
    assert outcome.status == program.expect, f"{name}: {outcome.status}: {outcome.reason}"
    assert program.reason in outcome.reason, f"{name}: reason was {outcome.reason!r}"
    assert "\n" not in outcome.reason and len(outcome.reason) <= 400
    if outcome.result is not None and outcome.out_dir is not None:  # it reached the worker
        assert len(outcome.result.traceback) <= TRACEBACK_CAP
        out_dir = outcome.out_dir
        assert (out_dir / "result.json").stat().st_size <= RESULT_CAP_BYTES
        assert (out_dir / "train.worker.log").is_file()


def test_corpus_is_large_and_every_layer_is_exercised(
    corpus_run: tuple[list[Outcome], Canary],
) -> None:
    outcomes, _ = corpus_run
    counts = figures(outcomes)
    assert counts["programs"] >= 40
    assert counts["ok (not contained)"] == 0
    assert counts["as expected"] == counts["programs"], [
        o.program.name for o in outcomes if not matches(o)
    ]
    for key in (
        "rejected statically (loop process)",
        "rejected at load in the worker",
        "rejected by the smoke test",
        "failed during training",
        "timed out",
    ):
        assert counts[key] >= 1, key


def test_corpus_left_the_host_untouched(corpus_run: tuple[list[Outcome], Canary]) -> None:
    corpus_run[1].assert_untouched()


# ---------------------------------------------------------------- one generation in the loop
GOOD_PENDULUM = """import numpy as np


def compute_reward(state, action, prev_state):
    upright = float(np.exp(-5.0 * abs(state.pole_angle)))
    return upright, {"upright": upright}
"""
LOOP_PROGRAMS = [
    "deep_nesting",  # used to crash the loop itself (RecursionError in its static check)
    "parser_bomb",  # used to crash the loop in code extraction
    "np_ma_core_builtins",
    "np_savez_compressed",
    "monkeypatch_np_mean",
    "socket_connect",
    "huge_exception_message",
    "component_flood_late",
    "memory_bomb_list_growth",
    "infinite_loop",
    "c_call_hang",
]


def test_hostile_generation_leaves_loop_and_host_intact(tmp_path: Path) -> None:
    canary = Canary(tmp_path)
    programs = {p.name: p for p in load_corpus(canary.dir, canary.port)}
    hostile = [programs[name] for name in LOOP_PROGRAMS]
    contents = [markdown(GOOD_PENDULUM)] + [markdown(p.source) for p in hostile]
    try:
        with FakeOpenAIServer() as server:

            def generation(contents: list[str], run_dir: Path) -> dict[str, Any]:
                server.script(Reply(contents=list(contents)))
                cfg = tiny_config(
                    "llm=openai",
                    "llm.model=fake-model",
                    f"llm.base_url={server.base_url}",
                    f"llm.cache_dir={tmp_path / 'cache'}",
                    "final.enabled=false",
                    "loop.generations=1",
                    f"loop.samples={len(contents)}",
                    "sandbox.timeout_s=40",
                    "sandbox.memory_mb=4096",
                )
                return run(cfg, run_dir, interactive=False)

            # a harmless run first: the loop loads torch, MuJoCo, ... (~650 MB) on first use,
            # and only what the hostile candidates add is measured
            generation([markdown(GOOD_PENDULUM)], tmp_path / "warm-up")
            rss_before = _rss_mb()
            summary = generation(contents, tmp_path / "run")
            rss_growth = _rss_mb() - rss_before

        gen = tmp_path / "run" / "gen_000"
        results = [
            json.loads((gen / f"cand_{i:02d}" / "result.json").read_text())
            for i in range(len(contents))
        ]
        assert results[0]["status"] == "ok", results[0]["reason"]
        assert summary["best"]["candidate"] == "gen_000/cand_00"
        for program, result in zip(hostile, results[1:], strict=True):
            assert result["status"] == program.expect, (program.name, result["reason"])
            assert program.reason in result["reason"], (program.name, result["reason"])
        canary.assert_untouched()
        assert rss_growth < 200, f"the loop's process grew by {rss_growth:.0f} MB"
        leftovers = sorted(p.name for p in tmp_path.iterdir())
        assert leftovers == ["cache", "canary", "run", "warm-up"], leftovers
    finally:
        canary.close()
