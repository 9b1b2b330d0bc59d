"""SB3 callbacks of the untrusted training worker: episode statistics, checkpoints and progress.

The statistics read what :class:`~rewardgen.rewards.wrappers.RewardProgramWrapper` puts into
``info["rewardgen"]["episode"]`` at the end of each episode. They are *reported by the
candidate*: they come from the process that runs the reward program, so nothing here is used for
selection. Fitness is measured by the trusted evaluator from the checkpoints.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rewardgen.rewards.wrappers import INFO_KEY
from rewardgen.runs.atomic import atomic_write_json
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
        self.max_abs_reward = 0.0  # the largest |reward| of one step the learner received

    def _on_step(self) -> bool:
        rewards = self.locals.get("rewards")
        if rewards is not None:
            self.max_abs_reward = max(self.max_abs_reward, float(np.max(np.abs(rewards))))
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


class CheckpointCallback(BaseCallback):
    """Save the policy's weights every ``eval_freq`` env steps and at the end of training.

    This runs in the untrusted training worker, so it measures nothing: the trusted evaluator
    (:mod:`rewardgen.worker.evaluate`) later loads each checkpoint into a policy it builds
    itself and scores it on the native env. The checkpoints are plain tensors
    (:func:`rewardgen.train.checkpoints.save_weights`), never a pickle.

    ``episodes_at`` records, for each checkpoint, how many training episodes had ended, so the
    reported component statistics can be bucketed by evaluation point.

    Args:
        folder: where ``<timesteps>.safetensors`` files go.
        eval_freq: env steps between checkpoints (all envs together); 0: only at the end.
        stats: the episode statistics callback whose episode count is recorded.
    """

    def __init__(self, folder: str | Path, eval_freq: int, stats: EpisodeStatsCallback,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.folder = Path(folder)
        self.eval_freq = max(0, int(eval_freq))
        self.stats = stats
        self.saved: list[int] = []
        self.episodes_at: list[int] = []
        self._next = self.eval_freq

    def save(self) -> None:
        from rewardgen.train.checkpoints import save_weights

        save_weights(self.model.policy, self.folder, self.num_timesteps)
        self.saved.append(int(self.num_timesteps))
        self.episodes_at.append(len(self.stats.returns))

    def _on_step(self) -> bool:
        if self.eval_freq and self.num_timesteps >= self._next:
            self.save()
            while self._next <= self.num_timesteps:
                self._next += self.eval_freq
        return True

    def _on_training_end(self) -> None:
        if not self.saved or self.saved[-1] != self.num_timesteps:
            self.save()

    def component_stats(self) -> dict[str, list[float]]:
        """Per component, its mean episode sum over the training episodes of each window.

        Window ``i`` holds the episodes that ended between checkpoint ``i-1`` and ``i``; a window
        without a finished episode repeats the previous value (0.0 at the start).
        """
        episodes = self.stats.components
        names = sorted({name for ep in episodes for name in ep})
        out: dict[str, list[float]] = {name: [] for name in names}
        start = 0
        for end in self.episodes_at:
            window = episodes[start:end]
            means = mean_components(window) if window else None
            for name in names:
                previous = out[name][-1] if out[name] else 0.0
                out[name].append(float(means.get(name, 0.0)) if means is not None else previous)
            start = end
        return out


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
