"""Secrets never reach the run directory: a key on the command line goes to the environment.

Hydra writes the command line and the composed config into ``RUN_DIR/.hydra/`` (``config.yaml``,
``hydra.yaml``, ``overrides.yaml``) before any of our code runs, and the sandbox may read the run
directory. So ``llm.api_key=KEY`` is taken off the command line before Hydra parses it and put
in the environment variable the client reads anyway (``OPENAI_API_KEY``): nothing Hydra
composes, saves, prints (``--cfg``) or names a sweep directory after ever holds it. A key in a
config *file* is refused for the same reason. A resumed run reads its saved config, which
therefore holds no key: the key comes from the environment or the resume command line again,
and a resume that needs one and has none says so in one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rewardgen.errors import ConfigError

# config key -> the environment variable its value is read from when the key is unset
SECRET_KEYS = {"llm.api_key": "OPENAI_API_KEY"}


def _secret_of(item: str) -> tuple[str, str] | None:
    """``(key, value)`` when ``item`` is a Hydra override of a secret key (``+llm.api_key=x``)."""
    key, eq, value = item.partition("=")
    key = key.strip().lstrip("+~")
    if not eq or key not in SECRET_KEYS:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def move_secrets_to_environment(
    argv: Iterable[str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """``argv`` without its secret overrides; each secret's value goes to its variable.

    Args:
        argv: command-line arguments (``sys.argv[1:]``, or a resume's overrides).
        environ: where the values go (default ``os.environ``, which the client and the
            parent's trusted subprocesses read; the sandbox's environment is an allowlist).

    Example:
        >>> env = {}
        >>> move_secrets_to_environment(["task=hopper", "llm.api_key=sk-x"], env)
        ['task=hopper']
        >>> env
        {'OPENAI_API_KEY': 'sk-x'}
    """
    environ = os.environ if environ is None else environ
    kept = []
    for item in argv:
        secret = _secret_of(item)
        if secret is None:
            kept.append(item)
        elif secret[1] and secret[1] != "null":
            environ[SECRET_KEYS[secret[0]]] = secret[1]
    return kept


def check_no_secret_in_config(cfg: DictConfig) -> None:
    """Refuse a composed config that holds a secret (set in a YAML file or a preset).

    Raises:
        ConfigError: naming the key and the environment variable to use instead.
    """
    for key, variable in SECRET_KEYS.items():
        if OmegaConf.select(cfg, key, default=None) not in (None, ""):
            raise ConfigError(
                f"{key} is set in a config file, which Hydra saves in the run directory; remove "
                f"it and set {variable} (or pass {key}=... on the command line, which rewardgen "
                "moves to the environment)"
            )


def drop_saved_secrets(cfg: DictConfig | ListConfig) -> None:
    """Remove secret keys from a run's saved config (older runs saved them): never reused."""
    for key in SECRET_KEYS:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None)
        if isinstance(node, DictConfig) and leaf in node:
            node[leaf] = None


def missing_key_line(cfg: DictConfig, events: Iterable[dict[str, Any]]) -> str | None:
    """For ``rewardgen-resume``: why the run cannot continue without a key, or None.

    A run that asked a language model through an OpenAI-compatible server with no base URL
    needs ``OPENAI_API_KEY`` again; without it ``llm=auto`` would go on with the offline
    baseline, a different proposer, in the same run.
    """
    from rewardgen.config import LLMConfig
    from rewardgen.llm.client import resolve_endpoint
    from rewardgen.llm.offline import OFFLINE_NAME

    provider = str(OmegaConf.select(cfg, "llm.provider", default="auto") or "auto").lower()
    if provider not in ("auto", "openai"):
        return None
    base_url = OmegaConf.select(cfg, "llm.base_url", default=None)
    api_key = OmegaConf.select(cfg, "llm.api_key", default=None)
    if resolve_endpoint(LLMConfig(base_url=base_url, api_key=api_key)) != (None, None):
        return None
    asked = any(
        e.get("event") == "llm_request" and e.get("proposer") not in (None, OFFLINE_NAME)
        for e in events
    )
    if provider == "auto" and not asked:
        return None
    return (
        "this run asked a language model, and its API key is never saved in the run directory: "
        "set OPENAI_API_KEY (or pass llm.api_key=KEY to rewardgen-resume), or "
        "llm.base_url=URL for a server that needs none"
    )
