"""A loopback OpenAI chat completions server for tests: real HTTP on 127.0.0.1, scriptable.

Usage::

    with FakeOpenAIServer() as server:
        server.script(rate_limited(retry_after=0), good_code())   # then the default answerer
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert len(server.requests) == 2

Each request to ``POST /v1/chat/completions`` pops the next :class:`Reply` from the script queue;
with the queue empty, the default answerer writes ``n`` good reward programs. Every request is
recorded (path, headers, JSON body). To extend it (image messages, other endpoints), add a route
to ``FakeOpenAIServer.routes`` or a new ``Reply`` factory; the body is kept as parsed JSON, so a
``content`` made of parts (text + image_url) reaches the answerer unchanged.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_CODE = """import numpy as np


def compute_reward(state, action, prev_state):
    forward = float(state.x_velocity)
    ctrl = -0.001 * float(np.sum(np.square(action)))
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
"""

BROKEN_CODE = """def compute_reward(state, action, prev_state)
    return state.x_velocity, {"forward": state.x_velocity
"""


def markdown(code: str, prose: str = "Here is a reward function.") -> str:
    return f"{prose}\n\n```python\n{code}```\n\nIt rewards forward motion."


Answerer = Callable[[dict[str, Any], int], str]


def default_answerer(body: dict[str, Any], index: int) -> str:
    """A good program per choice, tagged with its index so samples differ."""
    return markdown(GOOD_CODE, prose=f"Sample {index}: a reward for forward motion.")


def image_urls(body: dict[str, Any]) -> list[str]:
    """The ``image_url`` parts of every message of a request, in order."""
    urls = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            urls += [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
    return urls


_VERDICT = re.compile(r"\[verdict (-1|0|1)\]")


def is_preference_request(body: dict[str, Any]) -> bool:
    """A request of the two-stage pair questions: images (stage 1), or a text-only stage 2
    summarising an analysis that :func:`preference_answerer` wrote."""
    return bool(image_urls(body)) or bool(_VERDICT.search(json.dumps(body.get("messages"))))


def preference_answerer(judge: Callable[[Any, Any], int | None]) -> Answerer:
    """Answer RL-VLM-F's two-stage pair questions with ``judge``'s label.

    Stage 1 (one message carrying two images) gets an analysis that states the verdict of
    ``judge(frame_1, frame_2)`` (None means no preference) as ``[verdict N]``; stage 2 gets the
    bare label ``0``, ``1`` or ``-1``: read back from that analysis when the request is text-only
    (RL-VLM-F's summary query), or judged again from the images when it continues the image chat.
    Frames are decoded from the data URLs as uint8 arrays.
    """
    from rewardgen.llm.vision import decode_data_url

    def answer(body: dict[str, Any], index: int) -> str:
        urls = image_urls(body)
        if not urls:
            text = " ".join(str(m.get("content")) for m in body.get("messages") or [])
            found = _VERDICT.findall(text)
            return found[-1] if found else "I see no analysis to summarise."
        if len(urls) != 2:
            return "I need exactly two images."
        first, second = (decode_data_url(u) for u in urls)
        label = "-1" if (verdict := judge(first, second)) is None else str(verdict)
        if len(body.get("messages") or []) == 1:
            return (f"Image 1 has mean brightness {first.mean():.1f}, Image 2 {second.mean():.1f}. "
                    f"They differ in how far the goal is achieved. [verdict {label}]")
        return label

    return answer


@dataclass
class Reply:
    """One scripted behaviour of the server for one request.

    Attributes:
        status: HTTP status; anything but 200 sends an OpenAI-style error body.
        contents: the choices' message contents (None entries: ``content: null``); None: ask the
            answerer for ``n`` of them.
        n: how many choices to send when ``contents`` is None (None: as many as requested).
        delay_s: sleep before answering (to provoke client timeouts).
        headers: extra response headers (``Retry-After``).
        finish_reason: of every choice (``length`` for a truncated answer).
        error: message of the error body.
        body: a raw JSON body sent as is (overrides everything else).
    """

    status: int = 200
    contents: list[str | None] | None = None
    n: int | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    error: str = "scripted error"
    body: dict[str, Any] | None = None


def good_code(code: str = GOOD_CODE) -> Reply:
    return Reply(contents=[markdown(code)])


def broken_code() -> Reply:
    return Reply(contents=[markdown(BROKEN_CODE)])


def no_code() -> Reply:
    return Reply(contents=["I would reward forward velocity and penalise falling over."])


def rate_limited(retry_after: float = 0.0) -> Reply:
    return Reply(status=429, headers={"Retry-After": str(retry_after)}, error="Rate limit reached")


def server_error(status: int = 500) -> Reply:
    return Reply(status=status, error="The server had an error")


def client_error(status: int, error: str = "scripted client error") -> Reply:
    return Reply(status=status, error=error)


def slow(delay_s: float) -> Reply:
    return Reply(delay_s=delay_s)


def truncated() -> Reply:
    """Cut off mid-expression, as when ``max_tokens`` runs out."""
    text = markdown(GOOD_CODE)
    return Reply(
        contents=[text[: text.index("np.square(") + len("np.square(")]], finish_reason="length"
    )


def empty_content(null: bool = False) -> Reply:
    return Reply(contents=[None if null else ""])


def ignore_n() -> Reply:
    """Answer a single choice whatever ``n`` was asked (as many local servers do)."""
    return Reply(n=1)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.monotonic)


class FakeOpenAIServer:
    """The server; a context manager that serves on an ephemeral port in a daemon thread.

    Attributes:
        requests: every request received, in order (thread-safe appends).
        answerer: writes the content of choice ``index`` when the script has none.
        model: echoed in responses when the request names none.
    """

    def __init__(
        self, answerer: Answerer = default_answerer, tokens: tuple[int, int] = (100, 50)
    ) -> None:
        self.answerer = answerer
        self.prompt_tokens, self.completion_tokens_per_choice = tokens
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counter = 0
        self.routes: dict[
            tuple[str, str], Callable[[RecordedRequest], tuple[int, dict[str, str], Any]]
        ] = {
            ("POST", "/v1/chat/completions"): self._chat_completions,
            ("GET", "/v1/models"): lambda _r: (200, {}, {"object": "list", "data": []}),
            ("POST", "/v1/embeddings"): self._embeddings,
        }
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> FakeOpenAIServer:
        """Queue behaviours for the next requests (one each, in order)."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = RecordedRequest(self.command, self.path.split("?")[0], headers, body)
                with server._lock:
                    server.requests.append(record)
                route = server.routes.get((record.method, record.path))
                if route is None:
                    status, headers, payload = 404, {}, _error_body(f"no route {record.path}", 404)
                else:
                    status, headers, payload = route(record)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a slow reply

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the chat completions route -------------------------------------------------------------

    def _chat_completions(self, record: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            reply = self._queue.popleft() if self._queue else Reply()
            self._counter += 1
            number = self._counter
        if reply.delay_s:
            self._stop.wait(reply.delay_s)
        if reply.body is not None:
            return reply.status, reply.headers, reply.body
        if reply.status != 200:
            return reply.status, reply.headers, _error_body(reply.error, reply.status)
        body = record.body if isinstance(record.body, dict) else {}
        asked = int(body.get("n") or 1)
        if reply.contents is not None:
            contents = list(reply.contents)
        else:
            count = reply.n if reply.n is not None else asked
            contents = [self.answerer(body, i) for i in range(count)]
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": content},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
            for i, content in enumerate(contents)
        ]
        completion_tokens = self.completion_tokens_per_choice * len(choices)
        payload = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": choices,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens,
            },
        }
        return 200, reply.headers, payload

    # -- the embeddings route -------------------------------------------------------------------

    def _embeddings(self, record: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        """``POST /v1/embeddings``: :func:`bag_of_words` of each input (remove the route from
        ``routes`` to play a server without embeddings: it answers 404)."""
        body = record.body if isinstance(record.body, dict) else {}
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(str(t))}
                for i, t in enumerate(texts)]
        tokens = sum(len(str(t).split()) for t in texts)
        return 200, {}, {"object": "list", "data": data, "model": body.get("model", "fake-embed"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def bag_of_words(text: str, dims: int = 256) -> list[float]:
    """A deterministic stand-in for an embedding: word counts hashed into ``dims`` buckets, so
    texts sharing words are close in cosine similarity (stable across runs: crc32, not hash)."""
    import zlib

    vector = [0.0] * dims
    for word in re.findall(r"[a-z]+", text.lower()):
        vector[zlib.crc32(word.encode()) % dims] += 1.0
    return vector


def _error_body(message: str, status: int) -> dict[str, Any]:
    kind = (
        "rate_limit_error"
        if status == 429
        else ("server_error" if status >= 500 else "invalid_request_error")
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
