"""SB3 callbacks that watch a candidate train: episode statistics and trusted-fitness evaluation.

Both read what :class:`~rewardgen.rewards.wrappers.RewardProgramWrapper` puts into
``info["rewardgen"]["episode"]`` at the end of each episode, so training episodes and evaluation
episodes are scored by the same code.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rewardgen.io import atomic_write_json
from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.train.stats import mean_components

log = logging.getLogger(__name__)


def _episode_of(info: dict[str, Any]) -> dict[str, Any] | None:
    extra = info.get(INFO_KEY)
    return extra.get("episode") if isinstance(extra, dict) else None


class EpisodeStatsCallback(BaseCallback):
    """Collect every finished training episode and log its means to TensorBoard.

    The lists feed the candidate result (returns, lengths, fitness, and the reward/fitness
    correlation); the logged means (``rewardgen/episode_fitness``, ``rewardgen/episode_return``,
    ``rewardgen/native_return``, ``rewardgen/component/<name>``) are averaged over the episodes
    that end between two logger dumps.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.returns: list[float] = []
        self.native_returns: list[float] = []
        self.lengths: list[int] = []
        self.fitness: list[float] = []
        self.components: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            episode = _episode_of(info)
            if episode is None:
                continue
            self.returns.append(float(episode["return"]))
            self.native_returns.append(float(episode["native_return"]))
            self.lengths.append(int(episode["length"]))
            self.fitness.append(float(episode["fitness"]))
            self.components.append(dict(episode["components"]))
            record = self.logger.record_mean
            record("rewardgen/episode_fitness", float(episode["fitness"]))
            record("rewardgen/episode_return", float(episode["return"]))
            record("rewardgen/native_return", float(episode["native_return"]))
            record("rewardgen/episode_length", float(episode["length"]))
            for name, value in episode["components"].items():
                record(f"rewardgen/component/{name}", float(value))
        return True


class FitnessEvalCallback(BaseCallback):
    """Score the policy by the trusted fitness every ``eval_freq`` env steps and at the end.

    ``eval_freq`` counts the steps of all training envs together (SB3's ``num_timesteps``). Each
    evaluation runs ``n_episodes`` deterministic episodes on ``eval_env``, a single env with the
    same wrapper stack as training; its first reset uses ``seed``, so every evaluation starts
    from the same initial states and evaluations are comparable across time.

    Args:
        eval_env: a RewardProgramWrapper-topped env (not vectorised).
        eval_freq: env steps between evaluations; 0 evaluates only at the end.
        n_episodes: episodes per evaluation.
        seed: seed of each evaluation's first reset.
    """

    def __init__(
        self, eval_env: gym.Env, eval_freq: int, n_episodes: int, seed: int, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        if n_episodes < 1:
            raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
        self.eval_env = eval_env
        self.eval_freq = max(0, int(eval_freq))
        self.n_episodes = n_episodes
        self.seed = seed
        self.evaluations: list[dict[str, Any]] = []
        self._next_eval = self.eval_freq

    def _on_step(self) -> bool:
        if self.eval_freq and self.num_timesteps >= self._next_eval:
            self.evaluate()
            while self._next_eval <= self.num_timesteps:
                self._next_eval += self.eval_freq
        return True

    def _on_training_end(self) -> None:
        if not self.evaluations or self.evaluations[-1]["timesteps"] != self.num_timesteps:
            self.evaluate()

    def _run_episode(self, seed: int | None) -> dict[str, Any]:
        obs, _ = self.eval_env.reset(seed=seed)
        while True:
            action, _ = self.model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = self.eval_env.step(action)
            if terminated or truncated:
                episode = _episode_of(info)
                assert episode is not None, "eval env must be topped by RewardProgramWrapper"
                return episode

    def evaluate(self) -> dict[str, Any]:
        """Run one evaluation now, record it in ``evaluations`` and log it."""
        episodes = [
            self._run_episode(self.seed if i == 0 else None) for i in range(self.n_episodes)
        ]
        successes = [ep["success"] for ep in episodes]
        entry: dict[str, Any] = {
            "timesteps": int(self.num_timesteps),
            "fitness": float(np.mean([ep["fitness"] for ep in episodes])),
            "success_rate": None
            if any(s is None for s in successes)
            else float(np.mean([bool(s) for s in successes])),
            "return": float(np.mean([ep["return"] for ep in episodes])),
            "native_return": float(np.mean([ep["native_return"] for ep in episodes])),
            "length": float(np.mean([ep["length"] for ep in episodes])),
            "components": mean_components([ep["components"] for ep in episodes]),
        }
        self.evaluations.append(entry)
        self.logger.record("eval/fitness", entry["fitness"])
        if entry["success_rate"] is not None:
            self.logger.record("eval/success_rate", entry["success_rate"])
        self.logger.record("eval/return", entry["return"])
        self.logger.record("eval/native_return", entry["native_return"])
        self.logger.record("eval/length", entry["length"])
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        log.debug("evaluation at %d steps: fitness %.3f", self.num_timesteps, entry["fitness"])
        return entry


class ProgressFileCallback(BaseCallback):
    """Write ``{"timesteps": n, "total": N}`` to a file every few seconds.

    The parent's progress display reads it; the file is tiny and written atomically, so this
    costs nothing measurable and a reader never sees half of it.
    """

    def __init__(self, path: str | Path, total: int, every_s: float = 2.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.total = int(total)
        self.every_s = every_s
        self._last = 0.0

    def _write(self) -> None:
        atomic_write_json(self.path, {"timesteps": int(self.num_timesteps), "total": self.total})

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._write()
        return True

    def _on_training_end(self) -> None:
        self._write()
