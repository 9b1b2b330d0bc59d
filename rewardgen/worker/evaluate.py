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
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CURVE_FILE, END_FILE, CandidateJob, CandidateResult
from rewardgen.runs.trajectories import TRAJECTORY_FILE, save_episodes
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.checkpoints import CheckpointError, list_checkpoints, load_weights
from rewardgen.train.stats import aggregate_fitness

log = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 10_000  # evaluation episodes start from states training never reset to
OFF_POLICY = ("sac",)
FOLLOW_POLL_S = 0.25  # how often a following evaluator looks for a new checkpoint


def _eval_env(task: TaskSpec, job: CandidateJob) -> Any:
    overrides: dict[str, Any] = {}
    if job.max_episode_steps is not None:
        overrides["max_episode_steps"] = job.max_episode_steps
    return task.make_env(**overrides)


def build_policy_model(task: TaskSpec, job: CandidateJob) -> Any:
    """The candidate's SB3 model, built from the trusted job on the native env, on the CPU.

    Off-policy algorithms get a one-transition replay buffer: the evaluator only predicts.
    ``rl=brax_ppo`` policies are rebuilt in torch (:mod:`rewardgen.train.brax_policy`).
    """
    from rewardgen.train.brax_config import is_brax

    if is_brax(job.rl):
        from rewardgen.train.brax_policy import build_policy_model as build_brax_policy

        return build_brax_policy(task, job.rl)
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardgen.train.sb3 import build_model

    rl = dict(job.rl)
    if str(rl.get("algo", "ppo")).lower() in OFF_POLICY:
        rl["hyperparams"] = {**(rl.get("hyperparams") or {}), "buffer_size": 1}
    eval_job = dataclasses.replace(job, rl=rl, device="cpu", reward_source=None)
    venv = DummyVecEnv([lambda: _eval_env(task, job)])
    return build_model(eval_job, venv, None)


def run_episode(task: TaskSpec, env: Any, act: Callable[[Any], Any],
                seed: int | None) -> dict[str, Any]:
    """One episode on the native env, ``act(obs)`` choosing the actions: fitness, success,
    native return, length, whether it ended early, and the State views and actions."""
    obs, _ = env.reset(seed=seed)
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    state = builder.build()
    tracker.reset(state)
    states, actions, native_return, terminated = [state], [], 0.0, False
    while True:
        action = act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        state = builder.build()
        tracker.update(state, info)
        states.append(state)
        actions.append(np.asarray(action, dtype=np.float32).copy())
        native_return += float(reward)
        if terminated or truncated:
            break
    fitness = float(tracker.value)
    return {"fitness": fitness, "success": task.is_success(fitness), "native_return": native_return,
            "length": len(actions), "ended_early": bool(terminated), "states": states,
            "actions": actions}


def deterministic(model: Any) -> Callable[[Any], Any]:
    """The policy's deterministic action, as :func:`run_episode` asks for it."""
    return lambda obs: model.predict(obs, deterministic=True)[0]


def evaluate_checkpoint(task: TaskSpec, env: Any, model: Any, timesteps: int, episodes: int,
                        seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One point of the curve: ``episodes`` episodes, the first reset with ``seed``."""
    act = deterministic(model)
    runs = [run_episode(task, env, act, seed if i == 0 else None) for i in range(episodes)]
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


def _end_marker(out: Path) -> tuple[bool, int | None]:
    """(training ended, the last checkpoint that counts) from the parent's :data:`END_FILE`."""
    path = out / END_FILE
    if not path.is_file():
        return False, None
    until = json.loads(path.read_text()).get("until")
    return True, None if until is None else int(until)


def _checkpoints(job: CandidateJob, out: Path) -> Iterator[tuple[int, Path]]:
    """The checkpoints to score: all of them, or (``job.follow``) each as it appears.

    A following evaluator yields nothing new until the parent writes :data:`END_FILE`; it reads
    the marker *before* listing, so the listing after it is complete (the trainer is dead).
    """
    limit = expected_checkpoints(job)
    if not job.follow:
        yield from list_checkpoints(job.checkpoint_dir or "", max_count=limit)
        return
    done = -1
    while True:
        ended, until = _end_marker(out)
        fresh = [(t, p) for t, p in list_checkpoints(job.checkpoint_dir or "", max_count=limit)
                 if t > done and (until is None or t <= until)]
        for timesteps, path in fresh:
            done = timesteps
            yield timesteps, path
        if ended and not fresh:
            return
        if not fresh:
            time.sleep(FOLLOW_POLL_S)


def evaluate_candidate(job: CandidateJob) -> CandidateResult:
    """Worker target: score every checkpoint in ``job.checkpoint_dir``; never raises for them.

    With ``job.follow`` the training runs at the same time: each checkpoint is scored as it
    appears and the curve so far is written to :data:`CURVE_FILE` after each one (the parent
    reports it to ``loop.schedule``'s pruner), until the parent's :data:`END_FILE` says training
    ended; checkpoints past its ``until`` (a pruned candidate) do not count.

    A missing, malformed or mismatched checkpoint makes the candidate ``failed`` with the reason;
    the job itself (task, algorithm) is trusted, so errors in it propagate.
    """
    t0 = time.monotonic()
    out = Path(job.out_dir)
    task = load_task(job.task)
    if not job.checkpoint_dir:
        return CandidateResult(status="failed", reason="evaluation: the job names no checkpoints")
    model = build_policy_model(task, job)
    env = _eval_env(task, job)
    seed = job.seed + EVAL_SEED_OFFSET
    evaluations: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    paths: dict[int, Path] = {}
    try:
        for timesteps, path in _checkpoints(job, out):
            paths[timesteps] = path
            try:
                load_weights(model.policy, path)
            except CheckpointError as e:
                return CandidateResult(status="failed", reason=f"evaluation: {e}",
                                       evaluations=evaluations)
            entry, runs = evaluate_checkpoint(task, env, model, timesteps, job.eval_episodes, seed)
            evaluations.append(entry)
            stored.extend({**run, "timesteps": timesteps} for run in runs)
            log.info("checkpoint %d: fitness %.4g", timesteps, entry["fitness"])
            if job.follow:
                atomic_write_json(out / CURVE_FILE, evaluations)
        until = _end_marker(out)[1] if job.follow else None
        if until is not None and evaluations and evaluations[-1]["timesteps"] > until:
            # scored past the parent's decision (pruned at ``until``): that checkpoint is the end
            evaluations = [e for e in evaluations if e["timesteps"] <= until]
            stored = [r for r in stored if r["timesteps"] <= until]
            if evaluations:
                load_weights(model.policy, paths[evaluations[-1]["timesteps"]])
    except CheckpointError as e:
        return CandidateResult(status="failed", reason=f"evaluation: {e}", evaluations=evaluations)
    finally:
        env.close()
    if not evaluations:
        return CandidateResult(status="failed",
                               reason="evaluation: the training worker left no policy checkpoint")
    fitness, success_rate = aggregate_fitness(evaluations, job.selection, job.last_k)
    if job.save_policy:
        model.save(out / "policy.zip")
    save_episodes(stored, out / TRAJECTORY_FILE)
    return CandidateResult(
        status="ok",
        fitness=fitness,
        success_rate=success_rate,
        evaluations=evaluations,
        env_steps=int(evaluations[-1]["timesteps"]),
        wall_time_s=time.monotonic() - t0,
        seed=job.seed,
    )
