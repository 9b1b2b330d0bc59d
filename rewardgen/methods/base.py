"""What every method shares: the task facts shown in prompts and the Method protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rewardgen.runs.store import CandidateRecord
from rewardgen.tasks.spec import TaskSpec


@dataclass(frozen=True)
class TaskPromptInfo:
    """Facts about a task's env that prompts show (read once from a real env)."""

    state_source: str
    action_shape: tuple[int, ...]
    action_low: float
    action_high: float
    dt: float
    max_steps: int
    code_rules: str = ""  # backend rules for the code (rl=brax_ppo: ARRAY_RULES), shown in the task

    @classmethod
    def from_task(cls, task: TaskSpec) -> TaskPromptInfo:
        """Build the env once and read the State source and action space from it."""
        from rewardgen.rewards.wrappers import RewardProgramWrapper

        env = RewardProgramWrapper(task.make_env(), task)
        try:
            env.reset(seed=0)
            space = env.action_space
            low = float(np.min(space.low))  # type: ignore[attr-defined]
            high = float(np.max(space.high))  # type: ignore[attr-defined]
            spec = env.spec
            max_steps = task.max_episode_steps or (spec.max_episode_steps if spec else None) or 0
            return cls(
                state_source=env.state_builder.source.rstrip(),
                action_shape=tuple(space.shape or ()),
                action_low=low,
                action_high=high,
                dt=float(env.unwrapped.dt),  # type: ignore[attr-defined]
                max_steps=int(max_steps),
            )
        finally:
            env.close()


@dataclass(frozen=True)
class ParsedAnswer:
    """A model answer turned into a reward program, or the reason it could not be."""

    source: str | None
    reason: str = ""


class Method(Protocol):
    """Turns (task, history) into prompts and answers into reward programs; nothing else."""

    name: str
    entry: str

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int, *, context: str = "iteration",
                 preference: str | None = None, show_score: bool = True) -> list[dict[str, Any]]:
        """The chat messages for the next generation, given all earlier generations.

        ``context`` (``loop.context``) picks the reward to improve; ``preference`` is ICPL's
        ranking text, bounded by its maker (it holds whole reward code: never cut);
        ``show_score=False`` (a preference mode is on) keeps the trusted task score and success
        rate out of the training feedback, as ICPL's code does.
        """
        ...

    def parse(self, text: str) -> ParsedAnswer:
        """Extract the reward program from one answer."""
        ...
