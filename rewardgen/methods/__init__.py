"""Methods turn (task, history) into prompts and answers into candidate reward programs."""

from __future__ import annotations

from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import Method, TaskPromptInfo
from rewardgen.tasks import TaskSpec

METHODS = ("eureka", "text2reward", "progress")


def make_method(cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo) -> Method:
    """Build the configured method (``method=eureka``)."""
    if cfg.name == "eureka":
        from rewardgen.methods.eureka import EurekaMethod

        return EurekaMethod(cfg, task, info)
    if cfg.name == "text2reward":
        from rewardgen.methods.text2reward import Text2RewardMethod

        return Text2RewardMethod(cfg, task, info)
    if cfg.name == "progress":
        from rewardgen.methods.progress import ProgressMethod

        return ProgressMethod(cfg, task, info)
    raise ConfigError(f"unknown method {cfg.name!r}; valid methods: {', '.join(METHODS)}")


__all__ = ["METHODS", "Method", "TaskPromptInfo", "make_method"]
