"""Config composition for tests: tiny budgets, real components."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rewardgen.config import register_configs
from rewardgen.resources import resource_dir

TINY = [
    "task=inverted_pendulum",
    "loop.generations=2",
    "loop.samples=2",
    "train.timesteps=256",
    "train.eval_freq=128",
    "train.eval_episodes=1",
    "train.max_episode_steps=64",
    "train.save_policy=true",
    "final.timesteps=128",
    "final.n_seeds=1",
    "rl.n_envs=1",
    "++rl.hyperparams.n_steps=64",
    "++rl.hyperparams.batch_size=32",
    "++rl.hyperparams.n_epochs=1",
    "++rl.hyperparams.policy_kwargs={net_arch:[8]}",
    "executor.workers=2",
    "sandbox.timeout_s=180",
    "sandbox.smoke_states=8",
    "report.videos=false",
]


def compose_config(overrides: list[str], name: str = "config") -> DictConfig:
    """Compose a config exactly as the command line would (without running Hydra's app)."""
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        return compose(name, overrides=overrides)


def tiny_config(*extra: str) -> DictConfig:
    return compose_config([*TINY, *extra])
