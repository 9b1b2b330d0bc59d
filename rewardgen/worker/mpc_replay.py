"""The trusted MPC replay: fitness, success, trajectories and a video from actions alone.

This worker target never loads reward code. It resets the task's *native* env with the job's
seed (the seed the MPC worker planned from), reads the action sequence the untrusted MPC worker
left (validated as hostile input: :func:`rewardgen.runs.actions.read_actions`), applies it step
by step, scores the episode with the task's State view and fitness expression, and writes:

- ``result.json``: ``fitness``, ``success_rate`` and one ``evaluations`` entry (the episode);
- ``trajectories.npz``: the episode's States and actions with its fitness (CARD screening and
  the report read them as they read a trained candidate's);
- ``video.mp4`` / ``video.gif``: the episode rendered from the task's camera (when asked), at
  real speed and at most :data:`VIDEO_FPS` frames per second (a frame every k-th control step:
  software rendering costs far more than the replay itself).

MuJoCo is deterministic, so the replayed episode is the one the planner drove; if a worker lied
about its actions, the replay measures the lie, not the claim.

Its seed is not secret, and cannot be: an open-loop action sequence is a plan *for one initial
state*, which the planner must know to plan at all, so the replay starts where the planner
started (the trusted job's seed, never one the worker reports). What holds instead: the fitness
is that of the actions the worker committed (finite, in bounds), replayed on the native env;
what does not: a worker that escaped its sandbox could plan on the task's fitness instead of
its reward program, and the replay cannot tell (docs/security.md, "Evaluation seeds").
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from rewardgen.runs.actions import ACTIONS_FILE, ActionFileError, read_actions
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.trajectories import TRAJECTORY_FILE, save_episodes
from rewardgen.tasks.spec import load_task
from rewardgen.worker.evaluate import NonFiniteError, run_episode
from rewardgen.worker.planner import settings_from

log = logging.getLogger(__name__)

os.environ.setdefault("MUJOCO_GL", "egl")
VIDEO_FPS = 25.0


def replay_actions(job: CandidateJob) -> CandidateResult:
    """Worker target: replay ``job.checkpoint_dir/actions.npy`` on the native env.

    A missing or malformed action file makes the candidate ``failed`` with the reason; the job
    itself (task, seed, settings) is trusted, so errors in it propagate.
    """
    t0 = time.monotonic()
    task = load_task(job.task)
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_from(dict(job.reward_options.get("mpc") or {}))
    video = bool(job.reward_options.get("video", False))
    overrides: dict[str, Any] = {}
    if job.max_episode_steps is not None:
        overrides["max_episode_steps"] = job.max_episode_steps
    env = task.make_env(render_mode="rgb_array" if video else None, **overrides)
    every = max(1, round(1.0 / float(env.unwrapped.dt) / VIDEO_FPS))  # type: ignore[attr-defined]
    recorder = _Frames(env, every if video else 0)
    try:
        space = env.action_space
        try:
            actions = read_actions(Path(job.checkpoint_dir or "") / ACTIONS_FILE,
                                   tuple(space.shape or ()), space.low,  # type: ignore[attr-defined]
                                   space.high, settings.episode_steps)  # type: ignore[attr-defined]
        except ActionFileError as e:
            return CandidateResult(status="failed", reason=f"MPC replay: {e}", seed=job.seed)
        # the trusted workers' one episode loop; the episode ends with the actions at the latest
        steps = iter(actions)
        try:
            episode = run_episode(task, TimeLimit(recorder, max_episode_steps=len(actions)),
                                  lambda obs: next(steps), job.seed)
        except NonFiniteError as e:
            return CandidateResult(status="failed", reason=f"MPC replay: {e}", seed=job.seed)
        fps = 1.0 / float(env.unwrapped.dt) / every  # type: ignore[attr-defined]
    finally:
        env.close()
    frames = recorder.frames
    fitness, success, length = episode["fitness"], episode["success"], episode["length"]
    save_episodes([episode], out / TRAJECTORY_FILE)
    if frames:
        from rewardgen.reporting.video import VIDEO_STEM, write_frames

        try:
            write_frames(frames, out / VIDEO_STEM, fps)
        except Exception as e:  # noqa: BLE001 - a video is a nicety; the measurement stands
            log.warning("MPC replay: no video (%s: %s)", type(e).__name__, e)
    entry = {"timesteps": length, "fitness": fitness,
             "success_rate": None if success is None else float(bool(success)),
             "native_return": episode["native_return"], "length": float(length),
             "seeds": [int(job.seed)]}
    log.info("MPC replay: %d steps, fitness %.4g", length, fitness)
    return CandidateResult(status="ok", fitness=fitness, success_rate=entry["success_rate"],
                           evaluations=[entry], env_steps=length,
                           wall_time_s=time.monotonic() - t0, seed=job.seed)


class _Frames(gym.Wrapper):  # type: ignore[type-arg]
    """Keeps a frame at the reset, every ``every``-th step and the last (0: none)."""

    def __init__(self, env: gym.Env, every: int) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.every, self.steps = every, 0
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> Any:
        out = self.env.reset(**kwargs)
        if self.every:
            self.frames.append(_frame(self.env))
        return out

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.steps += 1
        if self.every and (self.steps % self.every == 0 or out[2] or out[3]):
            self.frames.append(_frame(self.env))
        return out


def _frame(env: Any) -> np.ndarray:
    from rewardgen.reporting.video import _frame as frame

    return frame(env)
