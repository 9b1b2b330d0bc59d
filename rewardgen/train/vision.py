"""Vision rewards inside SB3: a per-step VecEnv wrapper and a rollout-relabelling callback.

Two ways in, both scoring many frames in one batched forward pass:

* ``step`` mode: :class:`ScoredVecEnv` scores the frames of all envs after every vector step and
  replaces the rewards (the env's own reward stays in ``info["rewardgen"]["native_reward"]``).
* ``deferred`` mode: the wrapper hands PPO/SAC zeros and :class:`VisionRewardCallback` scores a
  whole rollout at ``_on_rollout_end`` — PPO's rollout buffer (then returns and advantages are
  recomputed) or the transitions SAC added to its replay buffer.

The callback also relabels stored transitions when the scorer changes (the RL-VLM-F reward model
after each update): a scorer with a ``version`` attribute that grew since a transition was scored.
PPO's current rollout is rescored at its end; under SAC the whole replay buffer is, as RL-VLM-F
does, from the inputs the callback kept for every buffer position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rewardgen.errors import ConfigError
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.runs.records import VISION_KINDS, CandidateJob
from rewardgen.train.memory import INPUT_BLOCK
from rewardgen.vision.render import FRAME_KEY, STATE_KEY, FrameCapture

log = logging.getLogger(__name__)


Scorer = Callable[[np.ndarray], np.ndarray]


def flatten_state(state: Any) -> np.ndarray:
    """A State view as one float32 vector (fields in declaration order)."""
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float32)) for v in state])


class StateCapture(gym.Wrapper):
    """Put the flattened State view into ``info[STATE_KEY]`` each step (for MLP reward models)."""

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info[STATE_KEY] = flatten_state(self.env.get_wrapper_attr("current_state")())
        return obs, reward, terminated, truncated, info


def input_key(job: CandidateJob) -> str:
    """Which info entry the scorer reads: frames, or State vectors for the MLP reward model."""
    pref = job.vision.get("preference", {})
    if job.reward_kind == "vlm_preference" and pref.get("reward_model", "cnn") == "mlp":
        return STATE_KEY
    return FRAME_KEY


def render_overrides(job: CandidateJob) -> dict[str, Any]:
    """``make_env`` keyword arguments that make frames of the configured size.

    With ``vision.env_kwargs`` (a task's ``vision.textured`` variant, e.g. VLM-RM's textured
    humanoid and camera) those are added: a relative ``xml_file`` is resolved against the task
    file's folder, and camera vectors become arrays as MuJoCo's renderer expects.
    """
    render = job.vision.get("render", {})
    out: dict[str, Any] = {
        "render_mode": "rgb_array",
        "width": int(render.get("width", 224)),
        "height": int(render.get("height", 224)),
    }
    extra = dict(job.vision.get("env_kwargs") or {})
    if extra.get("xml_file"):
        xml = Path(str(extra["xml_file"])).expanduser()
        if not xml.is_absolute():
            from rewardgen.resources import resource_dir
            from rewardgen.tasks.spec import load_task

            path = load_task(job.task).path
            xml = (path.parent if path is not None else resource_dir("envs")) / xml
        if not xml.is_file():
            raise ConfigError(f"task {job.task!r}: vision.textured.xml_file {str(xml)!r} does not "
                              "exist; fix the task file or set method.clip.textured=false")
        extra["xml_file"] = str(xml)
    camera = extra.get("default_camera_config")
    if isinstance(camera, dict):
        extra["default_camera_config"] = {
            k: np.asarray(v, dtype=np.float64) if isinstance(v, list | tuple) else v
            for k, v in camera.items()}
    return {**extra, **out}


def wrap_env(env: gym.Env, job: CandidateJob) -> gym.Env:
    """Add the captures a vision job needs on top of the candidate's env stack."""
    if input_key(job) == STATE_KEY:
        env = StateCapture(env)  # directly above RewardProgramWrapper, which builds the State
    return FrameCapture(env, int(job.vision.get("render", {}).get("frame_skip", 1)))


class _Inputs:
    """The latest input of every env (a frame-skipped step reuses the last one)."""

    def __init__(self, key: str, n_envs: int) -> None:
        self.key = key
        self.last: list[np.ndarray | None] = [None] * n_envs

    def gather(self, infos: Any) -> np.ndarray:
        for i, info in enumerate(infos):
            value = info.get(self.key)
            if value is not None:
                self.last[i] = value
        if any(v is None for v in self.last):
            raise ConfigError(f"no {self.key!r} in the step infos; wrap envs with wrap_env()")
        return np.stack(self.last)  # type: ignore[arg-type]


class ScoredVecEnv(VecEnvWrapper):
    """Replace the rewards of a vector env by a scorer of frames (or State vectors).

    Args:
        venv: the candidate's vector env, members wrapped by :func:`wrap_env`.
        scorer: ``inputs (N, ...) -> rewards (N,)``; called once per vector step.
        key: the info entry holding each env's input.
        deferred: hand out zero rewards; :class:`VisionRewardCallback` scores whole rollouts.
    """

    def __init__(self, venv: VecEnv, scorer: Scorer, key: str = FRAME_KEY,
                 deferred: bool = False) -> None:
        super().__init__(venv)
        self.scorer, self.key, self.deferred = scorer, key, deferred
        self._inputs = _Inputs(key, venv.num_envs)
        self._sums = np.zeros(venv.num_envs)

    def reset(self) -> Any:
        self._sums[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, native, dones, infos = self.venv.step_wait()
        if self.deferred:
            rewards = np.zeros(self.num_envs, dtype=np.float32)
        else:
            rewards = np.asarray(self.scorer(self._inputs.gather(infos)), dtype=np.float32)
        self._sums += rewards
        for i, info in enumerate(infos):
            extra = info.setdefault(INFO_KEY, {})
            extra["vision_reward"] = None if self.deferred else float(rewards[i])
            episode = extra.get("episode")
            if dones[i] and episode is not None:
                if not self.deferred:
                    episode["return"] = float(self._sums[i])
                    episode["components"] = {"vision": float(self._sums[i])}
                self._sums[i] = 0.0
            elif dones[i]:
                self._sums[i] = 0.0
        return obs, rewards, dones, infos


class ReplayInputs:
    """The scorer's input of every transition in SAC's replay buffer, by buffer position.

    Held in blocks of ``block`` positions allocated as the buffer fills, so memory grows with
    the stored transitions (frames already reduced by ``compact``, e.g. to the reward model's
    image size) and an address-space limit is not hit by one large allocation up front.
    """

    def __init__(self, compact: Callable[[np.ndarray], np.ndarray] | None = None,
                 block: int = INPUT_BLOCK) -> None:
        self.compact, self.block = compact, block
        self.blocks: dict[int, np.ndarray] = {}

    def put(self, pos: int, inputs: np.ndarray) -> None:
        row = self.compact(inputs) if self.compact is not None else np.asarray(inputs)
        chunk = self.blocks.get(pos // self.block)
        if chunk is None or chunk.shape[1:] != row.shape or chunk.dtype != row.dtype:
            chunk = np.zeros((self.block, *row.shape), dtype=row.dtype)
            self.blocks[pos // self.block] = chunk
        chunk[pos % self.block] = row

    def get(self, positions: np.ndarray) -> np.ndarray:
        return np.stack([self.blocks[p // self.block][p % self.block] for p in positions])


class VisionRewardCallback(BaseCallback):
    """Score or re-score stored transitions in batches (deferred mode, and after model updates).

    Args:
        scorer: the reward; ``getattr(scorer, "version", 0)`` tells when it changed.
        key: the info entry holding each env's input.
        deferred: score every rollout at its end (the env handed out zeros).
        keep_replay: remember the input of every transition SAC stores, so that
            :meth:`relabel_replay` can re-score the whole replay buffer after a model update
            (RL-VLM-F's ``relabel_with_predictor``). Inputs are stored as
            ``scorer.compact(inputs)`` when the scorer has that method.
    """

    def __init__(self, scorer: Scorer, key: str = FRAME_KEY, deferred: bool = False,
                 keep_replay: bool = False) -> None:
        super().__init__()
        self.scorer, self.key, self.deferred = scorer, key, deferred
        self.replay_inputs = (ReplayInputs(getattr(scorer, "compact", None)) if keep_replay
                              else None)
        self._inputs: _Inputs | None = None
        self._rollout: list[np.ndarray] = []
        self._given: list[np.ndarray] = []
        self._positions: list[int | None] = []
        self._version = 0
        self.relabelled = 0  # transitions whose reward was rewritten (for tests and logs)

    @property
    def version(self) -> int:
        return int(getattr(self.scorer, "version", 0))

    def _on_training_start(self) -> None:
        self._inputs = _Inputs(self.key, self.training_env.num_envs)

    def _on_rollout_start(self) -> None:
        self._rollout, self._given, self._positions = [], [], []
        self._version = self.version

    def _on_step(self) -> bool:
        assert self._inputs is not None
        infos = self.locals["infos"]
        inputs = self._inputs.gather(infos)
        given = [((info.get(INFO_KEY) or {}).get("vision_reward") or 0.0) for info in infos]
        buffer = getattr(self.model, "replay_buffer", None)
        pos = int(buffer.pos) if buffer is not None else None  # where SAC stores this step
        self._rollout.append(inputs)
        self._given.append(np.asarray(given, dtype=np.float32))
        self._positions.append(pos)
        if pos is not None and self.replay_inputs is not None:
            self.replay_inputs.put(pos, inputs)
        return True

    def _score(self, inputs: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(inputs)  # (steps, n_envs, ...)
        flat = batch.reshape(-1, *batch.shape[2:])
        return np.asarray(self.scorer(flat), dtype=np.float32).reshape(batch.shape[:2])

    def _on_rollout_end(self) -> None:
        if not self._rollout:
            return
        changed = self.version != self._version
        rollout = getattr(self.model, "rollout_buffer", None)
        if rollout is not None and (self.deferred or changed):
            new = self._score(self._rollout)
            rollout.rewards[: len(new)] += new - np.stack(self._given)
            rollout.compute_returns_and_advantage(self.locals["values"], self.locals["dones"])
            self.relabelled += new.size
            self.logger.record("rewardgen/vision_reward", float(new.mean()))
        elif rollout is None and self.deferred:
            new = self._score(self._rollout)
            buffer = self.model.replay_buffer  # type: ignore[attr-defined]
            for pos, row in zip(self._positions, new, strict=True):
                buffer.rewards[pos] = row
            self.relabelled += new.size
            self.logger.record("rewardgen/vision_reward", float(new.mean()))

    def relabel_replay(self, chunk: int = 256) -> int:
        """Re-score every transition in SAC's replay buffer with the current scorer.

        Returns the number of rewards rewritten (0 without a replay buffer or stored inputs).
        """
        buffer = getattr(self.model, "replay_buffer", None)
        if buffer is None or self.replay_inputs is None:
            return 0
        filled = np.arange(buffer.buffer_size if buffer.full else buffer.pos)
        for start in range(0, len(filled), chunk):
            positions = filled[start : start + chunk]
            buffer.rewards[positions] = self._score(list(self.replay_inputs.get(positions)))
        self.relabelled += len(filled) * buffer.n_envs
        return int(len(filled) * buffer.n_envs)


def vision_stack(
    task: Any, job: CandidateJob, venv: VecEnv, device: str
) -> tuple[VecEnv, list[BaseCallback]]:
    """Wrap the candidate's vector env with its vision reward and return the callbacks it needs."""
    key = input_key(job)
    if job.reward_kind == "clip":
        from rewardgen.rewards.clip import ClipReward

        clip = dict(job.vision.get("clip", {}))
        mode = str(clip.get("mode", "step"))
        if mode not in ("step", "deferred"):
            raise ConfigError(f"method.clip.mode {mode!r} is not one of step, deferred")
        scorer = ClipReward.from_config(clip, task.vision, device)
        deferred = mode == "deferred"
        callback = VisionRewardCallback(scorer, key, deferred=deferred)
        return ScoredVecEnv(venv, scorer, key, deferred=deferred), [callback]
    if job.reward_kind == "vlm_preference":
        from rewardgen.rewards.preference_model import build_preference

        model, pref_cb = build_preference(task, job, venv, device, key)
        relabel_cb = VisionRewardCallback(model, key, keep_replay=True)
        pref_cb.relabeller = relabel_cb
        return ScoredVecEnv(venv, model, key), [relabel_cb, pref_cb]
    raise ConfigError(f"reward_kind {job.reward_kind!r} is not a vision kind {VISION_KINDS}")


__all__ = [
    "STATE_KEY",
    "ReplayInputs",
    "VISION_KINDS",
    "ScoredVecEnv",
    "StateCapture",
    "VisionRewardCallback",
    "flatten_state",
    "input_key",
    "render_overrides",
    "vision_stack",
    "wrap_env",
]
