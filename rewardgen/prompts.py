"""Render prompt templates (prompts/<method>/*.j2) with jinja2; undefined variables are errors."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from rewardgen.errors import ConfigError
from rewardgen.resources import resource_dir


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("prompts"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(method: str, template: str, **context: Any) -> str:
    """Render ``prompts/<method>/<template>.j2``.

    Raises:
        ConfigError: when the template is missing or uses a variable not given.
    """
    name = f"{method}/{template}.j2"
    try:
        return _environment().get_template(name).render(**context).strip() + "\n"
    except jinja2.TemplateNotFound as e:
        raise ConfigError(f"prompt template {name!r} not found under {resource_dir('prompts')}") from e
    except jinja2.UndefinedError as e:
        raise ConfigError(f"prompt template {name!r}: {e.message}") from e


def estimate_tokens(text: str) -> int:
    """A cheap, tokenizer-free estimate (about 4 characters per token for English and code)."""
    return len(text) // 4 + 1
