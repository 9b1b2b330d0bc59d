"""What a finished run hands to the CLI: the run's store, its history, its best, the final phase.

It sits with the run directory's records so that the search (which fills it) and the reporting
(which turns it into summary.json and the terminal's last lines) both depend on it, not on each
other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewardgen.errors import LLMError
from rewardgen.runs.store import CandidateRecord, RunStore


@dataclass
class LoopOutcome:
    """What a finished run hands to the CLI."""

    store: RunStore
    history: list[list[CandidateRecord]] = field(default_factory=list)
    best: CandidateRecord | None = None
    final: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # why the search ended early (the LLM is down), None if complete
    error: LLMError | None = None  # the error behind ``stopped``, for the CLI to report
    interrupted: bool = False  # stopped by the user (Ctrl-C): summary.json, then exit at once


__all__ = ["LoopOutcome"]
