"""Train one candidate reward: the function the untrusted, sandboxed worker runs.

``run_candidate`` never raises for anything the candidate did: a program that fails the static
check or the smoke test is ``rejected``, one that breaks during training is ``failed``, and both
come back as a :class:`~rewardgen.runs.records.CandidateResult` with a one-line reason and a trimmed
traceback for the next prompt. It writes only under ``job.out_dir`` (``checkpoints/``, ``tb/``,
``progress.json``) and measures nothing: this process runs the reward program, so the fitness,
the curve and ``policy.zip`` come from the trusted evaluator (:mod:`rewardgen.worker.evaluate`),
which loads the checkpoints. Training statistics are returned as *reported* by the candidate.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.runs.records import PROGRESS_FILE, CandidateJob, CandidateResult
from rewardgen.sandbox.contract import (
    LARGE_REWARD,
    magnitude_reason,
    one_line,
    program_traceback,
    short_traceback,
)
from rewardgen.sandbox.program import load_program, source_sha256
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.brax_config import is_brax
from rewardgen.train.callbacks import (
    CheckpointCallback,
    EpisodeStatsCallback,
    ProgressFileCallback,
)
from rewardgen.train.checkpoints import CHECKPOINT_DIR
from rewardgen.train.sb3 import (
    build_model,
    make_env,
    make_vec_env,
)
from rewardgen.train.stats import pearson

log = logging.getLogger(__name__)

Sample = tuple[Any, np.ndarray, Any]
REPORTED_FIELDS = ["component_stats", "episode_returns", "native_returns", "episode_lengths",
                   "episode_fitness", "reward_fitness_correlation", "env_steps"]


def record_smoke_samples(task: TaskSpec, job: CandidateJob) -> list[Sample]:
    """``job.smoke_states`` (state, action, prev_state) triples from random actions.

    The env runs the native reward (no generated code is called while recording) and is reset
    with the job's seed, so the smoke test sees the same states on every run.
    """
    from rewardgen.sandbox.smoke import random_transitions

    env = make_env(task, job, reward_fn=None)
    try:
        return random_transitions(env, env.current_state, job.seed, job.smoke_states)
    finally:
        env.close()


def _rejected(job: CandidateJob, t0: float, reason: str, tb: str = "") -> CandidateResult:
    sha = source_sha256(job.reward_source) if job.reward_source else None
    return CandidateResult(
        status="rejected",
        reason=reason,
        traceback=tb,
        wall_time_s=time.monotonic() - t0,
        reward_sha256=sha,
        seed=job.seed,
        reported=list(REPORTED_FIELDS),
    )


def run_candidate(job: CandidateJob) -> CandidateResult:
    """Check, smoke-test, train and evaluate one candidate; always return a result.

    Raises:
        ConfigError, TaskError: the job itself is malformed (not the candidate's fault).
    """
    if is_brax(job.rl):  # rl=brax_ppo: traced reward, Brax PPO on MJX (worker/brax_train.py)
        from rewardgen.worker.brax_train import run_candidate as run_brax_candidate

        return run_brax_candidate(job)
    t0 = time.monotonic()
    task = load_task(job.task)
    out_dir = Path(job.out_dir)
    sha = source_sha256(job.reward_source) if job.reward_source else None

    # ---------------------------------------------------------------- static check + smoke
    if job.reward_kind in ("program", "progress"):
        entry = "progress" if job.reward_kind == "progress" else job.entry
        try:
            program = load_program(job.reward_source or "", entry, task.state_names)
        except RewardCodeError as e:
            return _rejected(job, t0, one_line(f"static check: {e}"))
        from rewardgen.sandbox.smoke import smoke_test  # layer 2 of isolation

        fn = program.fn
        if entry == "progress":
            from rewardgen.rewards.progress import smoke_view

            fn = smoke_view(fn)  # named progress terms are checked term by term
        samples = record_smoke_samples(task, job)
        try:
            smoke_test(fn, samples, job.smoke_call_timeout_s, entry=entry)
        except RewardCodeError as e:
            message = str(e).removeprefix("smoke test: ")
            tb = program_traceback(e, job.reward_source)
            return _rejected(job, t0, one_line(f"smoke test: {message}"), tb)

    # ---------------------------------------------------------------- envs, model, callbacks
    out_dir.mkdir(parents=True, exist_ok=True)
    n_envs = int(job.rl.get("n_envs", 4))
    vec_env = str(job.rl.get("vec_env", "dummy"))
    venv = make_vec_env(task, job, n_envs=n_envs, seed=job.seed, vec_env=vec_env)
    vision_cbs: list[Any] = []
    if job.reward_kind in ("clip", "vlm_preference"):
        from rewardgen.train.sb3 import resolve_device
        from rewardgen.train.vision import vision_stack

        try:
            venv, vision_cbs = vision_stack(task, job, venv, resolve_device(job.device))
        except BaseException:
            venv.close()
            raise
    if job.reward_kind == "motif":
        from rewardgen.rewards.motif import motif_stack
        from rewardgen.train.sb3 import resolve_device

        try:
            venv = motif_stack(job, venv, resolve_device(job.device))
        except BaseException:
            venv.close()
            raise
    stats_cb = EpisodeStatsCallback()
    checkpoint_cb = CheckpointCallback(out_dir / CHECKPOINT_DIR, job.eval_freq, stats_cb)
    status, reason, tb = "ok", "", ""
    env_steps = 0

    # ---------------------------------------------------------------- train
    try:
        model = build_model(job, venv, str(out_dir / "tb") if job.tensorboard else None)
        try:
            progress_cb = ProgressFileCallback(out_dir / PROGRESS_FILE, job.timesteps)
            callbacks = [stats_cb, checkpoint_cb, progress_cb, *vision_cbs]
            model.learn(job.timesteps, callback=callbacks)
        finally:
            env_steps = int(model.num_timesteps)
    except ConfigError:
        raise
    except RewardCodeError as e:
        status, reason = "failed", one_line(f"during training: {e}")
        tb = getattr(e, "reward_traceback", None) or program_traceback(e, job.reward_source)
        log.info("candidate failed during training: %s", e)
    except Exception as e:  # noqa: BLE001 - a failing candidate is a result, never a crash
        status, reason = "failed", one_line(f"{type(e).__name__}: {e}")
        if stats_cb.max_abs_reward >= LARGE_REWARD and ("nan" in str(e) or "inf" in str(e)):
            cause = magnitude_reason(stats_cb.max_abs_reward)
            reason = one_line(f"during training: {cause} (training broke down: {reason})")
        tb = short_traceback(e)
        log.warning("candidate training raised %s: %s", type(e).__name__, e, exc_info=True)
    finally:
        venv.close()

    # ---------------------------------------------------------------- reported result
    return CandidateResult(
        status=status,
        reason=reason,
        traceback=tb,
        component_stats=checkpoint_cb.component_stats(),
        episode_returns=stats_cb.returns,
        native_returns=stats_cb.native_returns,
        episode_lengths=stats_cb.lengths,
        episode_fitness=stats_cb.fitness,
        reward_fitness_correlation=pearson(stats_cb.returns, stats_cb.fitness),
        env_steps=env_steps,
        wall_time_s=time.monotonic() - t0,
        reward_sha256=sha,
        seed=job.seed,
        reported=list(REPORTED_FIELDS),
    )
