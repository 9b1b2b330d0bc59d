"""Text2Reward (Xie et al. 2023): dense reward code from a compact Pythonic env abstraction.

The prompt shows an ``Env`` class (bodies, what each action entry drives) and the ``State`` class
instead of the env's source; zero-shot, or few-shot with the most similar reward of *another*
task from a library of exported rewards (the paper's k=1; the target task's own rewards are left
out, as the official code skips the current task). As in the paper, zero-shot is one sample
trained once (``loop.samples=1 loop.generations=1``, set by conf/method/text2reward.yaml); more
generations refine the reward from feedback, automatic (training metrics) or a person's text
(``feedback.mode=interactive|file``, read by the loop), and every earlier round (its code, what
training showed, the feedback on it) stays in the conversation, as the official interactive
code keeps its whole history. A larger ``loop.samples`` with selection by fitness is our search.

Library layout (``method.library_dir``; rewardgen-export writes a superset)::

    LIBRARY/<entry>/reward.py   the reward program (defines compute_reward)
    LIBRARY/<entry>/meta.json   {"task": "hopper", "description": "...", "fitness": 3.2}

Similarity (``method.similarity``): the LLM server's embeddings endpoint (cosine between the
task's and each entry's name and description; the paper used OpenAI embeddings), falling back to
token Jaccard when the server has none (``auto``), or either one alone (``embeddings|tokens``).
"""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.config import Text2RewardMethodConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import TaskPromptInfo
from rewardgen.methods.eureka import EurekaMethod, _clean, best_record
from rewardgen.methods.feedback import failure_line, failure_summary, reward_reflection
from rewardgen.prompts import render
from rewardgen.runs.store import CandidateRecord
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

MODES = ("zero_shot", "few_shot")
SIMILARITIES = ("auto", "embeddings", "tokens")
Embedder = Callable[[Sequence[str]], np.ndarray]
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "as", "is", "it", "its", "at", "by", "with", "for", "be", "while", "from"])
_EXAMPLE_CHARS = 2500


@dataclass(frozen=True)
class LibraryEntry:
    """One earlier good reward: its task, description and code."""

    name: str
    task: str
    description: str
    source: str


def tokens(text: str) -> set[str]:
    """Lower-case words without stop words (``half_cheetah`` gives ``half``, ``cheetah``)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def similarity(a: str, b: str) -> float:
    """Token Jaccard similarity: cheap, needs no model download, good enough to rank a library."""
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


def load_library(library_dir: str | Path) -> list[LibraryEntry]:
    """Every ``<entry>/reward.py`` with its ``meta.json`` under ``library_dir``.

    Raises:
        ConfigError: the folder does not exist or holds no entry.
    """
    root = Path(library_dir).expanduser()
    if not root.is_dir():
        raise ConfigError(f"method.library_dir={str(library_dir)!r} is not a folder; point it at "
                          "exported rewards (<entry>/reward.py + <entry>/meta.json)")
    entries = []
    for reward in sorted(root.glob("*/reward.py")):
        meta_path = reward.parent / "meta.json"
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except (OSError, ValueError) as e:
            log.warning("library entry %s: unreadable meta.json (%s); using its folder name", reward.parent, e)
            meta = {}
        entries.append(LibraryEntry(
            name=reward.parent.name,
            task=str(meta.get("task", reward.parent.name)),
            description=str(meta.get("description", "")),
            source=reward.read_text().strip(),
        ))
    if not entries:
        raise ConfigError(f"method.library_dir={str(library_dir)!r} holds no <entry>/reward.py")
    return entries


def _entry_text(task: str, description: str) -> str:
    return f"{task.replace('_', ' ')} {description}"


def nearest(entries: Sequence[LibraryEntry], task: TaskSpec, k: int,
            embed: Embedder | None = None) -> list[LibraryEntry]:
    """The ``k`` entries of *other* tasks most similar to ``task``.

    Entries of ``task`` itself are left out (its own reward would leak the answer into its
    prompt). ``embed`` maps texts to vectors (cosine similarity); without it, token Jaccard.
    """
    others = [e for e in entries if e.task != task.name]
    if len(others) < len(entries):
        log.info("few-shot: left out %d library entries of task %s itself",
                 len(entries) - len(others), task.name)
    query = _entry_text(task.name, task.description)
    texts = [_entry_text(e.task, e.description) for e in others]
    if embed is not None and others:
        vectors = np.asarray(embed([query, *texts]), dtype=float)
        norms = np.linalg.norm(vectors, axis=1)
        norms[norms == 0] = 1.0
        unit = vectors / norms[:, None]
        scores = (unit[1:] @ unit[0]).tolist()
    else:
        scores = [similarity(query, text) for text in texts]
    ranked = sorted(zip(scores, others, strict=True), key=lambda p: (-p[0], p[1].name))
    return [e for _, e in ranked[: max(0, k)]]


def server_embedder(llm: Any, model: str) -> Embedder | None:
    """The LLM server's embeddings endpoint (``llm.base_url``, else $OPENAI_BASE_URL; the key as
    the chat client finds it) as a function of texts, or None when no server is configured."""
    if llm is None or str(getattr(llm, "provider", None) or "auto") not in ("auto", "openai"):
        return None
    import openai

    from rewardgen.config import LLMConfig
    from rewardgen.llm.client import PLACEHOLDER_KEY, resolve_endpoint

    base_url, api_key = resolve_endpoint(
        LLMConfig(base_url=getattr(llm, "base_url", None), api_key=getattr(llm, "api_key", None)))
    if not base_url and not api_key:
        return None
    client = openai.OpenAI(base_url=base_url, api_key=api_key or PLACEHOLDER_KEY,
                           timeout=float(getattr(llm, "timeout_s", None) or 60.0), max_retries=2)

    def embed(texts: Sequence[str]) -> np.ndarray:
        response = client.embeddings.create(model=model, input=list(texts), encoding_format="float")
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise ValueError(f"{len(data)} embeddings for {len(texts)} texts")
        return np.asarray([d.embedding for d in data], dtype=float)

    return embed


def few_shot_examples(cfg: Text2RewardMethodConfig, task: TaskSpec, llm: Any = None) -> list[LibraryEntry]:
    """The library entries a few-shot prompt shows (``method.similarity`` picks the measure).

    Raises:
        ConfigError: no library, an unknown similarity, or ``embeddings`` without a server
            that answers embedding requests.
    """
    library_dir = getattr(cfg, "library_dir", None)
    if not library_dir:
        raise ConfigError("method.mode=few_shot needs method.library_dir=PATH (exported rewards)")
    kind = str(getattr(cfg, "similarity", "auto"))
    if kind not in SIMILARITIES:
        raise ConfigError(f"method.similarity={kind!r} is not one of {SIMILARITIES}")
    entries = load_library(library_dir)
    k = int(cfg.few_shot_k)
    model = str(getattr(cfg, "embedding_model", "text-embedding-3-small"))
    embed = server_embedder(llm, model) if kind != "tokens" else None
    if kind == "embeddings" and embed is None:
        raise ConfigError("method.similarity=embeddings needs an OpenAI-compatible server "
                          "(llm.base_url or OPENAI_API_KEY); use method.similarity=tokens")
    if embed is not None:
        import openai

        try:
            return nearest(entries, task, k, embed)
        except (openai.OpenAIError, ValueError, TypeError) as e:
            if kind == "embeddings":
                raise ConfigError(f"method.similarity=embeddings: the server's embeddings "
                                  f"endpoint failed ({type(e).__name__}: {e}); check "
                                  f"method.embedding_model={model} or use "
                                  "method.similarity=tokens") from e
            log.info("few-shot: no embeddings from the server (%s); using token overlap",
                     type(e).__name__)
    return nearest(entries, task, k)


def env_abstraction(task: TaskSpec) -> str:
    """The ``Env`` class of the prompt: bodies and the meaning of each action entry.

    Read from the MuJoCo model (names, control ranges, gears) so it cannot drift from the env.
    """
    env = task.make_env()
    try:
        model = env.unwrapped.model  # type: ignore[attr-defined]
        bodies = [name for i in range(1, model.nbody) if (name := model.body(i).name)]
        actions = []
        for i in range(model.nu):
            actuator = model.actuator(i)
            low, high = (float(v) for v in actuator.ctrlrange)
            gear = float(actuator.gear[0])
            joint = model.joint(int(model.actuator_trnid[i, 0])).name
            actions.append(f"action[{i}]: {actuator.name or joint} (force or torque = {gear:g} * action, "
                           f"action in [{low:g}, {high:g}])")
    finally:
        env.close()
    summary = f"{task.env_id} (MuJoCo). {task.description.split('. ')[0].rstrip('.')}."
    lines = [
        "class Env:",
        *textwrap.wrap(summary, 96, initial_indent='    """', subsequent_indent="    "),
        "",
        *textwrap.wrap(f"Bodies: {', '.join(bodies)}.", 96, initial_indent="    ",
                       subsequent_indent="        "),
        "    Actions (motor commands, one per actuated joint):",
        *(f"        {a}" for a in actions),
        '    """',
    ]
    return "\n".join(lines)


class Text2RewardMethod(EurekaMethod):
    """Text2Reward's prompts (zero- or few-shot), its refinement rounds and answer parsing.

    Args:
        llm: the ``llm`` config, for few-shot similarity through the server's embeddings.
    """

    name = "text2reward"
    entry = "compute_reward"
    reward_kind = "program"
    uses_llm = True  # make_method passes the llm config (few-shot similarity by embeddings)

    def __init__(self, cfg: Text2RewardMethodConfig, task: TaskSpec, info: TaskPromptInfo,
                 llm: Any = None) -> None:
        mode = str(getattr(cfg, "mode", "zero_shot"))
        if mode not in MODES:
            raise ConfigError(f"method.mode={mode!r} is not one of {MODES}")
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir
        self.env_source = env_abstraction(task)
        self.examples: list[LibraryEntry] = []
        if mode == "few_shot":
            self.examples = few_shot_examples(cfg, task, llm)
        # What was said about each round (the feedback text given when the next prompt was
        # made), kept so every later prompt repeats it. A resumed run starts without the words
        # said before the restart; the metrics of those rounds are rebuilt from the history.
        self.said: dict[int, str] = {}

    def _task_prompt(self, failures: str, **extra: Any) -> str:
        examples = [
            {"task": e.task, "description": e.description or e.task, "source": e.source[:_EXAMPLE_CHARS]}
            for e in self.examples
        ]
        return super()._task_prompt(failures, env_source=self.env_source, examples=examples,
                                    **extra)

    def _round(self, generation: Sequence[CandidateRecord], eval_freq: int,
               show_score: bool = True) -> tuple[CandidateRecord, str] | None:
        """A generation's reward (its best trained one, else the first with code) and what
        training showed of it; None when no answer of the generation held code."""
        record = best_record([generation])
        if record is not None:
            doc = self.task.fitness.doc or "higher is better"
            return record, reward_reflection(record, doc, eval_freq, show_score=show_score)
        record = next((r for r in generation if r.source), None)
        if record is None:
            return None
        return record, f"This reward function did not train:\n{failure_line(record)}"

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int, *, context: str = "iteration",
                 preference: str | None = None, show_score: bool = True) -> list[dict[str, Any]]:
        """The next prompt: the task, then every earlier round as the paper keeps it (the
        reward as the assistant's turn; what training showed and the feedback on it as the
        user's). ``human`` (cut to half of ``method.max_feedback_chars``) and ``preference``
        are the feedback on the latest round. ``context`` has no say: every round is shown."""
        limit = self.cfg.max_feedback_chars
        system = {"role": "system", "content": render(self.prompt_dir, "system")}
        if history:
            said = "\n\n".join(t for t in ((human or "")[: limit // 2], preference or "") if t)
            self.said[len(history) - 1] = said
        turns: list[dict[str, Any]] = []
        for g, generation in enumerate(history):
            shown = self._round(generation, eval_freq, show_score)
            if shown is None:
                continue
            record, seen = shown
            others = [r for r in generation if r is not record]
            feedback = render(self.prompt_dir, "feedback", reflection=seen,
                              failures=failure_summary(others, limit_chars=limit // 2),
                              human=self.said.get(g, ""))
            turns += [
                {"role": "assistant", "content": record.response or f"```python\n{record.source}\n```"},
                {"role": "user", "content": feedback},
            ]
        if not turns:
            last = history[-1] if history else []
            failures = failure_summary(last, limit_chars=limit // 2) if last else ""
            return _clean([system, {"role": "user", "content": self._task_prompt(failures)}])
        return _clean([system, {"role": "user", "content": self._task_prompt("")}, *turns])
