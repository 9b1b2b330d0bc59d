"""What every executor promises (see the package docstring): the protocol and its callback."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from rewardgen.config import SandboxConfig
from rewardgen.runs.records import CandidateResult, WorkerJob

OnDone = Callable[[int, CandidateResult], None]
EXECUTORS = ("local", "ray")


class Pruner(Protocol):
    """``loop.schedule``'s decisions for one generation (:class:`rewardgen.search.schedule.
    GenerationPruner`); ``key`` is the candidate's folder name."""

    def report(self, key: str, curve: Sequence[Mapping[str, Any]]) -> str | None:
        """The trusted curve so far; the reason to stop the candidate now, or None."""
        ...

    def finish(self, key: str, status: str, curve: Sequence[Mapping[str, Any]]) -> None:
        """The candidate ended (``ok``, ``pruned``, ``failed``, ...)."""
        ...

    def spec(self) -> dict[str, Any]:
        """Constructor arguments that rebuild it in another process (a Ray actor)."""
        ...


class Executor(Protocol):
    @property
    def workers(self) -> int:
        """How many candidates train at once."""
        ...

    def run(self, jobs: Sequence[WorkerJob], on_done: OnDone | None = None, *,
            target: str | None = None, sandbox: SandboxConfig | None = None,
            extra_env: Mapping[str, str] | None = None,
            pruner: Pruner | None = None) -> list[CandidateResult]:
        """Run every job; call ``on_done(index, result)`` as each finishes; results in job order.

        ``target`` (default: training) and ``sandbox`` override the executor's for one batch;
        ``extra_env`` is set in workers that load no reward code (a VLM labeller's key);
        ``pruner`` (training jobs, ``loop.schedule``) may stop candidates early (``pruned``).
        """
        ...
