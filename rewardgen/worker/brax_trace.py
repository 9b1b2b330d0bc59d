"""Worker target: trace one reward program for ``rl=brax_ppo`` and write its compiled form.

This is the only process of the GPU path that runs generated Python. The training worker
(:mod:`rewardgen.worker.brax_train`) starts it as a child inside its own sandbox, on the CPU
(``JAX_PLATFORMS=cpu``, no visible GPU), and then loads only :data:`BLOB_FILE`. The program is
checked statically, loaded with ``np`` bound to jax.numpy, traced over the task's State view
and exported (:mod:`rewardgen.sandbox.jax_trace`); the exported computation is then run on
recorded C-MuJoCo transitions (random actions, the job's seed), which must give finite rewards.
Any failure is a ``rejected`` result whose reason names the line and the fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.sandbox.contract import MAX_REWARD_MAGNITUDE, one_line, program_traceback
from rewardgen.sandbox.program import source_sha256
from rewardgen.tasks.spec import load_task

BLOB_FILE = "reward.jaxexport"
TRACE_TARGET = "rewardgen.worker.brax_trace:trace_candidate"


def _rejected(job: CandidateJob, t0: float, reason: str, tb: str = "") -> CandidateResult:
    return CandidateResult(
        status="rejected",
        reason=one_line(reason),
        traceback=tb,
        wall_time_s=time.monotonic() - t0,
        seed=job.seed,
        reward_sha256=source_sha256(job.reward_source or ""),
    )


def _smoke(blob: bytes, task_name: str, job: CandidateJob, view: object) -> None:
    """Run the exported reward on recorded transitions; raise on non-finite or huge values."""
    import jax.numpy as jnp
    from jax import export

    from rewardgen.sandbox.smoke import random_transitions

    task = load_task(task_name)
    env = task.make_env()
    try:
        env.reset(seed=job.seed)
        builder = task.state_builder(env)
        samples = random_transitions(env, builder.build, job.seed, max(1, job.smoke_states))
    finally:
        env.close()
    columns = list(zip(*[tuple(s) for s, _, _ in samples], strict=True))
    prev_columns = list(zip(*[tuple(p) for _, _, p in samples], strict=True))
    states = tuple(jnp.asarray(np.asarray(c, np.float32)) for c in columns)
    prevs = tuple(jnp.asarray(np.asarray(c, np.float32)) for c in prev_columns)
    actions = jnp.asarray(np.asarray([a for _, a, _ in samples], np.float32))
    total, components = export.deserialize(bytearray(blob)).call(states, actions, prevs)
    for name, values in [("total reward", total), *components.items()]:
        values = np.asarray(values)
        if not np.all(np.isfinite(values)):
            step = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RewardCodeError(f"smoke test: {name} is not finite on recorded step {step}")
        if np.max(np.abs(values)) > MAX_REWARD_MAGNITUDE:
            raise RewardCodeError(f"smoke test: {name} exceeds float32's range")


def trace_candidate(job: CandidateJob) -> CandidateResult:
    """Trace ``job.reward_source``, write :data:`BLOB_FILE` into ``job.out_dir``; never raises
    for the program (a failure is ``rejected``)."""
    from rewardgen.sandbox.jax_trace import export_reward, load_traceable
    from rewardgen.train.mjx_state import mjx_state_view

    t0 = time.monotonic()
    task = load_task(job.task)
    env = task.make_env()
    try:
        u = env.unwrapped
        view = mjx_state_view(task.state, u.model, float(u.dt))  # type: ignore[attr-defined]
        action_size = int(env.action_space.shape[0])  # type: ignore[index]
    finally:
        env.close()
    try:
        fn = load_traceable(job.reward_source or "", job.entry)
        blob = export_reward(fn, view.zeros(), action_size)
        _smoke(blob, job.task, job, view)
    except RewardCodeError as e:
        return _rejected(job, t0, str(e), program_traceback(e, job.reward_source))
    out = Path(job.out_dir) / BLOB_FILE
    out.write_bytes(blob)
    return CandidateResult(
        status="ok",
        wall_time_s=time.monotonic() - t0,
        seed=job.seed,
        reward_sha256=source_sha256(job.reward_source or ""),
    )


__all__ = ["BLOB_FILE", "TRACE_TARGET", "trace_candidate"]
