"""A worker target for the memory tests: build a candidate's whole training stack at its real
budget (so the replay buffer is allocated at its real size), take a few steps, and record the
process's peak address space and resident set in ``memory.json``.

Importable as ``tests.train.memory_targets`` inside the worker.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from rewardgen.runs.records import CandidateJob, CandidateResult

STEPS_PER_ENV = 4  # vector steps taken after the model is built


def _status_mb() -> dict[str, float]:
    text = Path("/proc/self/status").read_text()
    return {
        key: int(m.group(1)) / 1024
        for key in ("VmPeak", "VmHWM")
        if (m := re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE))
    }


def build_and_step(job: CandidateJob) -> CandidateResult:
    """The stack of :func:`rewardgen.worker.train.run_candidate`, ``STEPS_PER_ENV`` vector steps
    of learning instead of the budget (PPO: rollouts of that length, a few MB less than its
    ``n_steps``); ``memory.json`` says what it took."""
    from rewardgen.tasks.spec import load_task
    from rewardgen.train.sb3 import build_model, make_vec_env, resolve_device

    if str(job.rl.get("algo", "ppo")).lower() == "ppo":  # a rollout of a few steps, not n_steps
        hyperparams = {
            **(job.rl.get("hyperparams") or {}),
            "n_steps": STEPS_PER_ENV,
            "batch_size": STEPS_PER_ENV,
        }
        job = dataclasses.replace(job, rl={**job.rl, "hyperparams": hyperparams})
    else:  # collect STEPS_PER_ENV vector steps, not train_freq's (its frames are in the estimate)
        hyperparams = {**(job.rl.get("hyperparams") or {}), "train_freq": 1}
        job = dataclasses.replace(job, rl={**job.rl, "hyperparams": hyperparams})
    task = load_task(job.task)
    n_envs = int(job.rl.get("n_envs", 4))
    venv = make_vec_env(
        task, job, n_envs=n_envs, seed=job.seed, vec_env=str(job.rl.get("vec_env", "dummy"))
    )
    callbacks: list[Any] = []
    if job.reward_kind in ("clip", "vlm_preference"):
        from rewardgen.train.vision import vision_stack

        venv, callbacks = vision_stack(task, job, venv, resolve_device(job.device))
    try:
        model = build_model(job, venv, None)
        buffer = getattr(model, "replay_buffer", None)
        model.learn(STEPS_PER_ENV * n_envs, callback=callbacks)
        report = {
            **_status_mb(),
            "n_envs": n_envs,
            "buffer_size": None if buffer is None else buffer.buffer_size * buffer.n_envs,
            "buffer_mb": None if buffer is None else getattr(buffer, "nbytes", 0) / 2**20,
            "obs_dtype": None if buffer is None else str(buffer.observations.dtype),
        }
    finally:
        venv.close()
    Path(job.out_dir, "memory.json").write_text(json.dumps(report))
    return CandidateResult(status="ok", env_steps=int(model.num_timesteps))
