"""The count bonus of progress functions over a whole vector env (one table per candidate).

Sarukkai et al. count visits to progress cells over all of the policy's experience. With several
training envs (and SubprocVecEnv processes) a table per env would give each env its own novelty;
here the envs only report their cell (:class:`~rewardgen.rewards.progress.ProgressReward` with
``shared_counts=True``) and one VecEnvWrapper in the training process counts and pays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from rewardgen.rewards.progress import CELL_KEY, check_options
from rewardgen.rewards.wrappers import INFO_KEY


class SharedCountBonus(VecEnvWrapper):
    """One visit-count table for every env of a candidate's vector env.

    Each env's ``ProgressReward`` (``shared_counts=True``) reports its cell in
    ``info["rewardgen"]["components"]["count_cell"]``; here, in the training process, the cells
    of a step are counted in env order (a cell env 0 visits lowers env 1's bonus in the same
    step) and ``beta / sqrt(N(cell))`` is added to each env's reward, its step components
    (``bonus``, the cell removed) and, at the end of an episode, its return and component sums.

    Args:
        venv: the candidate's vector env (Dummy or Subproc).
        beta: scale of the bonus.
    """

    def __init__(self, venv: VecEnv, beta: float) -> None:
        super().__init__(venv)
        self.beta = float(beta)
        self.counts: dict[float, int] = {}
        self._episode_bonus = np.zeros(self.num_envs)

    def reset(self) -> VecEnvObs:
        self._episode_bonus[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        rewards = np.array(rewards, dtype=np.float64)
        for i, info in enumerate(infos):
            extra = info.get(INFO_KEY)
            if not isinstance(extra, dict):
                continue
            key = extra.get("components", {}).pop(CELL_KEY, None)
            if key is None:
                continue
            n = self.counts.get(key, 0) + 1
            self.counts[key] = n
            bonus = self.beta / math.sqrt(n)
            rewards[i] += bonus
            extra["components"]["bonus"] = bonus
            self._episode_bonus[i] += bonus
            episode = extra.get("episode")
            if isinstance(episode, dict):
                episode["return"] = float(episode["return"]) + float(self._episode_bonus[i])
                sums = episode.setdefault("components", {})
                sums.pop(CELL_KEY, None)
                sums["bonus"] = float(self._episode_bonus[i])
                self._episode_bonus[i] = 0.0
        return obs, rewards.astype(np.float32), dones, infos


def shared_count_bonus(venv: VecEnv, options: Mapping[str, Any]) -> VecEnv:
    """``venv`` with one count table for all its envs (count and hash bonuses); as is for the
    dense ablation, which counts nothing."""
    merged = check_options(options)
    if merged["bonus"] == "dense":
        return venv
    return SharedCountBonus(venv, float(merged["beta"]))


__all__ = ["SharedCountBonus", "shared_count_bonus"]
