"""Motif's dataset: episodes collected on the native env, with their trusted fitness.

A trusted worker target (it never loads reward code): it runs ``reward_options["episodes"]``
episodes with a random policy, or, when ``job.checkpoint_dir`` names the checkpoints of a
native-reward training, with that policy's stochastic actions, spread evenly over its
checkpoints (Motif's dataset comes from an agent at every stage of its training). It writes
``episodes.npz`` (States and actions, :func:`~rewardgen.runs.trajectories.save_episodes`) and
``episodes.json`` (per episode: fitness, length, whether it ended before the step cap, native
return, reset seed), which the parent captions.

Unlike the evaluator's, these seeds are derived from the run's seed (``seed + 20000 + k``), so a
Motif run's dataset, and with it its reward model, is reproducible from its seed. That is safe
because no generated code runs before them: the policy collected from trained on the native
reward, and the episodes are a dataset to caption, not a measurement selection ranks (the Motif
candidate itself is measured by the evaluator, on secret seeds).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.trajectories import save_episodes
from rewardgen.tasks.spec import load_task
from rewardgen.train.checkpoints import CheckpointError, list_checkpoints, load_weights

log = logging.getLogger(__name__)

EPISODES_NPZ = "episodes.npz"
EPISODES_JSON = "episodes.json"
COLLECT_SEED_OFFSET = 20_000  # collection episodes start from states evaluation never uses


def collect_episodes(job: CandidateJob) -> CandidateResult:
    """Worker target: collect the episodes Motif captions; never raises for a bad checkpoint."""
    from rewardgen.worker.evaluate import (
        NonFiniteError,
        _eval_env,
        build_policy_model,
        predict,
        run_episode,
    )

    t0 = time.monotonic()
    task = load_task(job.task)
    out = Path(job.out_dir)
    count = int(job.reward_options.get("episodes", 16))
    env = _eval_env(task, job)
    env.action_space.seed(job.seed)
    policies: list[Any] = [lambda obs: env.action_space.sample()]
    if job.checkpoint_dir:
        try:
            checkpoints = list_checkpoints(job.checkpoint_dir)
        except CheckpointError as e:
            return CandidateResult(status="failed", reason=f"collection: {e}")
        model = build_policy_model(task, job)
        policies = []
        for _, path in checkpoints:
            policy = build_policy_model(task, job).policy if policies else model.policy
            try:
                load_weights(policy, path)
            except CheckpointError as e:
                return CandidateResult(status="failed", reason=f"collection: {e}")
            policies.append(lambda obs, p=policy: predict(p, obs, deterministic=False))
    episodes = []
    try:
        for k in range(count):
            act = policies[k * len(policies) // count]
            episodes.append(run_episode(task, env, act, job.seed + COLLECT_SEED_OFFSET + k))
    except NonFiniteError as e:
        return CandidateResult(status="failed", reason=f"collection: episode {k + 1}: {e}")
    finally:
        env.close()
    save_episodes(episodes, out / EPISODES_NPZ, max_episodes=len(episodes))
    atomic_write_json(out / EPISODES_JSON, {"episodes": [
        {k: ep[k] for k in ("fitness", "native_return", "length", "ended_early", "seed")}
        for ep in episodes]})
    return CandidateResult(status="ok", env_steps=sum(ep["length"] for ep in episodes),
                           wall_time_s=time.monotonic() - t0, seed=job.seed)


__all__ = ["COLLECT_SEED_OFFSET", "EPISODES_JSON", "EPISODES_NPZ", "collect_episodes"]
