"""ResponseCache: keys, round trip, atomicity and corrupt entries."""

from __future__ import annotations

from pathlib import Path

from rewardgen.llm.base import Completion
from rewardgen.llm.cache import ResponseCache, default_cache_dir, request_key

REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2, "seed": 0}


def test_round_trip_marks_answers_cached(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    assert cache.get(REQUEST) is None
    answers = [Completion("a", "m", 5, 7, finish_reason="stop"), Completion("b", "m", 5, 8)]
    path = cache.put(REQUEST, answers)
    assert path.parent.parent == tmp_path and path.name == f"{request_key(REQUEST)}.json"
    hit = cache.get(REQUEST)
    assert hit is not None
    assert [(c.text, c.prompt_tokens, c.completion_tokens, c.cached) for c in hit] == [
        ("a", 5, 7, True),
        ("b", 5, 8, True),
    ]
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_key_covers_every_field_and_ignores_key_order() -> None:
    assert request_key(REQUEST) == request_key(dict(reversed(list(REQUEST.items()))))
    for field, value in [("model", "m2"), ("n", 3), ("seed", 1), ("messages", [])]:
        assert request_key({**REQUEST, field: value}) != request_key(REQUEST)


def test_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    path = cache.put(REQUEST, [Completion("a", "m")])
    path.write_text("{not json")
    assert cache.get(REQUEST) is None


def test_default_directory_is_the_users_cache() -> None:
    assert ResponseCache().directory == default_cache_dir()
    assert default_cache_dir().parts[-2:] == ("rewardgen", "llm")
