"""The MPC worker: an untrusted worker target that plans one episode with a reward program.

Language to Rewards (Yu et al. 2023) turns the reward into motion with a real-time optimiser
(MuJoCo MPC) instead of RL. ``run_mpc`` loads the reward program (restricted, in the sandbox),
smoke-tests it, and runs the MPC planner (:mod:`rewardgen.worker.planner`: predictive sampling,
the cross-entropy method or finite-difference gradient ascent, ``iterations`` rounds per step) on
the task's own env from the job's seeded reset: at every control step batches of rollouts over
the look-ahead (``horizon`` steps or ``horizon_s`` seconds; ``mujoco.rollout``, batched and
multi-threaded in C) are scored by summing the reward program over State views built from the
rollout states, minus the planner's always-on regularisers, and the best plan's first action is
applied.

It writes one thing the parent uses, ``actions.npy`` (the applied actions, plain numbers: see
:mod:`rewardgen.runs.actions`), plus ``progress.json`` and ``mpc.json`` (its own timing, shown as
reported). It measures nothing: the fitness comes from the trusted replay
(:mod:`rewardgen.worker.mpc_replay`), which replays the actions on the native env.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.config import MPCConfig
from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.runs.actions import ACTIONS_FILE, write_actions
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import PROGRESS_FILE, CandidateJob, CandidateResult
from rewardgen.sandbox.contract import one_line, program_traceback
from rewardgen.sandbox.program import load_program, source_sha256
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.worker.planner import Planner, controls_reason, settings_from

log = logging.getLogger(__name__)

TIMING_FILE = "mpc.json"
REPORTED_FIELDS = ["component_stats", "episode_returns", "episode_lengths", "env_steps"]
_SMOKE_STEPS = 16


class RolloutScorer:
    """Sums a reward program over rollout states, through the task's State view.

    A second env of the task (reset with the same seed, so ``env.<attribute>`` sources such as a
    goal agree) is the scratch pad: each rollout state is written into its ``MjData``
    (``mj_setState``), the lightest MuJoCo pass that fills what the State view reads computes the
    derived quantities (:func:`derived_pass`) and the task's own State builder copies the fields
    out. The reward program only ever sees those State views, as in training.
    """

    def __init__(self, task: TaskSpec, seed: int, fn: Any, overrides: dict[str, Any]) -> None:
        import mujoco

        from rewardgen.rewards.wrappers import _checked

        self.mujoco = mujoco
        self.env = task.make_env(**overrides)
        self.env.reset(seed=seed)
        self.builder = task.state_builder(self.env)
        base = self.env.unwrapped
        self.model, self.data = base.model, base.data  # type: ignore[attr-defined]
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.passes = derived_pass([f.source for f in task.state])
        self.fn, self.checked = fn, _checked
        self.start: Any = None  # the State the plan starts from (prev_state of the first step)
        self.calls = 0

    def __call__(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        mujoco, model, data, build, fn, checked = (self.mujoco, self.model, self.data,
                                                   self.builder.build, self.fn, self.checked)
        passes = [getattr(mujoco, name) for name in self.passes]
        scores = np.zeros(len(states))
        for n in range(len(states)):
            prev, total = self.start, 0.0
            for t in range(states.shape[1]):
                mujoco.mj_setState(model, data, states[n, t], self.spec)
                for derive in passes:
                    derive(model, data)
                state = build()
                total += call_reward(fn, checked, state, actions[n, t], prev)[0]
                prev = state
            scores[n] = total
        self.calls += states.shape[0] * states.shape[1]
        return scores

    def close(self) -> None:
        self.env.close()


_STATE_ONLY = {"qpos", "qvel", "act", "ctrl", "time", "dt"}
_KINEMATIC = {"xpos", "xquat", "xmat", "xipos", "ximat", "site_xpos", "site_xmat", "geom_xpos",
              "geom_xmat"}
_LADDER: tuple[tuple[set[str], list[str]], ...] = (
    (_STATE_ONLY, []),
    (_STATE_ONLY | _KINEMATIC, ["mj_kinematics"]),
    (_STATE_ONLY | _KINEMATIC | {"subtree_com"}, ["mj_kinematics", "mj_comPos"]),
    (_STATE_ONLY | _KINEMATIC | {"subtree_com", "cvel"}, ["mj_kinematics", "mj_comPos", "mj_comVel"]),
)


def derived_pass(sources: list[str]) -> list[str]:
    """The MuJoCo functions that fill every buffer the State view's ``sources`` read.

    Positions and orientations need ``mj_kinematics``; ``subtree_com`` adds ``mj_comPos``,
    ``cvel`` ``mj_comVel``; anything else (contact forces, sensors, env attributes) the full
    ``mj_forward`` and ``mj_rnePostConstraint``, as the env computes after a step.

    Example:
        >>> derived_pass(["qpos[0]", "upright(xquat[torso])"])
        ['mj_kinematics']
        >>> derived_pass(["qvel[0]", "dt"])
        []
        >>> derived_pass(["cfrc_ext[1:]"])
        ['mj_forward', 'mj_rnePostConstraint']
    """
    from rewardgen.tasks.sources import parse_source

    arrays = {parse_source(source).array for source in sources}
    for allowed, passes in _LADDER:
        if arrays <= allowed:
            return passes
    return ["mj_forward", "mj_rnePostConstraint"]


def call_reward(fn: Any, checked: Any, state: Any, action: np.ndarray,
                prev: Any) -> tuple[float, dict[str, float]]:
    """One checked reward call; anything the program raises becomes a RewardCodeError."""
    try:
        return checked(fn(state, action, prev))  # type: ignore[no-any-return]
    except RewardCodeError:
        raise
    except Exception as e:  # noqa: BLE001 - generated code may raise anything
        raise RewardCodeError(f"compute_reward raised {type(e).__name__}: {e}") from e


def settings_of(job: CandidateJob) -> MPCConfig:
    """The job's planner settings (``reward_options["mpc"]``)."""
    return settings_from(dict(job.reward_options.get("mpc") or {}))


def episode_overrides(job: CandidateJob) -> dict[str, Any]:
    return {} if job.max_episode_steps is None else {"max_episode_steps": job.max_episode_steps}


def _smoke(task: TaskSpec, job: CandidateJob, fn: Any, env: Any) -> None:
    """The sandbox's smoke test on random transitions of a throwaway reset of ``env``."""
    from rewardgen.sandbox.smoke import random_transitions, smoke_test

    env.reset(seed=job.seed)  # the State builder reads the env as reset
    builder = task.state_builder(env)
    samples = random_transitions(env, builder.build, job.seed, _SMOKE_STEPS)
    smoke_test(fn, samples, job.smoke_call_timeout_s)


def _result(job: CandidateJob, t0: float, status: str, reason: str = "", tb: str = "",
            **fields: Any) -> CandidateResult:
    return CandidateResult(status=status, reason=reason, traceback=tb,
                           wall_time_s=time.monotonic() - t0,
                           reward_sha256=source_sha256(job.reward_source or ""), seed=job.seed,
                           reported=list(REPORTED_FIELDS), **fields)


def run_mpc(job: CandidateJob) -> CandidateResult:
    """Worker target: plan one episode with the job's reward program; always a result.

    Raises:
        ConfigError: the job is malformed (settings, or a task whose actions are not controls).
    """
    t0 = time.monotonic()
    task = load_task(job.task)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_of(job)
    try:
        fn = load_program(job.reward_source or "", job.entry).fn
    except RewardCodeError as e:
        return _result(job, t0, "rejected", one_line(f"static check: {e}"))
    env = task.make_env(**episode_overrides(job))
    scorer: RolloutScorer | None = None
    planner: Planner | None = None
    try:
        reason = controls_reason(env)
        if reason is not None:
            raise ConfigError(f"MPC cannot plan task {task.name!r}: {reason}")
        try:
            _smoke(task, job, fn, env)
        except RewardCodeError as e:
            message = str(e).removeprefix("smoke test: ")
            return _result(job, t0, "rejected", one_line(f"smoke test: {message}"),
                           program_traceback(e, job.reward_source))
        env.reset(seed=job.seed)
        builder = task.state_builder(env)
        base = env.unwrapped
        space = env.action_space
        scorer = RolloutScorer(task, job.seed, fn, episode_overrides(job))
        planner = Planner(base.model, int(base.frame_skip),  # type: ignore[attr-defined]
                                    space.low, space.high, settings, scorer,  # type: ignore[attr-defined]
                                    seed=job.seed)
        state = builder.build()
        actions: list[np.ndarray] = []
        components: dict[str, float] = {}
        total, plan_s, plan_cpu_s, last_write = 0.0, 0.0, 0.0, 0.0
        steps = min(settings.episode_steps, job.timesteps or settings.episode_steps)
        try:
            for step in range(steps):
                scorer.start = state
                started, started_cpu = time.perf_counter(), time.process_time()
                action = planner.plan(base.data)  # type: ignore[attr-defined]
                plan_s += time.perf_counter() - started
                plan_cpu_s += time.process_time() - started_cpu  # all threads of this process
                _, _, terminated, truncated, _ = env.step(action)
                prev, state = state, builder.build()
                value, parts = call_reward(fn, scorer.checked, state, action, prev)
                total += value
                for name, part in parts.items():
                    components[name] = components.get(name, 0.0) + part
                actions.append(action)
                if time.monotonic() - last_write > 2.0:
                    last_write = time.monotonic()
                    atomic_write_json(out_dir / PROGRESS_FILE, {"timesteps": step + 1,
                                                                "total": steps})
                if terminated or truncated:
                    break
        except RewardCodeError as e:
            return _result(job, t0, "failed", one_line(f"during MPC: {e}"),
                           program_traceback(e, job.reward_source), env_steps=len(actions))
    finally:
        if planner is not None:
            planner.close()
        if scorer is not None:
            scorer.close()
        env.close()
    write_actions(out_dir / ACTIONS_FILE, np.asarray(actions))
    n = len(actions)
    timing = {"steps": n, "plan_s": plan_s, "plan_cpu_s": plan_cpu_s,
              "control_rate_hz": n / plan_s if plan_s else None,
              "realtime_hz": 1.0 / float(base.dt),  # type: ignore[attr-defined]
              "reward_calls": scorer.calls, "rollouts": planner.rollouts,
              "horizon_steps": planner.horizon, "settings": settings.__dict__}
    atomic_write_json(out_dir / TIMING_FILE, timing)
    atomic_write_json(out_dir / PROGRESS_FILE, {"timesteps": n, "total": steps})
    log.info("MPC: %d steps at %.1f steps/s (real time %.1f)", n, n / max(plan_s, 1e-9),
             timing["realtime_hz"])
    return _result(job, t0, "ok", component_stats={k: [v] for k, v in components.items()},
                   episode_returns=[total], episode_lengths=[n], env_steps=n)
