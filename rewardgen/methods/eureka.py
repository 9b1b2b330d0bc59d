"""Eureka (Ma et al. 2023): sample reward code, reflect on training, improve the best.

The conversation stays bounded: system, task, the best reward so far (as the assistant's turn)
and its feedback (reward reflection, the last generation's failures, human text). When nothing
has worked yet, the task prompt carries the last generation's error summary instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardgen.config import MethodConfig
from rewardgen.feedback import failure_summary, reward_reflection
from rewardgen.methods.base import ParsedAnswer, TaskPromptInfo
from rewardgen.prompts import render
from rewardgen.sandbox.contract import clean_text
from rewardgen.store import CandidateRecord
from rewardgen.tasks import TaskSpec


def best_record(history: Sequence[Sequence[CandidateRecord]]) -> CandidateRecord | None:
    """The trained candidate with the highest trusted fitness over all generations."""
    trained = [r for gen in history for r in gen if r.result.ok and r.result.fitness is not None]
    return max(trained, key=lambda r: r.result.fitness or 0.0, default=None)


def _clean(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates' reasons, tracebacks and the LLM's own answers go back into the prompt as text:
    their content stays, control characters and escape sequences do not."""
    return [{**m, "content": clean_text(m["content"])} for m in messages]


class EurekaMethod:
    """Eureka's prompts and answer parsing."""

    name = "eureka"
    entry = "compute_reward"

    def __init__(self, cfg: MethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir

    def _task_prompt(self, failures: str) -> str:
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
        )

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int) -> list[dict[str, Any]]:
        limit = self.cfg.max_feedback_chars
        last = history[-1] if history else []
        failures = failure_summary(last, limit_chars=limit // 2) if last else ""
        system = {"role": "system", "content": render(self.prompt_dir, "system")}
        best = best_record(history)
        if best is None:
            return _clean([system, {"role": "user", "content": self._task_prompt(failures)}])
        reflection = reward_reflection(best, self.task.fitness.doc or "higher is better", eval_freq)
        feedback = render(self.prompt_dir, "feedback", reflection=reflection,
                          failures=failures, human=(human or "")[: limit // 2])
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
