"""SAC's replay buffer, sized to what it will hold: observations in float32, stored once.

SB3's :class:`~stable_baselines3.common.buffers.ReplayBuffer` allocates ``buffer_size`` rows up
front, in the observation space's dtype (float64 for gymnasium's MuJoCo envs) and twice (obs and
next_obs): 2.6 GB for Humanoid's 348 numbers at SB3's default of one million, more than a
worker's address space. :class:`CompactReplayBuffer` keeps SB3's layout and sampling but

* stores observations as float32, which is what the policy reads anyway (SB3's ``preprocess_obs``
  casts every Box observation to float32 before the networks), so no information the policy or
  critic uses is lost;
* with ``optimize_memory_usage`` (SB3's own trick: the next observation of row ``i`` is the
  observation of row ``i + 1``) stores them once, and stays correct with
  ``handle_timeout_termination``, which SB3 refuses together with it (its issue 934): the true
  next observation of every *truncated* transition, overwritten by the reset observation in the
  shared array, is kept apart and put back when the transition is sampled. A terminated
  transition's next observation is never read (its target does not bootstrap).

:func:`buffer_size_for` caps the buffer at the training budget, so a 2048-step run does not
allocate a million rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from rewardgen.train.memory import buffer_size_for

STORAGE_DTYPE = np.float32


def storage_space(space: spaces.Space) -> spaces.Space:
    """``space`` with float32 storage when it is a float Box of more precision; else itself."""
    if (
        isinstance(space, spaces.Box)
        and np.issubdtype(space.dtype, np.floating)
        and np.dtype(space.dtype).itemsize > np.dtype(STORAGE_DTYPE).itemsize
    ):
        return spaces.Box(
            space.low.astype(STORAGE_DTYPE), space.high.astype(STORAGE_DTYPE), dtype=STORAGE_DTYPE
        )  # type: ignore[arg-type]
    return space


class CompactReplayBuffer(ReplayBuffer):
    """SB3's replay buffer with float32 observations, stored once when ``optimize_memory_usage``.

    Args:
        buffer_size: transitions in all (SB3 gives each of the ``n_envs`` envs an equal share).
        observation_space: the env's; a float64 Box is stored as float32.
        action_space: the env's.
        device: where sampled batches go.
        n_envs: envs of the vector env.
        optimize_memory_usage: one observation array (next observation = the next row's).
        handle_timeout_termination: bootstrap through time-limit truncations (SB3's default);
            allowed together with ``optimize_memory_usage`` here.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        super().__init__(
            buffer_size,
            storage_space(observation_space),
            action_space,
            device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=(handle_timeout_termination and not optimize_memory_usage),
        )
        self.handle_timeout_termination = handle_timeout_termination
        # optimize_memory_usage + timeouts: truncated transitions' own next observations
        self._truncated = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        self._truncated_next: dict[tuple[int, int], np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays allocated up front (what the memory check estimates)."""
        arrays = [
            self.observations,
            self.actions,
            self.rewards,
            self.dones,
            self.timeouts,
            self._truncated,
        ]
        if not self.optimize_memory_usage:
            arrays.append(self.next_observations)
        return int(sum(a.nbytes for a in arrays))

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        pos = self.pos
        if self.optimize_memory_usage and self.handle_timeout_termination:
            for env in np.flatnonzero(self._truncated[pos]):  # row pos is overwritten now
                self._truncated_next.pop((pos, int(env)), None)
            self._truncated[pos] = False
        super().add(obs, next_obs, action, reward, done, infos)
        if self.optimize_memory_usage and self.handle_timeout_termination:
            for env in np.flatnonzero(self.timeouts[pos] * np.asarray(done).reshape(-1)):
                self._truncated[pos, env] = True
                self._truncated_next[(pos, int(env))] = np.array(
                    np.asarray(next_obs)[env], dtype=self.observations.dtype
                )

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples:
        if not (self.optimize_memory_usage and self.handle_timeout_termination):
            return super()._get_samples(batch_inds, env=env)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        next_obs = self.observations[(batch_inds + 1) % self.buffer_size, env_indices, :]
        for k in np.flatnonzero(self._truncated[batch_inds, env_indices]):
            next_obs[k] = self._truncated_next[(int(batch_inds[k]), int(env_indices[k]))]
        timeouts = self.timeouts[batch_inds, env_indices]
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(next_obs, env),
            (self.dones[batch_inds, env_indices] * (1 - timeouts)).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


__all__ = ["STORAGE_DTYPE", "CompactReplayBuffer", "buffer_size_for", "storage_space"]
