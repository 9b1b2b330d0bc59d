"""OpenAI-compatible chat completions: n samples, fill-up, retries, cache and cost accounting.

Works against api.openai.com and any server speaking the same API (vLLM, llama.cpp, Ollama,
LM Studio): many local servers ignore ``n`` and return one choice, so the missing samples are
fetched with parallel single requests. Transient failures (429, 5xx, timeouts, refused
connections) are retried with exponential backoff; configuration mistakes (400, 401, 404) fail at
once with a message naming the setting to fix. The API key is never logged, cached or written.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import openai
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError, LLMError
from rewardgen.llm.base import Completion, Message, ProposalContext, Usage
from rewardgen.llm.cache import ResponseCache
from rewardgen.sandbox.contract import clean_text

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers accept any key, but the SDK insists on one
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_ADAPTABLE_PARAMS = ("max_tokens", "temperature", "seed")


def resolve_endpoint(cfg: LLMConfig) -> tuple[str | None, str | None]:
    """``(base_url, api_key)`` from the config, else $OPENAI_BASE_URL / $OPENAI_API_KEY."""
    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = cfg.api_key or os.environ.get("OPENAI_API_KEY") or None
    return base_url, api_key


def _is_transient(e: BaseException) -> bool:
    if isinstance(e, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(e, openai.APIStatusError):
        return e.status_code >= 500 or e.status_code in _RETRYABLE_STATUS
    return False


def _retry_after_s(e: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` / ``retry-after``), if any."""
    if not isinstance(e, openai.APIStatusError):
        return None
    headers = e.response.headers
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


def clean_messages(messages: list[Message]) -> list[Message]:
    """``messages`` with every text (a string content, or the text parts of a vision message)
    through ``clean_text``: what came from workers and answers reaches the model as a person
    would read it, without tag characters, zero-widths, bidi or other format characters."""
    out: list[Message] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = clean_text(content)
        elif isinstance(content, list):
            content = [
                {**part, "text": clean_text(part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in content
            ]
        out.append({**message, "content": content})
    return out


class OpenAIProposer:
    """Reward-code answers from an OpenAI-compatible chat completions server.

    Args:
        cfg: the ``llm`` config group (model, endpoint, sampling, retries, cache, prices).
        cache: the response cache; default from ``cfg.cache`` / ``cfg.cache_dir``.

    Raises:
        ConfigError: when neither an API key nor a base URL is configured.
    """

    is_llm = True

    def __init__(self, cfg: LLMConfig, cache: ResponseCache | None = None) -> None:
        base_url, api_key = resolve_endpoint(cfg)
        if not base_url and not api_key:
            raise ConfigError(
                "llm=openai needs an API key or a server: set OPENAI_API_KEY (or llm.api_key), "
                "or llm.base_url / OPENAI_BASE_URL for a local OpenAI-compatible server"
            )
        if cfg.max_retries < 0 or cfg.timeout_s <= 0 or cfg.max_parallel < 1:
            raise ConfigError(
                f"llm.max_retries={cfg.max_retries}, llm.timeout_s={cfg.timeout_s}, "
                f"llm.max_parallel={cfg.max_parallel}: need max_retries >= 0, timeout_s > 0, "
                "max_parallel >= 1"
            )
        self.cfg = cfg
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self.name = f"openai:{cfg.model}"
        self.usage = Usage(
            price_input_per_mtok=cfg.price_input_per_mtok,
            price_output_per_mtok=cfg.price_output_per_mtok,
        )
        self.cache = (
            cache if cache is not None else (ResponseCache(cfg.cache_dir) if cfg.cache else None)
        )
        self._secret = api_key or ""
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or PLACEHOLDER_KEY,
            timeout=cfg.timeout_s,
            max_retries=0,  # tenacity retries, so backoff and messages are ours
        )
        self._lock = threading.Lock()
        self._adapted: dict[str, str | None] = {}  # param the server rejected -> replacement

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIProposer(model={self.cfg.model!r}, base_url={self.base_url!r})"

    # -- the Proposer interface -----------------------------------------------------------------

    def propose(self, messages: list[Message], n: int, ctx: ProposalContext) -> list[Completion]:
        """Sample ``n`` answers to ``messages`` (from the cache when this exact request was made).

        Fewer than ``n`` only when some fill-up requests (for a server that ignores ``n``) failed
        after their retries while others succeeded; none at all raises :class:`LLMError`.
        """
        if n < 1:
            return []
        messages = clean_messages(messages)  # the last gate before the server: nothing invisible
        key = self.cache_request(messages, n, ctx.seed)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and len(hit) >= n:
                log.info("%s: %d answers from the cache, no request sent", self.name, n)
                hit = hit[:n]
                for c in hit:
                    self.usage.add(c)
                return hit
        completions = self._sample(messages, n, ctx.seed)
        if self.cache is not None:
            self.cache.put(key, completions)
        for c in completions:
            self.usage.add(c)
        return completions

    def cache_request(self, messages: list[Message], n: int, seed: int) -> dict[str, Any]:
        """Every field that shapes the answers (the cache key); holds no secret."""
        return {
            "api": "chat.completions",
            "base_url": self.base_url,
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "n": n,
            "seed": seed,
        }

    # -- sampling -------------------------------------------------------------------------------

    def _sample(self, messages: list[Message], n: int, seed: int) -> list[Completion]:
        completions = self._request(messages, n, seed)
        missing = n - len(completions)
        if missing > 0:
            log.info(
                "%s: server at %s returned %d of %d samples; fetching %d with single requests",
                self.name,
                self.host,
                len(completions),
                n,
                missing,
            )
            seeds = [seed + len(completions) + i for i in range(missing)]
            workers = min(self.cfg.max_parallel, missing)
            failures: list[LLMError] = []
            with ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="rewardgen-llm"
            ) as pool:
                futures = [pool.submit(self._request, messages, 1, s) for s in seeds]
                for future in futures:
                    try:
                        extra = future.result()
                    except LLMError as e:
                        failures.append(e)
                        continue
                    if not extra:
                        failures.append(LLMError(
                            f"LLM server at {self.host} returned no choices for model "
                            f"{self.cfg.model!r}; check llm.model and the server's logs"
                        ))
                        continue
                    completions.extend(extra[:1])
            if failures and not completions:
                raise failures[0]
            if failures:  # keep what was paid for; the loop goes on with fewer samples
                log.warning(
                    "%s: %d of %d fill-up requests failed (%s); returning %d of %d samples",
                    self.name, len(failures), missing, failures[0], len(completions), n,
                )
        return completions[:n]

    def _params(self, messages: list[Message], n: int, seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": messages,
            "n": n,
            "temperature": self.cfg.temperature,
            "seed": seed,
        }
        if self.cfg.max_tokens is not None:
            params["max_tokens"] = self.cfg.max_tokens
        with self._lock:
            adapted = dict(self._adapted)
        for name, replacement in adapted.items():
            self._adapt(params, name, replacement)
        return params

    @staticmethod
    def _adapt(params: dict[str, Any], name: str, replacement: str | None) -> None:
        if name in params:
            value = params.pop(name)
            if replacement is not None:
                params[replacement] = value

    def _request(self, messages: list[Message], n: int, seed: int) -> list[Completion]:
        """One chat completion request, retried on transient failures."""
        params = self._params(messages, n, seed)
        attempts = self.cfg.max_retries + 1
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(self._create, params)
        except openai.APIError as e:
            if _is_transient(e):
                raise LLMError(self._transient_message(e, attempts)) from e
            raise LLMError(self._fatal_message(e)) from e
        with self._lock:
            self.usage.requests += 1
        return self._completions(response)

    def _create(self, params: dict[str, Any]) -> Any:
        """Send the request; adapt once to a server that rejects an optional parameter."""
        while True:
            try:
                return self._client.chat.completions.create(**params)
            except openai.BadRequestError as e:
                text = str(e).lower()
                if not any(w in text for w in ("unsupported", "not supported", "unrecognized")):
                    raise
                name = next((p for p in _ADAPTABLE_PARAMS if p in text and p in params), None)
                if name is None:
                    raise
                replacement = "max_completion_tokens" if name == "max_tokens" else None
                log.warning(
                    "%s: server rejects %r; %s",
                    self.name,
                    name,
                    f"sending {replacement!r} instead" if replacement else "leaving it out",
                )
                with self._lock:
                    self._adapted[name] = replacement
                self._adapt(params, name, replacement)

    def _completions(self, response: Any) -> list[Completion]:
        choices = sorted(response.choices or [], key=lambda c: c.index or 0)
        usage = response.usage
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        out = []
        k = max(1, len(choices))
        for i, choice in enumerate(choices):
            message = choice.message
            out.append(
                Completion(
                    text=(message.content if message is not None else None) or "",
                    model=response.model or self.cfg.model,
                    # split the request's tokens so the answers' shares sum to the bill
                    prompt_tokens=prompt // k + (1 if i < prompt % k else 0),
                    completion_tokens=completion // k + (1 if i < completion % k else 0),
                    finish_reason=choice.finish_reason,
                )
            )
        return out

    # -- retries and messages -------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with 10% jitter, or the server's Retry-After, capped."""
        exponential = self.cfg.backoff_initial_s * 2 ** (state.attempt_number - 1)
        exception = state.outcome.exception() if state.outcome else None
        asked = _retry_after_s(exception)
        wait = asked if asked is not None else exponential * (1 + 0.1 * random.random())
        return min(wait, self.cfg.backoff_max_s)

    def _log_retry(self, state: RetryCallState) -> None:
        exception = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: try %d/%d failed (%s); retrying in %.1fs",
            self.name,
            state.attempt_number,
            self.cfg.max_retries + 1,
            self._describe(exception),
            wait,
        )

    def _describe(self, e: BaseException | None) -> str:
        """One line, key redacted."""
        if e is None:
            return "unknown error"
        text = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:300]

    def _transient_message(self, e: openai.APIError, attempts: int) -> str:
        """After the last retry: a server that answered with an error is not "unreachable"."""
        detail = self._describe(e)
        status = getattr(e, "status_code", None)
        where = f"LLM server at {self.host}"
        if status == 429:
            return (f"{where} kept refusing with 429 (rate limit or quota) after {attempts} tries: "
                    f"{detail}; wait, check the account's quota, or lower llm.max_parallel")
        if status is not None:
            kind = "a server error" if status >= 500 else "an error"
            return (f"{where} answered HTTP {status} ({kind}) after {attempts} tries: {detail}; "
                    f"check the server's logs (model {self.cfg.model!r} loaded? out of memory?), "
                    "or raise llm.max_retries")
        return (f"{where} unreachable after {attempts} tries: {detail}; check that it is running "
                "and llm.base_url, or raise llm.max_retries / llm.timeout_s")

    def _fatal_message(self, e: openai.APIError) -> str:
        detail = self._describe(e)
        status = getattr(e, "status_code", None)
        where = f"LLM server at {self.host}"
        if status in (401, 403):
            return (
                f"{where} refused the API key ({status}): set OPENAI_API_KEY (or llm.api_key) to "
                f"a valid key. {detail}"
            )
        if status == 404:
            return (
                f"{where} does not know model {self.cfg.model!r} (404): check llm.model, and that "
                f"llm.base_url ends in /v1. {detail}"
            )
        return (
            f"{where} rejected the request ({status}): check llm.model, llm.max_tokens and "
            f"llm.temperature. {detail}"
        )
