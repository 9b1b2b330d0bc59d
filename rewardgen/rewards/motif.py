"""Motif's intrinsic reward (Klissarov et al. 2023): a Bradley–Terry model of LLM preferences.

The reward model is the State-view ensemble of RL-VLM-F (:class:`~rewardgen.rewards.
preference_model.PreferenceRewardModel`, ``kind="mlp"``), fit to episode-pair labels: each
labelled pair of episodes gives ``states_per_pair`` pairs of States drawn from the two episodes,
with the episodes' label. As in Motif, its output is normalised by its mean and standard
deviation over the dataset's States, and values below a threshold (a percentile of the
normalised dataset rewards) count zero: ``r_int = 1[r >= eps] * r``. While PPO trains,
:class:`MotifVecEnv` hands out ``env_coefficient * r_env + coefficient * r_int``.

The fit runs in the run's own process; the training worker only loads the saved weights
(``reward_model.safetensors``, plain tensors) and ``reward_model.json`` (shape and
normalisation), so what the worker trains on is fixed before it starts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rewardgen.errors import ConfigError
from rewardgen.rewards.preference_model import PreferenceRewardModel
from rewardgen.rewards.wrappers import INFO_KEY

log = logging.getLogger(__name__)

MODEL_FILE = "reward_model.safetensors"
META_FILE = "reward_model.json"


def state_pairs(episodes: list[np.ndarray], pairs: list[tuple[int, int, int]],
                per_pair: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State pairs for the fit: ``per_pair`` random steps of each episode of each labelled pair.

    Args:
        episodes: one ``(steps, D)`` array of flattened States per episode.
        pairs: ``(i, j, label)``; label 0: episode ``i`` preferred.
    """
    rng = np.random.default_rng(seed)
    first, second, labels = [], [], []
    for i, j, label in pairs:
        a = rng.integers(0, len(episodes[i]), per_pair)
        b = rng.integers(0, len(episodes[j]), per_pair)
        first.append(episodes[i][a])
        second.append(episodes[j][b])
        labels.append(np.full(per_pair, label, dtype=np.int64))
    return np.concatenate(first), np.concatenate(second), np.concatenate(labels)


def fit_intrinsic(episodes: list[np.ndarray], pairs: list[tuple[int, int, int]],
                  settings: dict[str, Any], seed: int, out_dir: Path) -> dict[str, Any]:
    """Fit the reward model, normalise it on the dataset, save it; return its statistics.

    Raises:
        ConfigError: no labelled pair to fit.
    """
    import torch
    from safetensors.torch import save_file

    if not pairs:
        raise ConfigError("method=motif: no preference was kept (every pair was answered "
                          "'no preference' or inconsistently in the two orders); ask more "
                          "pairs (method.pairs) or check the LLM's answers in motif/")
    model = PreferenceRewardModel(
        kind="mlp", ensemble=int(settings["ensemble"]), lr=float(settings["lr"]),
        accuracy_threshold=float(settings["accuracy_threshold"]),
        max_epochs=int(settings["max_epochs"]), seed=seed)
    first, second, labels = state_pairs(episodes, pairs, int(settings["states_per_pair"]), seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 128 small vectors: extra threads only spin (3x slower
    try:  # measured on a loaded 2-core machine)
        fit = model.fit(first, second, labels)
        rewards = model(np.concatenate(episodes))
        scores = [float(model(ep).mean()) for ep in episodes]  # an episode: its States' mean
    finally:
        torch.set_num_threads(threads)
    mean, std = float(rewards.mean()), float(rewards.std()) + 1e-8
    normalised = (rewards - mean) / std
    threshold = float(np.percentile(normalised, float(settings["threshold_percentile"])))
    agree = [(scores[i] > scores[j]) == (label == 0) for i, j, label in pairs]
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"m{k}.{name}": p.detach().cpu().contiguous()
               for k, member in enumerate(model.members)
               for name, p in member.state_dict().items()}
    save_file(tensors, str(out_dir / MODEL_FILE))
    meta = {"dim": int(first.shape[1]), "ensemble": len(model.members), "mean": mean,
            "std": std, "threshold": threshold,
            "threshold_percentile": float(settings["threshold_percentile"]),
            "state_pair_accuracy": fit["accuracy"], "epochs": int(fit["epochs"]),
            "state_pairs": int(fit["pairs"]), "episode_pairs": len(pairs),
            "episode_pair_accuracy": float(np.mean(agree)), "torch": torch.__version__}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
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
        self.model = PreferenceRewardModel(kind="mlp", ensemble=int(meta["ensemble"]),
                                           device=device)
        self.model._build(np.zeros((1, int(meta["dim"])), dtype=np.float32))
        for k, member in enumerate(self.model.members):
            prefix = f"m{k}."
            member.load_state_dict({n[len(prefix):]: t for n, t in tensors.items()
                                    if n.startswith(prefix)})
            member.eval()

    def __call__(self, states: np.ndarray) -> np.ndarray:
        normalised = (self.model(states) - self.mean) / self.std
        return np.where(normalised >= self.threshold, normalised, 0.0).astype(np.float32)


class MotifVecEnv(VecEnvWrapper):
    """``env_coefficient * r_env + coefficient * r_int`` for every step of a vector env.

    The members must put their flattened State into ``info[key]``
    (:class:`~rewardgen.train.vision.StateCapture`). Episode returns and components in
    ``info["rewardgen"]["episode"]`` become those of the combined reward (``env``, ``intrinsic``).
    """

    def __init__(self, venv: VecEnv, intrinsic: IntrinsicReward, key: str,
                 coefficient: float, env_coefficient: float) -> None:
        super().__init__(venv)
        self.intrinsic, self.key = intrinsic, key
        self.coefficient, self.env_coefficient = coefficient, env_coefficient
        self._env = np.zeros(venv.num_envs)
        self._int = np.zeros(venv.num_envs)

    def reset(self) -> Any:
        self._env[:] = self._int[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, native, dones, infos = self.venv.step_wait()
        states = np.stack([info[self.key] for info in infos])
        intrinsic = self.intrinsic(states)
        self._env += native
        self._int += intrinsic
        rewards = (self.env_coefficient * np.asarray(native, dtype=np.float32)
                   + self.coefficient * intrinsic).astype(np.float32)
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


def motif_stack(job: Any, venv: VecEnv, device: str) -> VecEnv:
    """Wrap a ``motif`` job's vector env with its intrinsic reward."""
    from rewardgen.train.vision import STATE_KEY

    options = job.reward_options
    intrinsic = IntrinsicReward(options["reward_model_dir"], device)
    return MotifVecEnv(venv, intrinsic, STATE_KEY, float(options["coefficient"]),
                       float(options["env_coefficient"]))


__all__ = ["IntrinsicReward", "META_FILE", "MODEL_FILE", "MotifVecEnv", "fit_intrinsic",
           "motif_stack", "state_pairs"]
