"""The adversarial corpus: hostile or broken reward programs and the real path that contains them.

Each ``programs/*.py`` starts with a header::

    # expect: rejected|failed|timeout
    # reason: <substring of the one-line reason>
    # attack: <what it tries>
    # task: <task name>            (optional; default inverted_pendulum)

A program goes through what the loop does with an answer: the static check in this process
(``check_source``), then, when it passes, the isolated worker (``run_job``: the bubblewrap sandbox, then trusted evaluation, with
``run_candidate``) with a tiny training budget. Used by test_corpus.py and summarise.py.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rewardgen.config import SandboxConfig
from rewardgen.errors import RewardCodeError
from rewardgen.executors.pipeline import run_job
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.sandbox.validate import check_source

PROGRAM_DIR = Path(__file__).parent / "programs"
DEFAULT_TASK = "inverted_pendulum"
EXPECTATIONS = ("rejected", "failed", "timeout")
# 40 s: a loaded 2-core machine takes 10 s to import torch in a worker; only c_call_hang waits it out
SANDBOX = SandboxConfig(timeout_s=40.0, memory_mb=4096, output_limit_kb=64)
TINY_PPO = {
    "algo": "ppo",
    "n_envs": 1,
    "vec_env": "dummy",
    "policy": "MlpPolicy",
    "hyperparams": {
        "n_steps": 64,
        "batch_size": 32,
        "n_epochs": 1,
        "policy_kwargs": {"net_arch": [8]},
    },
}
# Programs name the host targets they aim at with these two lines; the tests point them at a
# canary directory and a listening socket of their own.
CANARY_DIR_LINE = re.compile(r'^CANARY_DIR = ".*"$', re.M)
CANARY_PORT_LINE = re.compile(r"^CANARY_PORT = \d+$", re.M)
PWNED_PREFIX = "rewardgen-pwned"  # files some programs try to create directly in /tmp
_HEADER = re.compile(r"^# (expect|reason|attack|task): (.+)$", re.M)


@dataclass(frozen=True)
class Program:
    """One corpus entry."""

    name: str
    source: str
    expect: str
    reason: str
    attack: str
    task: str = DEFAULT_TASK


@dataclass
class Outcome:
    """What the real path did with a program."""

    program: Program
    status: str
    reason: str
    layer: str
    result: CandidateResult | None = None
    wall_s: float = 0.0
    out_dir: Path | None = None  # the candidate directory, for those that reached the worker


def parse_program(path: Path, canary_dir: Path | None = None, port: int | None = None) -> Program:
    """Read one program and its header; point its canary constants at the given targets."""
    source = path.read_text()
    header = dict(_HEADER.findall(source))
    missing = {"expect", "reason", "attack"} - header.keys()
    if missing:
        raise ValueError(f"{path.name}: header lacks {sorted(missing)}; see corpus.py")
    if header["expect"] not in EXPECTATIONS:
        raise ValueError(f"{path.name}: expect {header['expect']!r} not in {EXPECTATIONS}")
    if canary_dir is not None:
        source = CANARY_DIR_LINE.sub(f'CANARY_DIR = "{canary_dir}"', source)
    if port is not None:
        source = CANARY_PORT_LINE.sub(f"CANARY_PORT = {port}", source)
    return Program(
        name=path.stem,
        source=source,
        expect=header["expect"],
        reason=header["reason"],
        attack=header["attack"],
        task=header.get("task", DEFAULT_TASK),
    )


def load_corpus(canary_dir: Path | None = None, port: int | None = None) -> list[Program]:
    return [parse_program(p, canary_dir, port) for p in sorted(PROGRAM_DIR.glob("*.py"))]


def static_outcome(program: Program) -> Outcome | None:
    """The loop's own static check (in this process); None when the program passes it."""
    try:
        check_source(program.source)
    except RewardCodeError as e:
        return Outcome(program, "rejected", f"static check: {e}", "static check (loop process)")
    return None


def job_for(program: Program, out_dir: Path, seed: int = 0) -> CandidateJob:
    return CandidateJob(
        task=program.task,
        out_dir=str(out_dir),
        reward_source=program.source,
        seed=seed,
        device="cpu",
        timesteps=256,
        eval_freq=128,
        eval_episodes=1,
        max_episode_steps=64,
        rl=TINY_PPO,
        save_policy=False,
        tensorboard=False,
        smoke_states=8,
        smoke_call_timeout_s=1.0,
    )


def layer_of(result: CandidateResult) -> str:
    """Which isolation layer stopped a candidate that reached the worker."""
    if result.status == "rejected":
        if result.reason.startswith("smoke test"):
            return "smoke test (worker)"
        return "load with restricted builtins (worker)"
    if result.status == "timeout":
        return "wall-clock timeout (worker)"
    if result.status == "failed":
        return "failed during training (worker)"
    return result.status


def run_worker(program: Program, out_dir: Path) -> Outcome:
    start = time.monotonic()
    result = run_job(job_for(program, out_dir), SANDBOX)  # bwrap training + trusted evaluation
    wall = time.monotonic() - start
    return Outcome(program, result.status, result.reason, layer_of(result), result, wall, out_dir)


def run_corpus(programs: Iterable[Program], root: Path, workers: int = 2) -> list[Outcome]:
    """Static check here for all; the real worker for those that pass, ``workers`` at a time."""
    programs = list(programs)
    outcomes: dict[str, Outcome] = {}
    to_run = []
    for program in programs:
        static = static_outcome(program)
        if static is None:
            to_run.append(program)
        else:
            outcomes[program.name] = static
    # the slowest first, so the two timeouts overlap the quick ones
    to_run.sort(key=lambda p: p.expect != "timeout")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {p.name: pool.submit(run_worker, p, root / p.name) for p in to_run}
        for name, future in futures.items():
            outcomes[name] = future.result()
    return [outcomes[p.name] for p in programs]


def matches(outcome: Outcome) -> bool:
    p = outcome.program
    return outcome.status == p.expect and p.reason in outcome.reason


def figures(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts for docs/security.md."""
    layers = Counter(o.layer for o in outcomes)
    return {
        "programs": len(outcomes),
        "rejected statically (loop process)": layers["static check (loop process)"],
        "rejected at load in the worker": layers["load with restricted builtins (worker)"],
        "rejected by the smoke test": layers["smoke test (worker)"],
        "failed during training": layers["failed during training (worker)"],
        "timed out": layers["wall-clock timeout (worker)"],
        "ok (not contained)": sum(o.status == "ok" for o in outcomes),
        "as expected": sum(matches(o) for o in outcomes),
    }


def markdown_table(outcomes: list[Outcome]) -> str:
    lines = ["| program | expected | got | layer | reason |", "|---|---|---|---|---|"]
    for o in outcomes:
        reason = o.reason.replace("|", "\\|")
        reason = reason if len(reason) <= 110 else reason[:107] + "..."
        lines.append(
            f"| {o.program.name} | {o.program.expect} | {o.status} | {o.layer} | {reason} |"
        )
    return "\n".join(lines)
