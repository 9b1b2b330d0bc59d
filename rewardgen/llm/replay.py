"""The replay proposer: prompts go to files, answers come from files.

Use any chat window as the language model (``llm=replay llm.replay_dir=DIR``): each generation's
prompt is written to ``DIR/gen_<GGG>.prompt.md`` and the answers are read from
``DIR/gen_<GGG>.answer_<KK>.md``. With ``llm.replay_wait_s`` it waits until all of them exist, or
until ``DIR/gen_<GGG>.done`` does (go on with the answers written so far), or the wait ends;
without it, the answers already there are used (at least one). When ``DIR`` is a rewardgen
run directory (it has ``manifest.json``), the recorded answers ``DIR/gen_<GGG>/cand_<KK>/response.md``
are replayed instead, so a run can be repeated without paying for its answers again. A first
prompting stage (L2R's motion description, ``ProposalContext.stage``) has its own files,
``DIR/gen_<GGG>.<stage>.prompt.md`` and ``.answer_<KK>.md``, recorded as ``gen_<GGG>/<stage>.md``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from rewardgen.errors import ConfigError, LLMError
from rewardgen.llm.base import Completion, Message, ProposalContext, Usage
from rewardgen.runs.atomic import atomic_write_text

log = logging.getLogger(__name__)

REPLAY_MODEL = "replay"
_POLL_S = 0.2


def _stem(generation: int, stage: str = "") -> str:
    return f"gen_{generation:03d}" + (f".{stage}" if stage else "")


def prompt_path(replay_dir: Path, generation: int, stage: str = "") -> Path:
    return replay_dir / f"{_stem(generation, stage)}.prompt.md"


def answer_path(replay_dir: Path, generation: int, k: int, stage: str = "") -> Path:
    return replay_dir / f"{_stem(generation, stage)}.answer_{k:02d}.md"


def done_path(replay_dir: Path, generation: int, stage: str = "") -> Path:
    return replay_dir / f"{_stem(generation, stage)}.done"


def recorded_answer_path(run_dir: Path, generation: int, k: int, stage: str = "") -> Path:
    """A recorded answer: ``cand_KK/response.md``, or a first stage's ``gen_GGG/<stage>.md``."""
    if stage:
        return run_dir / f"gen_{generation:03d}" / f"{stage}.md"
    return run_dir / f"gen_{generation:03d}" / f"cand_{k:02d}" / "response.md"


def _content_text(content: Any) -> str:
    """Text of a message content: a string, or the text parts of a multi-part content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict):
                parts.append(f"[{part.get('type', 'attachment')} omitted]")
        return "\n\n".join(parts)
    return json.dumps(content, default=str)


def render_prompt(messages: list[Message], generation: int, n: int, replay_dir: Path,
                  stage: str = "") -> str:
    """All messages under role headers, then where the answers go."""
    blocks = [
        f"## {str(m.get('role', 'user')).upper()}\n\n{_content_text(m.get('content', ''))}"
        for m in messages
    ]
    first = answer_path(replay_dir, generation, 0, stage).name
    last = answer_path(replay_dir, generation, n - 1, stage).name
    footer = (
        f"<!-- rewardgen replay: paste each answer of the model into its own file, {first}"
        + (f" ... {last}" if n > 1 else "")
        + f", in {replay_dir}; to go on with fewer, create "
        + done_path(replay_dir, generation, stage).name
        + " -->"
    )
    return (
        f"# rewardgen prompt, generation {generation}\n\n" + "\n\n".join(blocks) + f"\n\n{footer}\n"
    )


class ReplayProposer:
    """Answers read from files (a chat window's, or a recorded run's).

    Args:
        replay_dir: the folder of prompt/answer files, or a rewardgen run directory.
        wait_s: how long to wait for all answer files (or the generation's ``.done`` file)
            before going on with those there, or failing without any (0: no waiting).
    """

    is_llm = True

    def __init__(self, replay_dir: str | Path, wait_s: float = 0.0) -> None:
        if not replay_dir:
            raise ConfigError(
                "llm=replay needs llm.replay_dir: a folder for prompt/answer files, or a run directory"
            )
        self.replay_dir = Path(replay_dir).expanduser()
        self.wait_s = max(0.0, float(wait_s))
        self.recorded = (self.replay_dir / "manifest.json").is_file()
        kind = "recorded run" if self.recorded else "files"
        self.name = f"replay ({kind} in {self.replay_dir})"
        self.usage = Usage()
        if not self.recorded:
            self.replay_dir.mkdir(parents=True, exist_ok=True)

    def propose(self, messages: list[Message], n: int, ctx: ProposalContext) -> list[Completion]:
        """Write the prompt (not for a recorded run), then read up to ``n`` answers."""
        if n < 1:
            return []
        generation, stage = ctx.generation, ctx.stage
        if self.recorded:
            paths = [recorded_answer_path(self.replay_dir, generation, k, stage)
                     for k in range(1 if stage else n)]
        else:
            atomic_write_text(
                prompt_path(self.replay_dir, generation, stage),
                render_prompt(messages, generation, n, self.replay_dir, stage),
            )
            paths = [answer_path(self.replay_dir, generation, k, stage) for k in range(n)]
        found = self._wait_for_answers(paths, done_path(self.replay_dir, generation, stage))
        if not found:
            raise LLMError(self._missing_message(generation, paths, stage))
        completions = [
            Completion(text=p.read_text(), model=REPLAY_MODEL, finish_reason="stop") for p in found
        ]
        if len(completions) < n:
            log.warning(
                "%s: generation %d has %d of %d answers; using those",
                self.name,
                generation,
                len(completions),
                n,
            )
        self.usage.requests += 1
        for c in completions:
            self.usage.add(c)
        return completions

    def _wait_for_answers(self, paths: list[Path], done: Path) -> list[Path]:
        """Every answer, or those there when ``done`` appears or the wait ends.

        A person pastes answers one file at a time: taking the first file that appears would
        start a generation of one candidate.
        """
        deadline = time.monotonic() + self.wait_s
        if self.wait_s > 0 and not all(p.is_file() for p in paths):
            log.warning("%s: waiting up to %.0fs for %d answer files (%s ...), or %s",
                        self.name, self.wait_s, len(paths), paths[0].name, done.name)
        while True:
            found = [p for p in paths if p.is_file()]
            finished = len(found) == len(paths) or done.is_file()
            if finished or time.monotonic() >= deadline:
                return found
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))

    def _missing_message(self, generation: int, paths: list[Path], stage: str = "") -> str:
        if self.recorded:
            have = sorted(p.name for p in self.replay_dir.glob("gen_*") if p.is_dir())
            return (
                f"recorded run {self.replay_dir} has no answer for generation {generation}: "
                f"{paths[0]} is missing (it has {', '.join(have) or 'no generations'}); "
                "replay fewer generations (loop.generations) or switch to llm=openai"
            )
        waited = f" after waiting {self.wait_s:g}s" if self.wait_s else ""
        return (
            f"no answer for generation {generation}{waited}: write the model's answer to "
            f"{paths[0]} (prompt in {prompt_path(self.replay_dir, generation, stage)}), "
            "or set llm.replay_wait_s to wait for it"
        )
