"""VLM queries with images: which of two frames better achieves the goal (RL-VLM-F).

Frames go to any OpenAI-compatible vision chat model as ``image_url`` parts holding base64 PNG
data URLs. Each pair is asked in two stages, with RL-VLM-F's prompts (its ``prompt.py``): first
the vision model analyses both images against the goal; then a **text-only** query gives that
analysis to a language model (``summary_model``, default the same model) and asks for a single
label: ``0`` (image 1 better), ``1`` (image 2 better) or ``-1`` (no preference). Both requests use
temperature 0, as the paper does. Our earlier variant, which continued the image chat for stage 2
at the run's temperature, stays available as ``stage2="chat"`` and ``temperature=None``.
Retries, backoff and error messages are the text client's
(:class:`~rewardgen.llm.client.OpenAIProposer`); answers are cached on disk keyed by the models,
endpoint, prompts, temperature, question and the two frames' SHA-256 (never the pixels, never
the key).
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
from rewardgen.errors import ConfigError
from rewardgen.llm.base import Completion, Message, ProposalContext
from rewardgen.llm.cache import ResponseCache
from rewardgen.llm.client import OpenAIProposer
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

# RL-VLM-F's prompt.py: gpt_free_query_template (stage 1, after the two images) and
# gpt_summary_template (stage 2, text only, with the stage-1 answer in place of {analysis}).
IMAGES_PREFIX = "Consider the following two images:\nImage 1:"
SECOND_IMAGE = "Image 2:"
ANALYSIS_PROMPT = (
    "1. What is shown in Image 1?\n"
    "2. What is shown in Image 2?\n"
    "3. The goal is {question}. Is there any difference between Image 1 and Image 2 in terms of "
    "achieving the goal?"
)
SUMMARY_PROMPT = (
    "Based on the text below to the questions:\n"
    "1. What is shown in Image 1?\n"
    "2. What is shown in Image 2?\n"
    "3. The goal is {question}. Is there any difference between Image 1 and Image 2 in terms of "
    "achieving the goal?\n"
    "{analysis}\n\n"
    "Is the goal better achieved in Image 1 or Image 2?\n"
    "Reply a single line of 0 if the goal is better achieved in Image 1, or 1 if it is better "
    "achieved in Image 2.\n"
    "Reply -1 if the text is unsure or there is no difference."
)
SUMMARY_SYSTEM = "You are a helpful assistant."  # RL-VLM-F's gpt4_infer.extract_answer
# stage2="chat": the label question continues the image conversation (our earlier variant).
LABEL_PROMPT = (
    "Based on your analysis above, is the goal better achieved in Image 1 or Image 2? The goal "
    "is {question}.\nReply with a single line: 0 if the goal is better achieved in Image 1, 1 if "
    "it is better achieved in Image 2, or -1 if you are unsure or there is no difference."
)
STAGE2_MODES = ("text", "chat")
LABEL_PARSES = ("strict", "lenient")
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
    """One user message laid out as RL-VLM-F's: "Image 1:", image, "Image 2:", image, ``text``."""
    content: list[dict[str, Any]] = [
        {"type": "text", "text": IMAGES_PREFIX},
        {"type": "image_url", "image_url": {"url": image_data_url(first)}},
        {"type": "text", "text": SECOND_IMAGE},
        {"type": "image_url", "image_url": {"url": image_data_url(second)}},
        {"type": "text", "text": text},
    ]
    return {"role": "user", "content": content}


def goal_text(question: str) -> str:
    """The goal as it fills "The goal is {goal}." (a trailing full stop is dropped)."""
    return " ".join(question.split()).rstrip(".")


def parse_label(answer: str, strict: bool = False) -> int | None:
    """0 or 1 from the label answer; None for -1, or when no label can be read.

    ``strict`` reads the label as RL-VLM-F does: the answer's first line must be the number
    (``int(line)``), anything else is no preference. Lenient parsing takes the last 0/1/-1 of the
    last line, else of the whole answer.
    """
    text = answer.strip()
    if strict:
        first = text.splitlines()[0].strip() if text else ""
        try:
            value = int(first)
        except ValueError:
            log.info("VLM label answer's first line is not 0/1/-1, counted as no preference: "
                     "%r", answer[:200])
            return NO_PREFERENCE
        return value if value in (0, 1) else NO_PREFERENCE
    found = _LABEL.findall(text.splitlines()[-1] if text else "")
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
        question: the goal, phrased as RL-VLM-F's ("to open the drawer"); it fills
            "The goal is {question}."
        seed: request seed (sampling determinism where the server honours it).
        temperature: of both stages; RL-VLM-F uses 0. None: the ``llm`` group's temperature.
        stage2: ``text`` (RL-VLM-F: the analysis goes to a text-only query) or ``chat`` (the
            label question continues the image conversation).
        summary_model: the model of the text-only stage (RL-VLM-F pairs GPT-4V with GPT-4);
            None: ``cfg.model``. Same endpoint and key.
        parse: ``strict`` (RL-VLM-F: the first line is the label) or ``lenient``.

    Attributes:
        queries: pairs sent to the server (cache hits and identical pairs not counted).
        usage: token and cost accounting, shared with the text client.
    """

    def __init__(self, cfg: LLMConfig, task: TaskSpec, question: str, seed: int = 0, *,
                 temperature: float | None = 0.0, stage2: str = "text",
                 summary_model: str | None = None, parse: str = "strict") -> None:
        if stage2 not in STAGE2_MODES:
            raise ConfigError(f"method.preference.stage2={stage2!r} is not one of {STAGE2_MODES}")
        if parse not in LABEL_PARSES:
            raise ConfigError(
                f"method.preference.label_parse={parse!r} is not one of {LABEL_PARSES}")
        self.cache = ResponseCache(cfg.cache_dir) if cfg.cache else None
        temp = cfg.temperature if temperature is None else float(temperature)
        vision_cfg = dataclasses.replace(cfg, cache=False, temperature=temp)
        self.client = OpenAIProposer(vision_cfg)
        self.usage = self.client.usage
        self.summary_client = self.client
        if stage2 == "text" and summary_model and summary_model != cfg.model:
            self.summary_client = OpenAIProposer(dataclasses.replace(vision_cfg,
                                                                     model=summary_model))
            self.summary_client.usage = self.usage
        self.stage2, self.strict = stage2, parse == "strict"
        self.question = question
        self.ctx = ProposalContext(task=task, generation=0, seed=seed)
        self.queries = 0
        self._labels: dict[tuple[str, str], int | None] = {}

    def cache_request(self, first: str, second: str) -> dict[str, Any]:
        """The cache key of one pair: everything that shapes the label, pixels by digest."""
        prompts = [IMAGES_PREFIX, SECOND_IMAGE, ANALYSIS_PROMPT]
        prompts += [SUMMARY_SYSTEM, SUMMARY_PROMPT] if self.stage2 == "text" else [LABEL_PROMPT]
        return {
            "api": "vlm_preference",
            "base_url": self.client.base_url,
            "model": self.client.cfg.model,
            "summary_model": self.summary_client.cfg.model,
            "stage2": self.stage2,
            "temperature": self.client.cfg.temperature,
            "question": self.question,
            "prompts": prompts,
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
        label = parse_label(answers[1].text, strict=self.strict)
        self._labels[(da, db)] = label
        return label

    def _ask(self, first: np.ndarray, second: np.ndarray) -> list[Completion]:
        goal = goal_text(self.question)
        messages = [pair_message(ANALYSIS_PROMPT.format(question=goal), first, second)]
        analysis = self.client.propose(messages, 1, self.ctx)[0]
        if self.stage2 == "text":
            summary: list[Message] = [
                {"role": "system", "content": SUMMARY_SYSTEM},
                {"role": "user",
                 "content": SUMMARY_PROMPT.format(question=goal, analysis=analysis.text)},
            ]
            answer = self.summary_client.propose(summary, 1, self.ctx)[0]
        else:
            messages += [
                {"role": "assistant", "content": analysis.text},
                {"role": "user", "content": LABEL_PROMPT.format(question=goal)},
            ]
            answer = self.client.propose(messages, 1, self.ctx)[0]
        self.queries += 1
        return [analysis, answer]


__all__ = [
    "ANALYSIS_PROMPT",
    "LABEL_PARSES",
    "LABEL_PROMPT",
    "STAGE2_MODES",
    "SUMMARY_PROMPT",
    "VLMLabeller",
    "decode_data_url",
    "frame_digest",
    "goal_text",
    "image_data_url",
    "pair_message",
    "parse_label",
]
