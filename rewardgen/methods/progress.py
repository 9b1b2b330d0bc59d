"""Progress functions (Sarukkai et al. 2024): the LLM estimates task progress, not the reward.

The answer defines ``progress(state)`` (a float in [0, 1], or a dict of named terms); the worker
trains on a count-based bonus over discretised progress plus the task's sparse reward
(:mod:`rewardgen.rewards.progress`). Several samples per generation and selection by fitness are
the loop's, as for Eureka; the best progress function and its training statistics go into the
next prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardgen.config import MethodConfig
from rewardgen.errors import ConfigError
from rewardgen.feedback import failure_summary, reward_reflection
from rewardgen.methods.base import ParsedAnswer, TaskPromptInfo
from rewardgen.methods.eureka import best_record
from rewardgen.prompts import render
from rewardgen.rewards.progress import DEFAULT_OPTIONS, check_options
from rewardgen.store import CandidateRecord
from rewardgen.tasks import TaskSpec


def progress_options(cfg: MethodConfig) -> dict[str, Any]:
    """The wrapper's options (bins, bonus, beta, hash_resolution) from ``method.*``."""
    return check_options({k: getattr(cfg, k, v) for k, v in DEFAULT_OPTIONS.items()})


class ProgressMethod:
    """Prompts for progress functions and answer parsing.

    Raises:
        ConfigError: the task has no sparse reward (the bonus alone says nothing about success)
            or the bonus options are malformed.
    """

    name = "progress"
    entry = "progress"
    reward_kind = "progress"

    def __init__(self, cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
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

    def reward_options(self) -> dict[str, Any]:
        """What the worker's progress reward needs (``CandidateJob.reward_options``)."""
        return dict(self.options)

    def _task_prompt(self, failures: str) -> str:
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

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int) -> list[dict[str, Any]]:
        limit = self.cfg.max_feedback_chars
        last = history[-1] if history else []
        failures = failure_summary(last, limit_chars=limit // 2) if last else ""
        system = {"role": "system", "content": render(self.prompt_dir, "system")}
        best = best_record(history)
        if best is None:
            return [system, {"role": "user", "content": self._task_prompt(failures)}]
        reflection = reward_reflection(best, self.task.fitness.doc or "higher is better", eval_freq)
        feedback = render(self.prompt_dir, "feedback", reflection=reflection, failures=failures,
                          human=(human or "")[: limit // 2])
        return [
            system,
            {"role": "user", "content": self._task_prompt("")},
            {"role": "assistant", "content": best.response or f"```python\n{best.source}\n```"},
            {"role": "user", "content": feedback},
        ]

    def parse(self, text: str) -> ParsedAnswer:
        from rewardgen.llm.extract import extract_code

        if not text.strip():
            return ParsedAnswer(None, "empty answer")
        source = extract_code(text, self.entry)
        if source is None:
            return ParsedAnswer(None, "no code defining progress() found in the answer")
        return ParsedAnswer(source)
