"""Progress functions (Sarukkai et al. 2024): the LLM estimates task progress, not the reward.

The answer defines ``progress(state)`` (a float in [0, 1], or a dict of named terms); the worker
trains on a count-based bonus over discretised progress plus the task's sparse reward
(:mod:`rewardgen.rewards.progress`). Several samples per generation and selection by fitness are
the loop's, as for Eureka; the best progress function and its training statistics go into the
next prompt.
"""

from __future__ import annotations

from typing import Any

from rewardgen.config import ProgressMethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import TaskPromptInfo
from rewardgen.methods.eureka import EurekaMethod
from rewardgen.prompts import render
from rewardgen.rewards.progress import DEFAULT_OPTIONS, check_options
from rewardgen.tasks.spec import TaskSpec


def progress_options(cfg: ProgressMethodConfig) -> dict[str, Any]:
    """The wrapper's options (bins, bonus, beta, hash_resolution) from ``method.*``."""
    return check_options({k: getattr(cfg, k, v) for k, v in DEFAULT_OPTIONS.items()})


class ProgressMethod(EurekaMethod):
    """Prompts for progress functions and answer parsing.

    Raises:
        ConfigError: the task has no sparse reward (the bonus alone says nothing about success)
            or the bonus options are malformed.
    """

    name = "progress"
    entry = "progress"
    reward_kind = "progress"

    @classmethod
    def reward_options(cls, cfg: Any) -> dict[str, Any]:
        """The progress wrapper's options (bins, bonus, beta, hash_resolution)."""
        return progress_options(cfg)

    def __init__(self, cfg: ProgressMethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
        if not task.sparse_reward:
            raise ConfigError(
                f"method=progress needs a sparse reward and task {task.name!r} has no "
                "sparse_reward; add one to its YAML or use method=eureka"
            )
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir
        self.options = progress_options(cfg)

    def _task_prompt(self, failures: str, **extra: Any) -> str:  # its own template variables
        return render(
            self.prompt_dir,
            "task",
            state_source=self.info.state_source,
            dt=f"{self.info.dt:g}",
            max_steps=self.info.max_steps,
            sparse_reward=self.task.sparse_reward,
            description=self.task.description,
            failures=failures,
        )
