"""Executors run a generation's candidate jobs: a local process pool, or Ray."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.results import CandidateJob, CandidateResult

OnDone = Callable[[int, CandidateResult], None]
EXECUTORS = ("local",)


class Executor(Protocol):
    workers: int

    def run(self, jobs: Sequence[CandidateJob], on_done: OnDone | None = None) -> list[CandidateResult]:
        """Run every job; call ``on_done(index, result)`` as each finishes; results in job order."""
        ...


def make_executor(cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str) -> Executor:
    if cfg.name == "local":
        from rewardgen.executors.local import LocalExecutor

        return LocalExecutor(cfg, sandbox, rl, device)
    raise ConfigError(f"unknown executor {cfg.name!r}; valid executors: {', '.join(EXECUTORS)}")
