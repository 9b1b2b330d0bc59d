"""The trusted evaluator: fitness, success, the evaluation curve and policy.zip from weights alone.

This worker target never loads reward code. It rebuilds the candidate's policy from the trusted
job (task, algorithm, hyperparameters), loads each checkpoint the untrusted training worker left
(plain tensors, :mod:`.checkpoints`), runs deterministic episodes on the task's *native* env,
scores them with the task's State view and fitness expression, and writes:

- ``result.json``: ``fitness`` and ``success_rate`` (aggregated by ``job.selection``) and
  ``evaluations``, one entry per checkpoint (the curve) with the reset seed of each episode;
- ``policy.zip``: the SB3 model with the last checkpoint's weights, saved by this process (what
  export, videos and judges load);
- ``trajectories.npz``: States and actions of a few evaluation episodes with their fitness (what
  CARD screening compares candidates on).

Whatever the reward program did in its own process, these numbers come from here. The episodes
start from secret seeds (:mod:`rewardgen.runs.seeds`) that no file the training worker could read
holds: ``job.eval_seeds``, drawn by the parent after training, or, for a following evaluator,
fresh ones drawn here for each checkpoint after it was read. A NaN or infinite action or fitness
fails the candidate with the reason; it never becomes a number selection could rank.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CURVE_FILE, END_FILE, CandidateJob, CandidateResult
from rewardgen.runs.seeds import check_seeds, draw_seeds
from rewardgen.runs.trajectories import TRAJECTORY_FILE, save_episodes
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.checkpoints import CheckpointError, list_checkpoints, load_weights
from rewardgen.train.stats import aggregate_fitness

log = logging.getLogger(__name__)

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


class NonFiniteError(ValueError):
    """A NaN or infinite action or fitness: the candidate fails with this one-line reason."""


def finite_action(action: Any, step: int) -> Any:
    """``action`` when every component is finite (``step`` counts from 1, for the reason).

    Raises:
        NonFiniteError: a NaN or infinite component.
    """
    values = np.asarray(action, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = values.ravel()[~np.isfinite(values.ravel())][0]
        raise NonFiniteError(f"the policy's action at step {step} is not finite ({bad}); "
                             "a policy must act with finite numbers")
    return action


def run_episode(task: TaskSpec, env: Any, act: Callable[[Any], Any],
                seed: int | None) -> dict[str, Any]:
    """One episode on the native env, ``act(obs)`` choosing the actions: fitness, success,
    native return, length, whether it ended early, and the State views and actions.

    Raises:
        NonFiniteError: an action or the episode's fitness is NaN or infinite (a non-finite
            action never reaches the simulator, which would silently zero it).
    """
    obs, _ = env.reset(seed=seed)
    builder = task.state_builder(env)
    tracker = task.fitness_tracker(env)
    state = builder.build()
    tracker.reset(state)
    actions: list[np.ndarray] = []
    states, native_return, terminated = [state], 0.0, False
    while True:
        action = finite_action(act(obs), len(actions) + 1)
        obs, reward, terminated, truncated, info = env.step(action)
        state = builder.build()
        tracker.update(state, info)
        states.append(state)
        actions.append(np.asarray(action, dtype=np.float32).copy())
        native_return += float(reward)
        if terminated or truncated:
            break
    fitness = float(tracker.value)
    if not math.isfinite(fitness):
        raise NonFiniteError(f"the episode's fitness is {fitness} after {len(actions)} steps; "
                             "only a finite fitness can be ranked")
    return {"fitness": fitness, "success": task.is_success(fitness), "native_return": native_return,
            "length": len(actions), "ended_early": bool(terminated), "states": states,
            "actions": actions, "seed": seed}


def predict(policy: Any, obs: Any, deterministic: bool = True) -> Any:
    """``policy.predict(obs)``'s action (an SB3 model or policy), NaN and all.

    torch's distribution check would raise a bare ``ValueError`` on a NaN mean before the
    action exists; it is off for this call, so :func:`finite_action` sees the NaN and names
    the step.
    """
    from torch.distributions import Distribution

    was = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        return policy.predict(obs, deterministic=deterministic)[0]
    finally:
        Distribution.set_default_validate_args(was)


def deterministic(model: Any) -> Callable[[Any], Any]:
    """The policy's deterministic action, as :func:`run_episode` asks for it."""
    return lambda obs: predict(model, obs)


def evaluate_checkpoint(task: TaskSpec, env: Any, model: Any, timesteps: int,
                        seeds: Sequence[int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One point of the curve: one episode per seed, each reset with its own seed.

    Raises:
        NonFiniteError: a non-finite action or fitness, named with its checkpoint and episode.
    """
    act = deterministic(model)
    runs = []
    for i, seed in enumerate(seeds):
        try:
            runs.append(run_episode(task, env, act, seed))
        except NonFiniteError as e:
            raise NonFiniteError(f"checkpoint {timesteps}, episode {i + 1}: {e}") from e
    successes = [r["success"] for r in runs]
    with np.errstate(over="ignore"):  # an overflow is reported below, as a reason
        fitness = float(np.mean([r["fitness"] for r in runs]))
    if not math.isfinite(fitness):
        raise NonFiniteError(f"checkpoint {timesteps}: the mean fitness over its episodes is "
                             f"{fitness}; only a finite fitness can be ranked")
    entry: dict[str, Any] = {
        "timesteps": int(timesteps),
        "fitness": fitness,
        "success_rate": None if any(s is None for s in successes)
        else float(np.mean([bool(s) for s in successes])),
        "native_return": float(np.mean([r["native_return"] for r in runs])),
        "length": float(np.mean([r["length"] for r in runs])),
        "seeds": [int(s) for s in seeds],
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

    Each checkpoint's episodes start from ``job.eval_seeds`` (one per episode, drawn by the
    parent after training) or, without them, from fresh secret seeds drawn right after that
    checkpoint was read; each entry of the curve records the seeds it used.

    With ``job.follow`` the training runs at the same time: each checkpoint is scored as it
    appears and the curve so far is written to :data:`CURVE_FILE` after each one (the parent
    reports it to ``loop.schedule``'s pruner), until the parent's :data:`END_FILE` says training
    ended; checkpoints past its ``until`` (a pruned candidate) do not count.

    A missing, malformed or mismatched checkpoint, or a non-finite action or fitness, makes the
    candidate ``failed`` with the reason; the job itself (task, algorithm, seeds) is trusted, so
    errors in it propagate.
    """
    t0 = time.monotonic()
    out = Path(job.out_dir)
    task = load_task(job.task)
    if not job.checkpoint_dir:
        return CandidateResult(status="failed", reason="evaluation: the job names no checkpoints")
    given = None if job.eval_seeds is None else check_seeds(job.eval_seeds, job.eval_episodes)
    model = build_policy_model(task, job)
    env = _eval_env(task, job)
    evaluations: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    snapshots: dict[int, dict[str, Any]] = {}  # following: the weights each point measured
    try:
        for timesteps, path in _checkpoints(job, out):
            load_weights(model.policy, path)
            # drawn after the weights are in memory: nothing the trainer writes later counts
            seeds = given if given is not None else draw_seeds(job.eval_episodes)
            entry, runs = evaluate_checkpoint(task, env, model, timesteps, seeds)
            evaluations.append(entry)
            stored.extend({**run, "timesteps": timesteps} for run in runs)
            log.info("checkpoint %d: fitness %.4g", timesteps, entry["fitness"])
            if job.follow:
                snapshots[timesteps] = {k: v.detach().clone()
                                        for k, v in model.policy.state_dict().items()}
                atomic_write_json(out / CURVE_FILE, evaluations)
        until = _end_marker(out)[1] if job.follow else None
        if until is not None and evaluations and evaluations[-1]["timesteps"] > until:
            # scored past the parent's decision (pruned at ``until``): that checkpoint is the end
            evaluations = [e for e in evaluations if e["timesteps"] <= until]
            stored = [r for r in stored if r["timesteps"] <= until]
            if evaluations:  # the weights it measured, not the file as it is now
                model.policy.load_state_dict(snapshots[evaluations[-1]["timesteps"]])
    except (CheckpointError, NonFiniteError) as e:
        return CandidateResult(status="failed", reason=f"evaluation: {e}", evaluations=evaluations)
    finally:
        env.close()
    if not evaluations:
        return CandidateResult(status="failed",
                               reason="evaluation: the training worker left no policy checkpoint")
    fitness, success_rate = aggregate_fitness(evaluations, job.selection, job.last_k)
    if fitness is None or not math.isfinite(fitness):
        return CandidateResult(status="failed", evaluations=evaluations,
                               reason=f"evaluation: the aggregated fitness is {fitness}; only a "
                                      "finite fitness can be ranked")
    if job.save_policy:
        model.save(out / "policy.zip")
    save_episodes(stored, out / TRAJECTORY_FILE, max_episodes=job.stored_episodes)
    return CandidateResult(
        status="ok",
        fitness=fitness,
        success_rate=success_rate,
        evaluations=evaluations,
        env_steps=int(evaluations[-1]["timesteps"]),
        wall_time_s=time.monotonic() - t0,
        seed=job.seed,
    )
