"""Fixtures for the LLM layer: the loopback OpenAI server and a fast ``llm`` config."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.fakes` importable however pytest was started
    sys.path.insert(0, str(_ROOT))

from rewardgen.config import LLMConfig  # noqa: E402
from rewardgen.llm.base import ProposalContext  # noqa: E402
from rewardgen.tasks.spec import load_task  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402


@pytest.fixture(autouse=True)
def _no_ambient_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own OPENAI_* variables must never reach a test (or a real server)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A scriptable OpenAI chat completions server on 127.0.0.1 (see tests/fakes/openai_server.py)."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def llm_cfg(openai_server: FakeOpenAIServer, tmp_path: Path) -> Callable[..., LLMConfig]:
    """``llm_cfg(**overrides)``: an openai config aimed at the loopback server, with fast retries."""

    def make(**overrides: Any) -> LLMConfig:
        values: dict[str, Any] = {
            "provider": "openai",
            "model": "fake-model",
            "base_url": openai_server.base_url,
            "api_key": "sk-test-SECRET-0123456789",
            "timeout_s": 5.0,
            "max_retries": 3,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "cache_dir": str(tmp_path / "llm-cache"),
            "max_parallel": 4,
        }
        values.update(overrides)
        return LLMConfig(**values)

    return make


@pytest.fixture
def ctx() -> ProposalContext:
    return ProposalContext(task=load_task("hopper"), generation=0, seed=0, history=[])
