"""Eureka (Ma et al. 2023): sample reward code, reflect on training, improve the best.

The conversation stays bounded: system, task, the reward to improve (as the assistant's turn)
and its feedback (reward reflection, the last generation's failures, human text, ICPL's
preference text). When nothing has worked yet, the task prompt carries the last generation's
error summary instead.

The reward to improve is, as in the paper, the best candidate of the latest generation that
trained one (``loop.context=iteration``); ``loop.context=all_time`` takes the best so far. When
``feedback.preference`` ranks generations (ICPL), the latest preferred candidate is the reward
to improve and the run's best, whatever the fitness says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardgen.config import MethodConfig
from rewardgen.methods.base import ParsedAnswer, TaskPromptInfo
from rewardgen.methods.feedback import failure_summary, reward_reflection
from rewardgen.prompts import render
from rewardgen.runs.store import CandidateRecord, best_record
from rewardgen.sandbox.contract import clean_text
from rewardgen.tasks.spec import TaskSpec


def _clean(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates' reasons, tracebacks and the LLM's own answers go back into the prompt as text:
    their content stays, control characters and escape sequences do not."""
    return [{**m, "content": clean_text(m["content"])} for m in messages]


class EurekaMethod:
    """Eureka's prompts and answer parsing."""

    name = "eureka"
    entry = "compute_reward"
    reward_kind = "program"  # what its programs are, for the job builder (rewardgen/jobs.py)

    @classmethod
    def reward_options(cls, cfg: Any) -> dict[str, Any]:
        """Options the training worker needs for this method's programs (none here)."""
        return {}

    def __init__(self, cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir

    def _task_prompt(self, failures: str, **extra: Any) -> str:
        """The task message; subclasses add their own template variables (``extra``)."""
        info = self.info
        return render(
            self.prompt_dir,
            "task",
            state_source=info.state_source,
            action_shape=info.action_shape,
            action_low=f"{info.action_low:g}",
            action_high=f"{info.action_high:g}",
            dt=f"{info.dt:g}",
            max_steps=info.max_steps,
            description=self.task.description,
            failures=failures,
            code_rules=info.code_rules,
            **extra,
        )

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int, *, context: str = "iteration",
                 preference: str | None = None, show_score: bool = True) -> list[dict[str, Any]]:
        """The next prompt: the reward to improve (:func:`best_record` with ``context``) and its
        feedback. ``human`` is cut to half of ``method.max_feedback_chars``; ``preference`` (ICPL's
        text, with whole reward code) is bounded by its maker and never cut here."""
        limit = self.cfg.max_feedback_chars
        last = history[-1] if history else []
        failures = failure_summary(last, limit_chars=limit // 2) if last else ""
        system = {"role": "system", "content": render(self.prompt_dir, "system")}
        best = best_record(history, context)
        if best is None:
            return _clean([system, {"role": "user", "content": self._task_prompt(failures)}])
        reflection = reward_reflection(best, self.task.fitness.doc or "higher is better", eval_freq,
                                       show_score=show_score)
        extra = "\n\n".join(t for t in ((human or "")[: limit // 2], preference or "") if t)
        feedback = render(self.prompt_dir, "feedback", reflection=reflection,
                          failures=failures, human=extra)
        return _clean([
            system,
            {"role": "user", "content": self._task_prompt("")},
            {"role": "assistant", "content": best.response or f"```python\n{best.source}\n```"},
            {"role": "user", "content": feedback},
        ])

    def parse(self, text: str) -> ParsedAnswer:
        from rewardgen.llm.extract import extract_code

        if not text.strip():
            return ParsedAnswer(None, "empty answer")
        source = extract_code(text, self.entry)
        if source is None:
            return ParsedAnswer(None, f"no code defining {self.entry}() found in the answer")
        return ParsedAnswer(source)
