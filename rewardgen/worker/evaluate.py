"""The trusted evaluator: fitness, success, the evaluation curve and policy.zip from weights alone.

This worker target never loads reward code. It rebuilds the candidate's policy from the trusted
job (task, algorithm, hyperparameters), loads each checkpoint the untrusted training worker left
(plain tensors, :mod:`.checkpoints`), runs deterministic episodes on the task's *native* env,
scores them with the task's State view and fitness expression, and writes:

- ``result.json``: ``fitness`` and ``success_rate`` (aggregated by ``job.selection``) and
  ``evaluations``, one entry per checkpoint (the curve);
- ``policy.zip``: the SB3 model with the last checkpoint's weights, saved by this process (what
  export, videos and judges load);
- ``trajectories.npz``: States and actions of a few evaluation episodes with their fitness (what
  CARD screening compares candidates on).

Whatever the reward program did in its own process, these numbers come from here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.trajectories import TRAJECTORY_FILE, save_episodes
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.checkpoints import CheckpointError, list_checkpoints, load_weights
from rewardgen.train.stats import aggregate_fitness

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 10_000  # evaluation episodes start from states training never reset to
OFF_POLICY = ("sac",)


def _eval_env(task: TaskSpec, job: CandidateJob) -> Any:
    overrides: dict[str, Any] = {}
    if job.max_episode_steps is not None:
        overrides["max_episode_steps"] = job.max_episode_steps
    return task.make_env(**overrides)


def build_policy_model(task: TaskSpec, job: CandidateJob) -> Any:
    """The candidate's SB3 model, built from the trusted job on the native env, on the CPU.

    Off-policy algorithms get a one-transition replay buffer: the evaluator only predicts.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardgen.train.sb3 import build_model

    rl = dict(job.rl)
    if str(rl.get("algo", "ppo")).lower() in OFF_POLICY:
        rl["hyperparams"] = {**(rl.get("hyperparams") or {}), "buffer_size": 1}
    eval_job = dataclasses.replace(job, rl=rl, device="cpu", reward_source=None)
    venv = DummyVecEnv([lambda: _eval_env(task, job)])
    return build_model(eval_job, venv, None)


def run_episode(task: TaskSpec, env: Any, model: Any, seed: int | None) -> dict[str, Any]:
    """One deterministic episode on the native env: fitness, success, native return, length."""
    obs, _ = env.reset(seed=seed)
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    state = builder.build()
    tracker.reset(state)
    states, actions, native_return, length = [state], [], 0.0, 0
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        state = builder.build()
        tracker.update(state, info)
        states.append(state)
        actions.append(np.asarray(action, dtype=np.float32).copy())
        native_return += float(reward)
        length += 1
        if terminated or truncated:
            break
    fitness = float(tracker.value)
    return {"fitness": fitness, "success": task.is_success(fitness), "native_return": native_return,
            "length": length, "states": states, "actions": actions}


def evaluate_checkpoint(task: TaskSpec, env: Any, model: Any, timesteps: int, episodes: int,
                        seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One point of the curve: ``episodes`` episodes, the first reset with ``seed``."""
    runs = [run_episode(task, env, model, seed if i == 0 else None) for i in range(episodes)]
    successes = [r["success"] for r in runs]
    entry = {
        "timesteps": int(timesteps),
        "fitness": float(np.mean([r["fitness"] for r in runs])),
        "success_rate": None if any(s is None for s in successes)
        else float(np.mean([bool(s) for s in successes])),
        "native_return": float(np.mean([r["native_return"] for r in runs])),
        "length": float(np.mean([r["length"] for r in runs])),
    }
    return entry, runs


def expected_checkpoints(job: CandidateJob) -> int:
    """The most checkpoints an honest training of ``job`` leaves (more is a malformed folder).

    SB3's ``learn`` stops at the end of a rollout, so it may run up to one rollout past the
    budget (PPO: ``n_steps`` x ``n_envs``), with a checkpoint every ``eval_freq`` steps plus one
    at the end.
    """
    from rewardgen.train.sb3 import hyperparams_for

    if job.eval_freq <= 0:
        return 2
    n_steps = int(hyperparams_for(job.rl, job.task).get("n_steps", 2048))
    most = job.timesteps + n_steps * max(1, int(job.rl.get("n_envs", 1)))
    return 2 + most // job.eval_freq


def evaluate_candidate(job: CandidateJob) -> CandidateResult:
    """Worker target: score every checkpoint in ``job.checkpoint_dir``; never raises for them.

    A missing, malformed or mismatched checkpoint makes the candidate ``failed`` with the reason;
    the job itself (task, algorithm) is trusted, so errors in it propagate.
    """
    t0 = time.monotonic()
    out = Path(job.out_dir)
    task = load_task(job.task)
    if not job.checkpoint_dir:
        return CandidateResult(status="failed", reason="evaluation: the job names no checkpoints")
    try:
        checkpoints = list_checkpoints(job.checkpoint_dir, max_count=expected_checkpoints(job))
    except CheckpointError as e:
        return CandidateResult(status="failed", reason=f"evaluation: {e}")
    if not checkpoints:
        return CandidateResult(status="failed",
                               reason="evaluation: the training worker left no policy checkpoint")
    model = build_policy_model(task, job)
    env = _eval_env(task, job)
    seed = job.seed + EVAL_SEED_OFFSET
    evaluations: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    try:
        for timesteps, path in checkpoints:
            try:
                load_weights(model.policy, path)
            except CheckpointError as e:
                return CandidateResult(status="failed", reason=f"evaluation: {e}",
                                       evaluations=evaluations)
            entry, runs = evaluate_checkpoint(task, env, model, timesteps, job.eval_episodes, seed)
            evaluations.append(entry)
            stored.extend(runs)
            log.info("checkpoint %d: fitness %.4g", timesteps, entry["fitness"])
    finally:
        env.close()
    fitness, success_rate = aggregate_fitness(evaluations, job.selection, job.last_k)
    if job.save_policy:
        model.save(out / "policy.zip")
    save_episodes(stored, out / TRAJECTORY_FILE)
    return CandidateResult(
        status="ok",
        fitness=fitness,
        success_rate=success_rate,
        evaluations=evaluations,
        env_steps=int(checkpoints[-1][0]),
        wall_time_s=time.monotonic() - t0,
        seed=job.seed,
    )
