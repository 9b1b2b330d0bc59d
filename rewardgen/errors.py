"""A flat error hierarchy; every message names the bad value and the fix."""


class RewardGenError(Exception):
    """Base class of every error rewardgen raises on purpose."""


class ConfigError(RewardGenError):
    """A configuration value is missing, malformed or inconsistent."""


class TaskError(RewardGenError):
    """A task spec (envs/*.yaml) is unknown or malformed."""


class RewardCodeError(RewardGenError):
    """Generated reward code is invalid, unsafe or misbehaves."""


class LLMError(RewardGenError):
    """The language model server failed or answered unusably."""


class SandboxError(RewardGenError):
    """An isolated worker could not be started or was killed."""


class RunDirError(RewardGenError):
    """A run directory is missing, foreign or from an incompatible version."""


class RenderError(RewardGenError):
    """Frames cannot be rendered (no headless OpenGL: EGL or OSMesa missing)."""
