"""make_proposer: provider selection and its configuration errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError
from rewardgen.llm import (
    OfflineProposer,
    OpenAIProposer,
    Proposer,
    ReplayProposer,
    make_proposer,
)
from tests.fakes.openai_server import FakeOpenAIServer


def test_auto_without_endpoint_is_offline_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    proposer = make_proposer(LLMConfig())
    assert isinstance(proposer, OfflineProposer) and isinstance(proposer, Proposer)
    assert not proposer.is_llm
    assert "NO LANGUAGE MODEL IS USED" in caplog.text and "OPENAI_API_KEY" in caplog.text


def test_auto_with_key_in_environment_is_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    proposer = make_proposer(LLMConfig(model="gpt-4o"))
    assert isinstance(proposer, OpenAIProposer) and proposer.name == "openai:gpt-4o"
    assert proposer.host == "api.openai.com"


def test_auto_with_base_url_is_openai(openai_server: FakeOpenAIServer) -> None:
    proposer = make_proposer(LLMConfig(base_url=openai_server.base_url))
    assert isinstance(proposer, OpenAIProposer) and proposer.is_llm
    assert proposer.host == openai_server.base_url.split("/")[2]


def test_openai_without_endpoint_is_an_error() -> None:
    with pytest.raises(ConfigError, match="llm=openai needs an API key or a server"):
        make_proposer(LLMConfig(provider="openai"))


def test_offline_and_replay(tmp_path: Path) -> None:
    assert isinstance(make_proposer(LLMConfig(provider="offline", api_key="sk-x")), OfflineProposer)
    replay = make_proposer(
        LLMConfig(provider="replay", replay_dir=str(tmp_path), replay_wait_s=1.5)
    )
    assert isinstance(replay, ReplayProposer) and replay.wait_s == 1.5


def test_replay_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="llm=replay needs llm.replay_dir"):
        make_proposer(LLMConfig(provider="replay"))
    with pytest.raises(ConfigError, match="this run's own directory"):
        make_proposer(LLMConfig(provider="replay", replay_dir=str(tmp_path)), run_dir=tmp_path)


def test_unknown_provider_lists_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown llm.provider 'anthropic'; valid providers: auto, openai, offline, replay",
    ):
        make_proposer(LLMConfig(provider="anthropic"))
