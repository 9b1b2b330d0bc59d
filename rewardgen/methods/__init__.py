"""Methods turn (task, history) into prompts and answers into candidate reward programs."""

from __future__ import annotations

from typing import Any

from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import Method, TaskPromptInfo
from rewardgen.tasks.spec import TaskSpec

METHODS = ("eureka", "text2reward", "progress", "l2r")


def method_class(name: str) -> Any:
    """The class of method ``name`` (its ``entry``, ``reward_kind``, ``reward_options``)."""
    if name == "eureka":
        from rewardgen.methods.eureka import EurekaMethod

        return EurekaMethod
    if name == "text2reward":
        from rewardgen.methods.text2reward import Text2RewardMethod

        return Text2RewardMethod
    if name == "progress":
        from rewardgen.methods.progress import ProgressMethod

        return ProgressMethod
    if name == "l2r":
        from rewardgen.methods.l2r import L2RMethod

        return L2RMethod
    raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")


def make_method(cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo,
                llm: Any = None) -> Method:
    """Build the configured method (``method=eureka``). ``llm`` (the ``llm`` config) reaches the
    methods that ask the server for more than chat (``uses_llm``: text2reward's embeddings)."""
    cls = method_class(str(cfg.name))
    if getattr(cls, "uses_llm", False):
        return cls(cfg, task, info, llm=llm)  # type: ignore[no-any-return]
    return cls(cfg, task, info)  # type: ignore[no-any-return]


__all__ = ["METHODS", "Method", "TaskPromptInfo", "make_method", "method_class"]
