"""VLM queries with images: which of two frames better achieves the goal (RL-VLM-F).

Frames go to any OpenAI-compatible vision chat model as ``image_url`` parts holding base64 PNG
data URLs. Each pair is asked in two stages, as in RL-VLM-F: first an analysis of both images
against the goal, then, given that analysis, a single label: ``0`` (image 1 better), ``1``
(image 2 better) or ``-1`` (no preference). Retries, backoff and error messages are the text
client's (:class:`~rewardgen.llm.client.OpenAIProposer`); answers are cached on disk keyed by the
model, endpoint, question and the two frames' SHA-256 (never the pixels, never the key).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import logging
import re
from typing import Any

import imageio.v3 as iio
import numpy as np

from rewardgen.config import LLMConfig
from rewardgen.llm.base import Completion, Message, ProposalContext
from rewardgen.llm.cache import ResponseCache
from rewardgen.llm.client import OpenAIProposer
from rewardgen.tasks import TaskSpec

log = logging.getLogger(__name__)

ANALYSIS_PROMPT = (
    "Consider the following two images of a simulated robot.\n"
    "1. What is shown in Image 1?\n"
    "2. What is shown in Image 2?\n"
    "3. The goal is: {question} Is there any difference between Image 1 and Image 2 in terms "
    "of achieving the goal?"
)
LABEL_PROMPT = (
    "Based on your analysis above, is the goal better achieved in Image 1 or Image 2? The goal "
    "is: {question}\nReply with a single line: 0 if the goal is better achieved in Image 1, 1 if "
    "it is better achieved in Image 2, or -1 if you are unsure or there is no difference."
)
NO_PREFERENCE = None
_LABEL = re.compile(r"(?<![\w.])(-1|0|1)(?![\w.])")


def image_data_url(frame: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of an ``(H, W, 3)`` uint8 frame."""
    buffer = io.BytesIO()
    iio.imwrite(buffer, np.asarray(frame, dtype=np.uint8), extension=".png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def decode_data_url(url: str) -> np.ndarray:
    """The frame inside an image data URL (used by the loopback server and tests)."""
    _, _, data = url.partition(",")
    return np.asarray(iio.imread(base64.b64decode(data), extension=".png"))


def frame_digest(frame: np.ndarray) -> str:
    """SHA-256 of a frame's shape and pixels: identical frames, identical digests."""
    arr = np.ascontiguousarray(frame, dtype=np.uint8)
    return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()


def pair_message(text: str, first: np.ndarray, second: np.ndarray) -> Message:
    """One user message: the text, then Image 1 and Image 2 as image parts."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for name, frame in (("Image 1:", first), ("Image 2:", second)):
        content.append({"type": "text", "text": name})
        content.append({"type": "image_url", "image_url": {"url": image_data_url(frame)}})
    return {"role": "user", "content": content}


def parse_label(answer: str) -> int | None:
    """0 or 1 from the label answer; None for -1, or when no label can be read."""
    found = _LABEL.findall(answer.strip().splitlines()[-1] if answer.strip() else "")
    if not found:
        found = _LABEL.findall(answer)
    if not found:
        log.info("VLM label answer has no 0/1/-1, counted as no preference: %r", answer[:200])
        return NO_PREFERENCE
    value = int(found[-1])
    return None if value < 0 else value


class VLMLabeller:
    """Preference labels for frame pairs from a vision chat model.

    Args:
        cfg: the ``llm`` config group (model, endpoint, retries, cache folder).
        task: the task (passed to the client's context).
        question: what the goal looks like, in one sentence.
        seed: request seed (sampling determinism where the server honours it).

    Attributes:
        queries: pairs sent to the server (cache hits and identical pairs not counted).
        usage: token and cost accounting, shared with the text client.
    """

    def __init__(self, cfg: LLMConfig, task: TaskSpec, question: str, seed: int = 0) -> None:
        self.cache = ResponseCache(cfg.cache_dir) if cfg.cache else None
        self.client = OpenAIProposer(dataclasses.replace(cfg, cache=False))
        self.usage = self.client.usage
        self.question = question
        self.ctx = ProposalContext(task=task, generation=0, seed=seed)
        self.queries = 0
        self._labels: dict[tuple[str, str], int | None] = {}

    def cache_request(self, first: str, second: str) -> dict[str, Any]:
        """The cache key of one pair: everything that shapes the label, pixels by digest."""
        return {
            "api": "vlm_preference",
            "base_url": self.client.base_url,
            "model": self.client.cfg.model,
            "temperature": self.client.cfg.temperature,
            "question": self.question,
            "prompts": [ANALYSIS_PROMPT, LABEL_PROMPT],
            "images": [first, second],
            "seed": self.ctx.seed,
        }

    def label(self, first: np.ndarray, second: np.ndarray) -> int | None:
        """0 if ``first`` better achieves the goal, 1 if ``second`` does, None for no preference.

        Identical frames are never sent (None). Raises LLMError when the server fails for good.
        """
        da, db = frame_digest(first), frame_digest(second)
        if da == db:
            return NO_PREFERENCE
        if (da, db) in self._labels:
            return self._labels[(da, db)]
        request = self.cache_request(da, db)
        answers = self.cache.get(request) if self.cache is not None else None
        if answers is None or len(answers) < 2:
            answers = self._ask(first, second)
            if self.cache is not None:
                self.cache.put(request, answers)
        label = parse_label(answers[1].text)
        self._labels[(da, db)] = label
        return label

    def _ask(self, first: np.ndarray, second: np.ndarray) -> list[Completion]:
        question = self.question
        messages = [pair_message(ANALYSIS_PROMPT.format(question=question), first, second)]
        analysis = self.client.propose(messages, 1, self.ctx)[0]
        messages += [
            {"role": "assistant", "content": analysis.text},
            {"role": "user", "content": LABEL_PROMPT.format(question=question)},
        ]
        answer = self.client.propose(messages, 1, self.ctx)[0]
        self.queries += 1
        return [analysis, answer]


__all__ = [
    "ANALYSIS_PROMPT",
    "LABEL_PROMPT",
    "VLMLabeller",
    "decode_data_url",
    "frame_digest",
    "image_data_url",
    "pair_message",
    "parse_label",
]
