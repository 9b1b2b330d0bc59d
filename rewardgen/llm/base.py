"""The proposer contract: what the loop asks for (reward code answers) and what it gets back.

Every source of candidate reward programs (an OpenAI-compatible server, the offline baseline, a
replay folder) implements :class:`Proposer`, so the loop never knows which one it talks to, and
its usage is accounted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rewardgen.runs.records import CandidateResult
    from rewardgen.tasks.spec import TaskSpec

Message = dict[str, Any]


@dataclass
class Completion:
    """One sampled answer.

    Attributes:
        text: the raw answer (markdown with a code block, usually).
        model: the model that wrote it (``offline`` / ``replay`` for the non-LLM proposers).
        prompt_tokens: this answer's share of the request's prompt tokens.
        completion_tokens: this answer's share of the request's completion tokens.
        cached: served from the on-disk cache (no request, no cost).
        finish_reason: ``stop``, ``length`` (truncated), ... as the server said.
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    finish_reason: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached": self.cached,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Completion:
        return cls(
            text=str(raw.get("text", "")),
            model=str(raw.get("model", "")),
            prompt_tokens=int(raw.get("prompt_tokens", 0)),
            completion_tokens=int(raw.get("completion_tokens", 0)),
            cached=bool(raw.get("cached", False)),
            finish_reason=raw.get("finish_reason"),
        )


@dataclass
class Usage:
    """Running totals of one proposer, priced per million tokens (cached answers cost nothing).

    Attributes:
        requests: HTTP requests answered (or prompts answered, for replay).
        prompt_tokens / completion_tokens: tokens paid for.
        cached_answers: answers served from the cache.
        cost_usd: money spent, from the configured prices.
        price_input_per_mtok / price_output_per_mtok: USD per million prompt / completion tokens.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_answers: int = 0
    cost_usd: float = 0.0
    price_input_per_mtok: float = field(default=0.0, repr=False)
    price_output_per_mtok: float = field(default=0.0, repr=False)

    def add(self, completion: Completion) -> None:
        """Account one answer: tokens and cost, or a cache hit."""
        if completion.cached:
            self.cached_answers += 1
            return
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.cost_usd += (
            completion.prompt_tokens * self.price_input_per_mtok
            + completion.completion_tokens * self.price_output_per_mtok
        ) / 1e6

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_answers": self.cached_answers,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass
class ProposalContext:
    """What the non-LLM proposers need to propose; language models ignore it (they get messages).

    Attributes:
        task: the task being solved.
        generation: 0-based generation index.
        seed: the run's seed (proposals are deterministic given seed and generation).
        history: ``(reward source, result)`` of earlier candidates, oldest first.
        entry: the function the method's programs define (``compute_reward``, or ``progress``
            for progress functions).
        stage: a first prompting stage before the reward programs (L2R's ``motion``
            description); empty for the programs themselves.
    """

    task: TaskSpec
    generation: int
    seed: int
    history: list[tuple[str, CandidateResult]] = field(default_factory=list)
    entry: str = "compute_reward"
    stage: str = ""


@runtime_checkable
class Proposer(Protocol):
    """A source of reward-code answers.

    Attributes:
        name: shown in logs and reports (``openai:gpt-4o``, ``offline (baseline, no language model)``).
        is_llm: whether a language model wrote the answers (reports never present the offline
            baseline as an LLM).
        usage: running totals.
    """

    name: str
    is_llm: bool
    usage: Usage

    def propose(self, messages: list[Message], n: int, ctx: ProposalContext) -> list[Completion]:
        """Return ``n`` answers to ``messages`` (fewer only where documented, e.g. replay)."""
        ...
