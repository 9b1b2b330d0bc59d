"""Executors run a generation's candidate jobs: a local process pool, or Ray.

They are the only way any entry point starts a worker (the search, the final phase,
``rewardgen-eval``, ``rewardgen-replay``, judges, screening). Both keep the same promise: every job gets a :class:`CandidateResult` (a candidate
that crashes, times out or loses its machine is a ``failed``/``timeout`` result with a reason),
``on_done`` is called as each one finishes, and the artifacts end up in ``job.out_dir``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.runs.records import CandidateJob, CandidateResult

OnDone = Callable[[int, CandidateResult], None]
EXECUTORS = ("local", "ray")


class Executor(Protocol):
    @property
    def workers(self) -> int:
        """How many candidates train at once."""
        ...

    def run(self, jobs: Sequence[CandidateJob], on_done: OnDone | None = None, *,
            target: str | None = None, sandbox: SandboxConfig | None = None) -> list[CandidateResult]:
        """Run every job; call ``on_done(index, result)`` as each finishes; results in job order.

        ``target`` (default: training) and ``sandbox`` override the executor's for one batch.
        """
        ...


def make_executor(cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str) -> Executor:
    """The executor named by ``executor.name`` (``executor=local|ray`` on the command line)."""
    if cfg.name == "local":
        from rewardgen.executors.local import LocalExecutor

        return LocalExecutor(cfg, sandbox, rl, device)
    if cfg.name == "ray":
        from rewardgen.executors.ray import RayExecutor

        return RayExecutor(cfg, sandbox, rl, device)
    raise ConfigError(f"unknown executor {cfg.name!r}; valid executors: {', '.join(EXECUTORS)}")
