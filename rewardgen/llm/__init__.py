"""Where candidate reward programs come from: a language model, the offline baseline, or files.

The loop calls :func:`make_proposer` once per run and then ``proposer.propose(messages, n, ctx)``
each generation; :func:`extract_code` cuts the program out of each answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError
from rewardgen.llm.base import Completion, Message, ProposalContext, Proposer, Usage
from rewardgen.llm.cache import ResponseCache, default_cache_dir
from rewardgen.llm.client import OpenAIProposer, resolve_endpoint
from rewardgen.llm.extract import extract_code
from rewardgen.llm.offline import OFFLINE_NAME, OfflineProposer, offline_terms
from rewardgen.llm.replay import ReplayProposer

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "openai", "offline", "replay")


def uses_offline(cfg: LLMConfig) -> bool:
    """Whether ``cfg`` gets the offline baseline: ``llm=offline``, or ``llm=auto`` with neither a
    key nor a base URL (in the config or as $OPENAI_API_KEY / $OPENAI_BASE_URL)."""
    provider = (cfg.provider or "auto").lower()
    return provider == "offline" or (provider == "auto" and resolve_endpoint(cfg) == (None, None))


def make_proposer(cfg: LLMConfig, run_dir: Path | None = None) -> Proposer:
    """Build the proposer ``cfg.provider`` names.

    ``auto`` picks an OpenAI-compatible server when a key or base URL is configured (in the config
    or as $OPENAI_API_KEY / $OPENAI_BASE_URL), and otherwise the offline baseline, loudly.

    Args:
        cfg: the ``llm`` config group.
        run_dir: the current run's directory; replay refuses to read answers from it.

    Raises:
        ConfigError: unknown provider, ``openai`` without key or base URL, ``replay`` without
            ``replay_dir``.
    """
    provider = (cfg.provider or "auto").lower()
    if provider == "auto":
        if not uses_offline(cfg):
            provider = "openai"
        else:
            log.warning(
                "NO LANGUAGE MODEL IS USED: neither OPENAI_API_KEY nor OPENAI_BASE_URL (llm.api_key, "
                "llm.base_url) is set, so rewardgen falls back to the offline baseline, which only "
                "re-weights the task's seed reward terms. To use a model, set OPENAI_API_KEY, or "
                "llm.base_url=http://HOST:PORT/v1 for a local OpenAI-compatible server."
            )
            provider = "offline"
    if provider == "openai":
        return OpenAIProposer(cfg)
    if provider == "offline":
        return OfflineProposer()
    if provider == "replay":
        if not cfg.replay_dir:
            raise ConfigError(
                "llm=replay needs llm.replay_dir: a folder for prompt/answer files, or a run "
                "directory to replay"
            )
        if run_dir is not None and Path(cfg.replay_dir).resolve() == Path(run_dir).resolve():
            raise ConfigError(
                f"llm.replay_dir={cfg.replay_dir} is this run's own directory; point it at another "
                "folder or at an earlier run"
            )
        return ReplayProposer(cfg.replay_dir, wait_s=cfg.replay_wait_s)
    raise ConfigError(
        f"unknown llm.provider {cfg.provider!r}; valid providers: {', '.join(PROVIDERS)}"
    )


__all__ = [
    "OFFLINE_NAME",
    "PROVIDERS",
    "Completion",
    "Message",
    "OfflineProposer",
    "OpenAIProposer",
    "ProposalContext",
    "Proposer",
    "ReplayProposer",
    "ResponseCache",
    "Usage",
    "default_cache_dir",
    "extract_code",
    "make_proposer",
    "offline_terms",
    "uses_offline",
]
