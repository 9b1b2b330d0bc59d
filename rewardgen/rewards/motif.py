"""Motif's intrinsic reward (Klissarov et al. 2023): a Bradley–Terry model of LLM preferences.

The reward model reads the State fields the captions are built from
(:func:`~rewardgen.tasks.captions.caption_fields`: Motif's reads the message, never the game's
statistics). It is the State-view MLP of RL-VLM-F (:class:`~rewardgen.rewards.
preference_model.PreferenceRewardModel`, ``kind="mlp"``), fit to the labelled episode pairs by
:class:`~rewardgen.rewards.motif_fit.EpisodeFit`. As in Motif, its output is normalised by its
mean and standard deviation over the dataset's States (``train_reward.py:403-413``, applied in
``learner.py:782-783``) and values not above a threshold, a percentile of the normalised dataset
rewards over the dataset's unique messages (``train_reward.py:332-341``), count zero
(``learner.py:784``). While PPO trains, :class:`MotifVecEnv` hands out

    ``env_coefficient * r_env + coefficient * r_int / N(message) ** count_exponent``

as ``learner.py:786-793`` does, with ``N(message)`` the number of times this episode has shown
the step's message so far (Motif's ``MessageWrapper``, ``rl_baseline/obs_wrappers.py:280-314``,
counts per episode). Our message is the State's caption quantities on a grid
(:func:`message_fn`), counted by :class:`MessageCount` in each env.

The fit runs in the run's own process; the training worker only loads the saved weights
(``reward_model.safetensors``, plain tensors) and ``reward_model.json`` (shape and
normalisation), so what the worker trains on is fixed before it starts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rewardgen.errors import ConfigError
from rewardgen.rewards.motif_fit import EpisodeFit, Progress, unbounded
from rewardgen.rewards.preference_model import PreferenceRewardModel
from rewardgen.rewards.wrappers import INFO_KEY

log = logging.getLogger(__name__)

MODEL_FILE = "reward_model.safetensors"
META_FILE = "reward_model.json"
COUNT_KEY = "rewardgen_message_count"  # info entry: N(message) of this step in its episode
Message = bytes  # a step's caption quantities on a grid (progress's grid_key)


def message_fn(task: Any, resolution: float) -> Callable[[Any], Message]:
    """A State's message: :func:`~rewardgen.tasks.captions.step_values` on a grid of
    ``resolution``, hashed by :func:`~rewardgen.rewards.progress.grid_key` (the grid of
    ``method=progress``'s raw-State counts), so equal messages have equal keys.

    Raises:
        ConfigError: ``resolution`` is not positive.
    """
    from rewardgen.rewards.progress import grid_key
    from rewardgen.tasks.captions import step_values

    if not resolution > 0:
        raise ConfigError(f"method.message_resolution={resolution} must be greater than 0")
    values = step_values(task)
    return lambda state: grid_key(values(state), resolution)


def input_index(state: Any, names: list[str]) -> list[int]:
    """Positions of the fields ``names`` in the flattened ``state`` (fields in declaration
    order, as :func:`~rewardgen.train.vision.flatten_state` lays them out)."""
    index: list[int] = []
    offset = 0
    for name, value in zip(state._fields, state, strict=True):
        size = int(np.asarray(value).size)
        if name in names:
            index.extend(range(offset, offset + size))
        offset += size
    return index


def _per_message(values: np.ndarray, messages: list[Message] | None) -> np.ndarray:
    """``values`` averaged per unique message (all of them when ``messages`` is None)."""
    if messages is None:
        return values
    if len(messages) != len(values):
        raise ConfigError(f"method=motif: {len(messages)} messages for {len(values)} States")
    sums: dict[Message, list[float]] = {}
    for message, value in zip(messages, values.tolist(), strict=True):
        sums.setdefault(message, []).append(value)
    return np.asarray([np.mean(v) for v in sums.values()])


def fit_intrinsic(
    episodes: list[np.ndarray],
    pairs: list[tuple[int, int, float]],
    settings: dict[str, Any],
    seed: int,
    out_dir: Path,
    progress: Progress | None = None,
    index: list[int] | None = None,
    messages: list[Message] | None = None,
) -> dict[str, Any]:
    """Fit the reward model, normalise it on the dataset, save it; return its statistics.

    Args:
        episodes: one ``(steps, D)`` array of flattened States per episode.
        pairs: ``(i, j, label)``; label: the probability that episode ``j`` is preferred.
        settings: ``method.*``.
        progress: called with a status line now and then (the fit takes a while).
        index: the State positions the model reads (:func:`input_index`; None: all).
        messages: the message of every State, in the order of ``episodes`` concatenated: the
            threshold is then the percentile over the unique messages (each its States' mean
            normalised reward), as Motif's is over its unique messages
            (``train_reward.py:332-341``); None: over every State.

    Raises:
        ConfigError: no labelled pair to fit.
    """
    import torch
    from safetensors.torch import save_file

    if index is not None:
        if not index:
            raise ConfigError(
                "method=motif: the captions read no State field, so the reward "
                "model would have no input; caption a State quantity"
            )
        episodes = [ep[:, index] for ep in episodes]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: extra threads only spin (3x slower measured on a
    try:  # loaded 2-core machine)
        fitter = EpisodeFit(episodes, pairs, settings, seed)
        fit = fitter.fit(progress)
        model = fitter.model
        rewards = model(np.concatenate(episodes))
        scores = [float(model(ep).mean()) for ep in episodes]  # an episode: its States' mean
    finally:
        torch.set_num_threads(threads)
    mean, std = float(rewards.mean()), float(rewards.std()) + 1e-8
    normalised = (rewards - mean) / std
    threshold = float(
        np.percentile(_per_message(normalised, messages), float(settings["threshold_percentile"]))
    )
    decided = [(i, j, lab) for i, j, lab in pairs if lab in (0.0, 1.0)]
    agree = [(scores[j] > scores[i]) == (lab == 1.0) for i, j, lab in decided]
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"m{k}.{name}": p.detach().cpu().contiguous()
        for k, member in enumerate(model.members)
        for name, p in member.state_dict().items()
    }
    save_file(tensors, str(out_dir / MODEL_FILE))
    meta = {
        "dim": int(episodes[0].shape[1]),
        "input_index": index,
        "output": "linear",
        "ensemble": len(model.members),
        "mean": mean,
        "std": std,
        "threshold": threshold,
        "threshold_percentile": float(settings["threshold_percentile"]),
        "threshold_over": "states" if messages is None else "unique messages",
        "episode_pairs": len(pairs),
        "ties": fit["ties"],
        "episode_pair_accuracy": float(np.mean(agree)) if agree else None,
        **{k: v for k, v in fit.items() if k not in ("ties", "history")},
        "torch": torch.__version__,
    }
    (out_dir / META_FILE).write_text(json.dumps({**meta, "history": fit["history"]}, indent=2))
    return meta


class IntrinsicReward:
    """The saved reward model as Motif's intrinsic reward: normalised, thresholded.

    Args:
        folder: holds ``reward_model.safetensors`` and ``reward_model.json``.
        device: torch device.
    """

    def __init__(self, folder: str | Path, device: str = "cpu") -> None:
        from safetensors.torch import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text())
            tensors = load_file(str(folder / MODEL_FILE))
        except (OSError, ValueError) as e:
            raise ConfigError(f"method=motif: cannot read the reward model in {folder}: {e}") from e
        self.mean, self.std = float(meta["mean"]), float(meta["std"])
        self.threshold = float(meta["threshold"])
        index = meta.get("input_index")
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.model = PreferenceRewardModel(
            kind="mlp", ensemble=int(meta["ensemble"]), device=device
        )
        self.model._build(np.zeros((1, int(meta["dim"])), dtype=np.float32))
        if meta.get("output", "tanh") == "linear":
            unbounded(self.model)
        for k, member in enumerate(self.model.members):
            prefix = f"m{k}."
            member.load_state_dict(
                {n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}
            )
            member.eval()

    def __call__(self, states: np.ndarray) -> np.ndarray:
        if self.index is not None:
            states = np.asarray(states)[:, self.index]
        normalised = (self.model(states) - self.mean) / self.std
        return np.where(normalised > self.threshold, normalised, 0.0).astype(np.float32)


class MessageCount(gym.Wrapper):
    """``info[COUNT_KEY]``: how often this episode has shown the step's message, this step included.

    Motif's ``MessageWrapper`` (``obs_wrappers.py:280-314``) keeps a per-episode dictionary of
    message counts, cleared at every reset; so does this wrapper, per env, with the message of
    the State the step reached (``message_of``, :func:`~rewardgen.tasks.captions.step_message`).
    """

    def __init__(self, env: gym.Env, message_of: Callable[[Any], Message]) -> None:
        super().__init__(env)
        self.message_of = message_of
        self.counts: dict[Message, int] = {}

    def reset(self, **kwargs: Any) -> Any:
        out = self.env.reset(**kwargs)
        self.counts = {self._message(): 1}  # Motif counts the first observation's message too
        return out

    def _message(self) -> Message:
        return self.message_of(self.env.get_wrapper_attr("current_state")())

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        message = self._message()
        self.counts[message] = n = self.counts.get(message, 0) + 1
        info[COUNT_KEY] = n
        return obs, reward, terminated, truncated, info


class MotifVecEnv(VecEnvWrapper):
    """``env_coefficient * r_env + coefficient * r_int / N ** count_exponent`` for every step.

    The members must put their flattened State into ``info[key]``
    (:class:`~rewardgen.train.vision.StateCapture`) and their message count into
    ``info[COUNT_KEY]`` (:class:`MessageCount`; without it N is 1). Episode returns and
    components in ``info["rewardgen"]["episode"]`` become those of the combined reward (``env``,
    ``intrinsic``).
    """

    def __init__(
        self,
        venv: VecEnv,
        intrinsic: IntrinsicReward,
        key: str,
        coefficient: float,
        env_coefficient: float,
        count_exponent: float = 3.0,
    ) -> None:
        super().__init__(venv)
        self.intrinsic, self.key = intrinsic, key
        self.coefficient, self.env_coefficient = coefficient, env_coefficient
        self.count_exponent = float(count_exponent)
        self._env = np.zeros(venv.num_envs)
        self._int = np.zeros(venv.num_envs)

    def reset(self) -> Any:
        self._env[:] = self._int[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, env_reward, dones, infos = self.venv.step_wait()
        states = np.stack([info[self.key] for info in infos])
        counts = np.asarray([float(info.get(COUNT_KEY, 1)) for info in infos])
        intrinsic = self.intrinsic(states) / counts**self.count_exponent
        self._env += env_reward
        self._int += intrinsic
        rewards = (
            self.env_coefficient * np.asarray(env_reward, dtype=np.float32)
            + self.coefficient * intrinsic
        ).astype(np.float32)
        for i, info in enumerate(infos):
            extra = info.setdefault(INFO_KEY, {})
            extra["intrinsic_reward"] = float(intrinsic[i])
            episode = extra.get("episode")
            if dones[i] and episode is not None:
                env_part = self.env_coefficient * float(self._env[i])
                int_part = self.coefficient * float(self._int[i])
                episode["return"] = env_part + int_part
                episode["components"] = {"env": env_part, "intrinsic": int_part}
            if dones[i]:
                self._env[i] = self._int[i] = 0.0
        return obs, rewards, dones, infos


def message_counter(env: gym.Env, task: Any, options: dict[str, Any]) -> gym.Env:
    """``env`` with Motif's per-episode message count (:class:`MessageCount`)."""
    return MessageCount(env, message_fn(task, float(options.get("message_resolution", 0.1))))


def motif_stack(job: Any, venv: VecEnv, device: str) -> VecEnv:
    """Wrap a ``motif`` job's vector env with its intrinsic reward."""
    from rewardgen.vision.render import STATE_KEY

    options = job.reward_options
    intrinsic = IntrinsicReward(options["reward_model_dir"], device)
    return MotifVecEnv(
        venv,
        intrinsic,
        STATE_KEY,
        float(options["coefficient"]),
        float(options["env_coefficient"]),
        float(options.get("count_exponent", 3)),
    )


__all__ = [
    "COUNT_KEY",
    "IntrinsicReward",
    "META_FILE",
    "MODEL_FILE",
    "Message",
    "MessageCount",
    "MotifVecEnv",
    "fit_intrinsic",
    "input_index",
    "message_counter",
    "message_fn",
    "motif_stack",
]
