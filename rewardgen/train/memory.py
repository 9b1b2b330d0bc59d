"""What a training worker's memory will hold, estimated before anything is built.

The pre-run check (:mod:`rewardgen.cli.memory`) compares this estimate with the worker's limit
(``sandbox.memory_mb``: the address space of each worker process on a CPU), so a configuration
whose replay buffer, frame store or model cannot fit is refused in one line before an LLM is
paid. The parts follow what :func:`rewardgen.train.sb3.build_model` and the vision callbacks
allocate: SAC's replay buffer (:class:`~rewardgen.train.replay.CompactReplayBuffer`, sized by
:func:`~rewardgen.train.replay.buffer_size_for`), PPO's rollout buffer, RL-VLM-F's frame store
(the reward-model input of every replay position, and the query pool of recent frames), the
policy's parameters with their gradients and Adam moments, and the fixed cost of a worker.

Nothing here imports torch; the task's observation and action sizes come from building its
gymnasium env once per task (cheap for MuJoCo), cached.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardgen.tasks.spec import load_task

MB = 2**20
# Address space of a worker after importing torch, stable-baselines3 and MuJoCo and building a
# model, before its buffers: measured 3470 MB (PPO on hopper; SAC on humanoid with its buffer
# taken off: 3472 MB) on Linux x86-64, torch 2.14 (bench/worker_memory.py, docs/benchmarks.md).
WORKER_BASE_MB = 3500
RENDER_MB = 2048  # mesa's EGL in a process that renders (measured: ~2 GB beyond torch)
CLIP_MB = 384  # open_clip and its tokenizer in the main process, beside the weights (measured)
SUBPROC_ENV_MB = 64  # pipes and threads in the main process per SubprocVecEnv member
DUMMY_ENV_MB = 16  # one MuJoCo env in the main process
FLOAT32 = 4
PARAM_COPIES = 4  # weights, gradients, Adam's two moments
SB3_BUFFER_SIZE = 1_000_000  # SAC's default (also in rewardgen.train.sb3)
EPISODE_STEPS = 1000  # SAC's train_freq in episodes: a MuJoCo episode's usual cap
INPUT_BLOCK = 1024  # rewardgen.train.vision.ReplayInputs allocates positions in blocks of this
SB3_NET_ARCH = {"ppo": [64, 64], "sac": [256, 256]}  # SB3's MlpPolicy defaults


def buffer_size_for(buffer_size: int, timesteps: int, n_envs: int) -> int:
    """The replay buffer's size for a training of ``timesteps`` env steps over ``n_envs`` envs.

    Never more than the budget: SB3 gives each env ``buffer_size // n_envs`` rows, and a training
    of ``timesteps`` steps fills ``ceil(timesteps / n_envs)`` of them.

    Example:
        >>> buffer_size_for(1_000_000, 2048, 1), buffer_size_for(1_000_000, 2050, 8)
        (2048, 2056)
        >>> buffer_size_for(50_000, 300_000, 4)
        50000
    """
    n_envs = max(1, int(n_envs))
    budget = math.ceil(max(1, int(timesteps)) / n_envs) * n_envs
    return max(n_envs, min(int(buffer_size), budget))


@dataclass(frozen=True)
class Spaces:
    """A task's flat observation and action sizes (numbers per step)."""

    obs: int
    action: int


@functools.cache
def task_spaces(task_name: str) -> Spaces:
    """The observation and action sizes of a task's env (built once per task and cached).

    Raises:
        TaskError: the task is unknown or its env cannot be built.
    """
    task = load_task(task_name)
    env = task.make_env()
    try:
        return Spaces(
            obs=int(math.prod(env.observation_space.shape or (1,))),
            action=int(math.prod(env.action_space.shape or (1,))),
        )
    finally:
        env.close()


def replay_buffer_mb(rows: int, n_envs: int, spaces: Spaces, optimize: bool) -> float:
    """MB of :class:`~rewardgen.train.replay.CompactReplayBuffer`: float32 observations (once
    with ``optimize``), float32 actions, rewards, dones and timeouts, a truncation flag."""
    obs = spaces.obs * FLOAT32 * (1 if optimize else 2)
    per_transition = obs + spaces.action * FLOAT32 + 3 * FLOAT32 + 1
    return rows * n_envs * per_transition / MB


def mlp_params(sizes: Sequence[int]) -> int:
    """Weights and biases of a stack of linear layers ``sizes[0] -> ... -> sizes[-1]``."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def _net_arch(raw: Any, algo: str) -> tuple[list[int], list[int]]:
    if isinstance(raw, dict):
        critic = raw.get("vf") or raw.get("qf") or []
        return list(raw.get("pi") or []), list(critic)
    arch = list(raw) if raw is not None else SB3_NET_ARCH[algo]
    return arch, arch


def model_mb(algo: str, hyperparams: dict[str, Any], spaces: Spaces) -> float:
    """MB of the policy: actor and critics (SAC: two Q-networks and their targets), each
    parameter held as weights, gradients and Adam's two moments."""
    pi, vf = _net_arch((hyperparams.get("policy_kwargs") or {}).get("net_arch"), algo)
    actor = mlp_params([spaces.obs, *pi, spaces.action * (2 if algo == "sac" else 1)])
    if algo == "sac":
        critics = 4 * mlp_params([spaces.obs + spaces.action, *vf, 1])  # 2 Q + 2 targets
    else:
        critics = mlp_params([spaces.obs, *vf, 1])
    return (actor + critics) * FLOAT32 * PARAM_COPIES / MB


@dataclass
class MemoryEstimate:
    """The parts of a worker's memory, in MB; ``total`` is what must fit under the limit."""

    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def describe(self) -> str:
        """The parts above 1 MB, largest first: ``replay buffer 2780 MB, worker 3500 MB``."""
        big = sorted(((v, k) for k, v in self.parts.items() if v >= 1), reverse=True)
        return ", ".join(f"{name} {value:.0f} MB" for value, name in big)


def estimate(
    *,
    algo: str,
    hyperparams: dict[str, Any],
    timesteps: int,
    n_envs: int,
    vec_env: str,
    spaces: Spaces | None,
    vision: dict[str, Any] | None = None,
    reward_kind: str = "program",
    clip_weights_mb: float = 0.0,
) -> MemoryEstimate:
    """The main worker process's memory for one training.

    Args:
        algo: ``ppo`` or ``sac``.
        hyperparams: the algorithm's merged keyword arguments
            (:func:`rewardgen.train.sb3.hyperparams_for`).
        timesteps: the training budget (caps the replay buffer and the frame store).
        n_envs, vec_env: the vector env.
        spaces: the task's sizes (None: buffers and model are left out, e.g. PPO on a task whose
            env is not built here).
        vision: the job's vision settings (``render``, ``preference``) for vision kinds.
        reward_kind: ``clip`` and ``vlm_preference`` render and keep frames.
        clip_weights_mb: size of the CLIP checkpoint (``clip`` only).
    """
    parts: dict[str, float] = {"worker (torch, SB3, MuJoCo)": float(WORKER_BASE_MB)}
    subproc = vec_env == "subproc"
    parts["envs"] = n_envs * (SUBPROC_ENV_MB if subproc else DUMMY_ENV_MB)
    renders = reward_kind in ("clip", "vlm_preference")
    if renders and not subproc:
        parts["rendering (EGL)"] = float(RENDER_MB)
    rows = 0
    if spaces is not None:
        parts["model"] = model_mb(algo, hyperparams, spaces)
        if algo == "sac":
            size = buffer_size_for(
                int(hyperparams.get("buffer_size", SB3_BUFFER_SIZE)), timesteps, n_envs
            )
            rows = size // n_envs
            optimize = bool(hyperparams.get("optimize_memory_usage", False))
            parts["replay buffer"] = replay_buffer_mb(rows, n_envs, spaces, optimize)
        else:
            steps = int(hyperparams.get("n_steps", 2048))
            parts["rollout buffer"] = (
                steps * n_envs * (spaces.obs + spaces.action + 6) * FLOAT32 / MB
            )
    if renders:
        parts["rollout frames"] = rollout_frames_mb(
            algo, hyperparams, n_envs, subproc, vision or {}
        )
    if reward_kind == "clip":
        parts["CLIP model"] = CLIP_MB + clip_weights_mb
        batch = int((vision or {}).get("clip", {}).get("batch_size", 64))
        parts["CLIP batch"] = max(batch, n_envs) * 224 * 224 * 3 * FLOAT32 / MB
    if reward_kind == "vlm_preference":
        parts.update(frame_store_mb(vision or {}, timesteps, n_envs, rows, spaces))
    return MemoryEstimate(parts)


def rollout_frames_mb(
    algo: str, hyperparams: dict[str, Any], n_envs: int, subproc: bool, vision: dict[str, Any]
) -> float:
    """The frames a vision callback holds for one rollout (PPO: ``n_steps``; SAC: ``train_freq``
    vector steps) at the render size; twice with subprocess envs, whose frames also cross a pipe.
    """
    if algo == "sac":
        freq = hyperparams.get("train_freq", 1)
        steps = int(freq[0] if isinstance(freq, list | tuple) else freq)
        if isinstance(freq, list | tuple) and str(freq[1]).startswith("episode"):
            steps *= EPISODE_STEPS
    else:
        steps = int(hyperparams.get("n_steps", 2048))
    render = vision.get("render", {})
    frame = int(render.get("width", 224)) * int(render.get("height", 224)) * 3
    return steps * n_envs * frame * (2 if subproc else 1) / MB


def frame_store_mb(
    vision: dict[str, Any], timesteps: int, n_envs: int, replay_rows: int, spaces: Spaces | None
) -> dict[str, float]:
    """RL-VLM-F's frames: the reward-model input of every replay position (under SAC, for
    relabelling the whole buffer; ``image_size``² × 3 bytes, or the State vector for
    ``reward_model=mlp``) and the query pool of the last ``capacity`` rendered frames."""
    pref = vision.get("preference", {})
    render = vision.get("render", {})
    frame = int(render.get("width", 224)) * int(render.get("height", 224)) * 3
    if pref.get("reward_model", "cnn") == "mlp":
        model_input = (spaces.obs if spaces is not None else 512) * FLOAT32  # ~ the State
    else:
        model_input = int(pref.get("image_size", 224)) ** 2 * 3
    pool = min(int(pref.get("capacity", 10_000)), max(1, int(timesteps)))
    pool_bytes = pool * (frame + (model_input if pref.get("reward_model") == "mlp" else 0))
    rows = math.ceil(replay_rows / INPUT_BLOCK) * INPUT_BLOCK  # ReplayInputs' blocks
    return {
        "frame store (relabelling)": rows * n_envs * model_input / MB,
        "frame store (query pool)": pool_bytes / MB,
    }


__all__ = [
    "MemoryEstimate",
    "rollout_frames_mb",
    "Spaces",
    "WORKER_BASE_MB",
    "buffer_size_for",
    "estimate",
    "frame_store_mb",
    "model_mb",
    "replay_buffer_mb",
    "task_spaces",
]
