"""Brax PPO's policy rebuilt in torch for the trusted evaluator: normaliser, MLP, tanh(mean).

Brax's policy network (``brax.training.networks.make_policy_network``) is an MLP of Dense
layers ``hidden_0 .. hidden_n`` with the activation (swish by default) between them; its last
layer gives the tanh-normal distribution's ``loc`` and ``scale`` (2 x actions); the
deterministic action is ``tanh(loc)``. The observation is first normalised with the running
statistics, ``(obs - mean) / std``. This module needs no JAX: the evaluator measures the
checkpoints (:mod:`rewardgen.worker.brax_train` writes them) in C MuJoCo with torch only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardgen.errors import ConfigError
from rewardgen.tasks.spec import TaskSpec
from rewardgen.train.brax_config import train_kwargs

DEFAULT_POLICY_LAYERS = (32, 32, 32, 32)  # brax.training.agents.ppo.networks.make_ppo_networks
POLICY_FILE = "policy.safetensors"


class _Normalizer(torch.nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.mean) / self.std


class BraxPolicyNet(torch.nn.Module):
    """The policy MLP with Brax's parameter names (``hidden_i.weight`` is Brax's kernel, T)."""

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.normalizer: _Normalizer = _Normalizer(obs_size)
        sizes = [obs_size, *hidden, 2 * action_size]
        self.layer_names = [f"hidden_{i}" for i in range(len(sizes) - 1)]
        for name, (n_in, n_out) in zip(
            self.layer_names, zip(sizes, sizes[1:], strict=False), strict=True
        ):
            self.add_module(name, torch.nn.Linear(n_in, n_out))
        self.action_size = action_size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(obs)
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x)
            if i < len(self.layer_names) - 1:
                x = torch.nn.functional.silu(x)  # flax's swish
        return torch.tanh(x[..., : self.action_size])


class BraxPolicyModel:
    """What the evaluator asks of a model: ``.policy`` (weights), ``predict`` and ``save``."""

    def __init__(self, policy: BraxPolicyNet) -> None:
        self.policy = policy.eval()

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, np.float32))
            return self.policy(x).numpy(), None

    def save(self, path: str | Path) -> Path:
        """Write the weights (safetensors) next to ``path``, as :data:`POLICY_FILE`."""
        from safetensors.torch import save_file

        out = Path(path).with_name(POLICY_FILE)
        save_file({k: v.contiguous() for k, v in self.policy.state_dict().items()}, str(out))
        return out


def build_policy_model(task: TaskSpec, job_rl: dict[str, Any]) -> BraxPolicyModel:
    """The candidate's policy, shaped from the trusted job and the task's native env."""
    _, network = train_kwargs(job_rl, task.name)
    hidden = tuple(network.get("policy_hidden_layer_sizes", DEFAULT_POLICY_LAYERS))
    env = task.make_env()
    try:
        obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    finally:
        env.close()
    if not obs_shape or not act_shape or len(obs_shape) != 1 or len(act_shape) != 1:
        raise ConfigError(f"task {task.name!r}: rl=brax_ppo needs vector observations and actions")
    return BraxPolicyModel(BraxPolicyNet(int(obs_shape[0]), int(act_shape[0]), hidden))


__all__ = ["BraxPolicyModel", "BraxPolicyNet", "POLICY_FILE", "build_policy_model"]
