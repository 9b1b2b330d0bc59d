"""The stable-baselines3 side of one candidate: its env stack, vector envs and model.

Every env a candidate trains or is evaluated on is built the same way, bottom to top: the task's
env (``task.make_env()``, with the job's episode cap) → SB3 ``Monitor`` (so logged returns stay
the env's own) → :class:`~rewardgen.rewards.wrappers.RewardProgramWrapper`. Vector envs get
their members from :class:`EnvFactory`, a picklable recipe, so that each ``SubprocVecEnv``
process loads the reward program from its source by itself.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.rewards.wrappers import RewardFn, RewardProgramWrapper
from rewardgen.runs.records import REWARD_KINDS, CandidateJob
from rewardgen.sandbox.contract import program_traceback
from rewardgen.sandbox.program import load_program
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}
OFF_POLICY = ("sac",)
SB3_BUFFER_SIZE = 1_000_000  # SAC's default when no layer of rl hyperparameters sets it
VEC_ENVS = ("dummy", "subproc")
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "elu": torch.nn.ELU,
    "gelu": torch.nn.GELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "silu": torch.nn.SiLU,
}
_ERROR_KEY = "rewardgen_error"


# ---------------------------------------------------------------- config helpers
def resolve_device(device: str) -> str:
    """Map ``auto`` to ``cuda`` when a GPU is visible, else ``cpu``; pass anything else through.

    Resolving here (instead of letting SB3 guess) makes the device explicit in logs and results.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"device {device!r} is not one of auto, cpu, cuda, cuda:N")
    return device


def policy_device(device: str, policy: str) -> str:
    """The device an SB3 policy trains on: ``auto`` keeps MLP policies on the CPU.

    SB3's PPO documentation: PPO with an MLP policy is meant to run on the CPU (the GPU is
    slower for such small networks); CNN policies (and CLIP or rl=brax_ppo work) use the GPU.

    Example:
        >>> policy_device("auto", "MlpPolicy")
        'cpu'
        >>> policy_device("cuda:1", "MlpPolicy")
        'cuda:1'
    """
    if device == "auto" and policy == "MlpPolicy":
        return "cpu"
    return resolve_device(device)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def hyperparams_for(rl: dict[str, Any], task_name: str) -> dict[str, Any]:
    """The algorithm's keyword arguments for one task.

    Three layers, later ones winning: ``rl.common`` (defaults for every task), ``rl.per_task[task]``
    (rl-zoo3's tuned values) and ``rl.hyperparams`` (the user's overrides, e.g. from the command
    line). Nested mappings (``policy_kwargs``) merge key by key, so a task may change
    ``log_std_init`` and keep the default ``net_arch``; lists and scalars are replaced whole.

    Example:
        >>> hyperparams_for({"common": {"gamma": 0.99, "n_steps": 2048},
        ...                  "per_task": {"swimmer": {"gamma": 0.9999}},
        ...                  "hyperparams": {"n_steps": 64}}, "swimmer")
        {'gamma': 0.9999, 'n_steps': 64}
    """
    layers = {"common": rl.get("common") or {}, "hyperparams": rl.get("hyperparams") or {}}
    per_task = rl.get("per_task") or {}
    for name, layer in {**layers, "per_task": per_task}.items():
        if not isinstance(layer, dict):
            raise ConfigError(f"rl.{name} must be a mapping of keyword arguments, got {layer!r}")
    task_layer = per_task.get(task_name) or {}
    if not isinstance(task_layer, dict):
        raise ConfigError(f"rl.per_task.{task_name} must be a mapping, got {task_layer!r}")
    return _merge(_merge(layers["common"], task_layer), layers["hyperparams"])


# ---------------------------------------------------------------- reward functions
class SparseReward:
    """The task's trusted sparse reward: an expression over ``state`` from the task file.

    Returns ``(value, {"sparse": value})`` like a reward program, so components are tracked the
    same way for the sparse baseline.
    """

    def __init__(self, expr: str) -> None:
        self.expr = expr
        try:
            self._fn = eval(f"lambda state: ({expr})", {"np": np, "math": math})  # trusted spec
        except SyntaxError as e:
            raise ConfigError(f"sparse_reward {expr!r} is not valid Python: {e.msg}") from e

    def __call__(self, state: Any, action: Any, prev_state: Any) -> tuple[float, dict[str, float]]:
        value = float(self._fn(state))
        return value, {"sparse": value}


def reward_fn_for(task: TaskSpec, job: CandidateJob) -> RewardFn | None:
    """The reward function a job trains on (None: the env's native reward).

    Raises:
        RewardCodeError: the program fails the static check or cannot be defined.
        ConfigError: an unknown reward kind, a program job without source, or a sparse job on a
            task without ``sparse_reward``.
    """
    kind = job.reward_kind
    if kind == "motif" and job.reward_options.get("env_reward") == "sparse":
        kind = "sparse"  # Motif adds its intrinsic reward to the task's sparse reward
    if kind in ("native", "clip", "vlm_preference", "motif"):  # the VecEnv adds or replaces
        return None
    if kind == "sparse":
        if not task.sparse_reward:
            raise ConfigError(
                f"task {task.name!r} has no sparse_reward; add one to its YAML or use "
                "reward_kind 'native' or 'program'"
            )
        return SparseReward(task.sparse_reward)
    if kind == "program":
        if job.reward_source is None:
            raise ConfigError("reward_kind 'program' needs reward_source; use 'native' instead")
        return load_program(job.reward_source, job.entry, task.state_names).fn
    if kind == "progress":  # method=progress: count bonus over progress cells + sparse reward
        from rewardgen.rewards.progress import progress_reward_for

        if job.reward_source is None:
            raise ConfigError("reward_kind 'progress' needs reward_source (a progress function)")
        sparse = SparseReward(task.sparse_reward) if task.sparse_reward else None
        progress_fn = load_program(job.reward_source, "progress", task.state_names).fn
        # counts shared by the whole vector env: make_vec_env adds the bonus (SharedCountBonus)
        return progress_reward_for(task, progress_fn, sparse, job.reward_options,  # type: ignore[arg-type]
                                   shared_counts=True)
    raise ConfigError(f"reward_kind {kind!r} is not one of {REWARD_KINDS}")


# ---------------------------------------------------------------- env stack
def make_env(task: TaskSpec, job: CandidateJob, reward_fn: RewardFn | None) -> RewardProgramWrapper:
    """One env of the candidate's stack: task env → Monitor → RewardProgramWrapper."""
    overrides: dict[str, Any] = {}
    if job.max_episode_steps is not None:
        overrides["max_episode_steps"] = job.max_episode_steps
    if job.reward_kind in ("clip", "vlm_preference"):
        from rewardgen.train.vision import render_overrides

        overrides.update(render_overrides(job))
    env = Monitor(task.make_env(**overrides))
    budget = job.call_budget_s if job.reward_kind in ("program", "progress") else None
    return RewardProgramWrapper(env, task, reward_fn, call_budget_s=budget)


class _CarryRewardErrors(gym.Wrapper):
    """Inside a SubprocVecEnv process: turn a RewardCodeError into an info entry.

    SB3's worker dies on any exception and the parent sees only a broken pipe; this wrapper ends
    the episode instead and ships the message and the reward-program traceback to the parent,
    where :class:`_RaiseRewardErrors` raises it again.
    """

    def __init__(self, env: gym.Env, source: str | None) -> None:
        super().__init__(env)
        self._source = source

    def step(self, action: Any) -> Any:
        try:
            return self.env.step(action)
        except RewardCodeError as e:
            obs = self.observation_space.sample()
            error = {"message": str(e), "traceback": program_traceback(e, self._source)}
            return obs, 0.0, True, False, {_ERROR_KEY: error}


class _RaiseRewardErrors(VecEnvWrapper):
    """In the parent: raise a RewardCodeError a subprocess env reported."""

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            error = info.get(_ERROR_KEY)
            if error is not None:
                exc = RewardCodeError(error["message"])
                exc.reward_traceback = error["traceback"]  # type: ignore[attr-defined]
                raise exc
        return obs, rewards, dones, infos


@dataclass(frozen=True)
class EnvFactory:
    """A picklable recipe for member ``rank`` of a candidate's vector env.

    The reward program is loaded inside the call, so a SubprocVecEnv process compiles it from
    source itself instead of receiving a function over a pipe.
    """

    task: TaskSpec
    job: CandidateJob
    seed: int
    rank: int
    carry_errors: bool = False

    def __call__(self) -> gym.Env:
        env: gym.Env = make_env(self.task, self.job, reward_fn_for(self.task, self.job))
        env.action_space.seed(self.seed + self.rank)
        if self.job.reward_kind in ("clip", "vlm_preference"):
            from rewardgen.train.vision import wrap_env

            env = wrap_env(env, self.job)
        if self.job.reward_kind == "motif":  # the intrinsic reward reads the State vector
            from rewardgen.rewards.motif import message_counter
            from rewardgen.train.vision import StateCapture

            env = message_counter(StateCapture(env), self.task, self.job.reward_options)
        if self.carry_errors:
            env = _CarryRewardErrors(env, self.job.reward_source)
        return env


def make_vec_env(
    task: TaskSpec, job: CandidateJob, n_envs: int, seed: int, vec_env: str = "dummy"
) -> VecEnv:
    """The candidate's seeded training envs, in this process (``dummy``) or in subprocesses.

    Member ``i`` is reset with seed ``seed + i`` at the first reset. Progress rewards get their
    count bonus here, from one table for every member.
    """
    if n_envs < 1:
        raise ConfigError(f"rl.n_envs must be at least 1, got {n_envs}")
    if vec_env not in VEC_ENVS:
        raise ConfigError(f"rl.vec_env {vec_env!r} is not one of {VEC_ENVS}")
    subproc = vec_env == "subproc"
    factories = [EnvFactory(task, job, seed, i, carry_errors=subproc) for i in range(n_envs)]
    venv: VecEnv = SubprocVecEnv(factories) if subproc else DummyVecEnv(factories)  # type: ignore[arg-type]
    if subproc:
        venv = _RaiseRewardErrors(venv)
    if job.reward_kind == "progress":  # one visit-count table for all envs of the candidate
        from rewardgen.rewards.progress_counts import shared_count_bonus

        venv = shared_count_bonus(venv, job.reward_options)
    venv.seed(seed)
    return venv


# ---------------------------------------------------------------- model
def _policy_kwargs(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {raw!r}")
    kwargs = dict(raw)
    act = kwargs.get("activation_fn")
    if isinstance(act, str):
        if act.lower() not in ACTIVATIONS:
            raise ConfigError(f"activation_fn {act!r} is not one of {sorted(ACTIVATIONS)}")
        kwargs["activation_fn"] = ACTIVATIONS[act.lower()]
    return kwargs


def replay_kwargs(kwargs: dict[str, Any], timesteps: int, env: VecEnv) -> dict[str, Any]:
    """An off-policy algorithm's keyword arguments with a replay buffer that fits the training.

    ``buffer_size`` is capped at the budget (:func:`~rewardgen.train.replay.buffer_size_for`), and
    a Box observation space gets :class:`~rewardgen.train.replay.CompactReplayBuffer` (float32,
    stored once under ``optimize_memory_usage``, time-limit truncations kept) unless the
    hyperparameters name their own ``replay_buffer_class`` or ask for n-step returns.
    """
    from gymnasium import spaces

    from rewardgen.train.replay import CompactReplayBuffer, buffer_size_for

    out = dict(kwargs)
    size = int(out.get("buffer_size", SB3_BUFFER_SIZE))
    out["buffer_size"] = buffer_size_for(size, timesteps, env.num_envs)
    own = out.get("replay_buffer_class") is not None or int(out.get("n_steps", 1)) > 1
    if not own and isinstance(env.observation_space, spaces.Box):
        out["replay_buffer_class"] = CompactReplayBuffer
    return out


def build_model(job: CandidateJob, env: VecEnv, tb_dir: str | None) -> BaseAlgorithm:
    """PPO or SAC from ``job.rl`` with the task's hyperparameters, seeded, on the job's device.

    ``policy_kwargs.activation_fn`` may name a torch activation (``relu``, ``tanh``, ...) since
    YAML cannot hold a class. An off-policy algorithm's replay buffer holds at most
    ``job.timesteps`` transitions, in float32 (:func:`replay_kwargs`).
    """
    algo_name = str(job.rl.get("algo", "ppo")).lower()
    if algo_name not in ALGORITHMS:
        raise ConfigError(f"rl.algo {algo_name!r} is not one of {sorted(ALGORITHMS)}")
    kwargs = hyperparams_for(job.rl, job.task)
    kwargs["policy_kwargs"] = _policy_kwargs(kwargs.get("policy_kwargs"))
    if algo_name in OFF_POLICY:
        kwargs = replay_kwargs(kwargs, job.timesteps, env)
    device = policy_device(job.device, str(job.rl.get("policy", "MlpPolicy")))
    try:
        return ALGORITHMS[algo_name](
            job.rl.get("policy", "MlpPolicy"),
            env,
            seed=job.seed,
            device=device,
            tensorboard_log=tb_dir,
            verbose=0,
            **kwargs,
        )
    except TypeError as e:
        raise ConfigError(
            f"rl hyperparameters {sorted(kwargs)} do not fit {algo_name.upper()}: {e}; "
            "fix rl.hyperparams or rl.per_task"
        ) from e


__all__ = [
    "EnvFactory",
    "SparseReward",
    "build_model",
    "hyperparams_for",
    "make_env",
    "make_vec_env",
    "replay_kwargs",
    "policy_device",
    "resolve_device",
    "reward_fn_for",
]
