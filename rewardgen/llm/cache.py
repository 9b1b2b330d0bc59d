"""On-disk cache of LLM answers, keyed by the full request, shared across runs.

A rerun with the same config and seed then sends no request and pays nothing: the key is the
SHA-256 of every field that shapes the answer (model, messages, temperature, max_tokens, n, seed,
base URL), never the API key. All ``n`` samples of a request are one entry. Writes are atomic
(temporary file + ``os.replace``), so concurrent runs sharing the folder never read half an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import platformdirs

from rewardgen.llm.base import Completion
from rewardgen.runs.atomic import atomic_write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``<user cache dir>/rewardgen/llm`` (e.g. ``~/.cache/rewardgen/llm`` on Linux)."""
    return Path(platformdirs.user_cache_dir("rewardgen")) / "llm"


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the request as canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(
        request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """A folder of ``<key[:2]>/<key>.json`` entries.

    Args:
        directory: where entries live; None for :func:`default_cache_dir`.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, request: dict[str, Any]) -> list[Completion] | None:
        """The cached answers of ``request`` (marked ``cached=True``), or None on a miss.

        A corrupt or foreign entry is a miss (logged), never an error: the cache is an optimisation.
        """
        path = self.path(request_key(request))
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
            if entry.get("format") != CACHE_FORMAT:
                return None
            completions = [Completion.from_dict(c) for c in entry["completions"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("ignoring unreadable LLM cache entry %s (%s)", path, e)
            return None
        for c in completions:
            c.cached = True
        return completions

    def put(self, request: dict[str, Any], completions: list[Completion]) -> Path:
        """Store the answers of ``request`` atomically; ``request`` must not hold secrets."""
        path = self.path(request_key(request))
        entry = {
            "format": CACHE_FORMAT,
            "created": time.time(),
            "request": request,
            "completions": [{**c.to_dict(), "cached": False} for c in completions],
        }
        atomic_write_json(path, entry)
        return path
