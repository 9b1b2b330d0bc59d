"""Executors run a generation's candidate jobs: a local process pool, or Ray.

They are the only way any entry point starts a worker (the search, the final phase,
``rewardgen-eval``, ``rewardgen-replay``, judges, screening, the vision runner). Both keep the
same promise: every job gets a :class:`CandidateResult` (a candidate that crashes, times out or loses its machine is a ``failed``/``timeout`` result with a reason),
``on_done`` is called as each one finishes, and the artifacts end up in ``job.out_dir``.
"""

from __future__ import annotations

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.executors.base import EXECUTORS, Executor, OnDone, Pruner


def make_executor(cfg: ExecutorConfig, sandbox: SandboxConfig, rl: RLConfig, device: str) -> Executor:
    """The executor named by ``executor.name`` (``executor=local|ray`` on the command line)."""
    if cfg.name == "local":
        from rewardgen.executors.local import LocalExecutor

        return LocalExecutor(cfg, sandbox, rl, device)
    if cfg.name == "ray":
        from rewardgen.executors.ray import RayExecutor

        return RayExecutor(cfg, sandbox, rl, device)
    raise ConfigError(f"unknown executor {cfg.name!r}; valid executors: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "OnDone", "Pruner", "make_executor"]
