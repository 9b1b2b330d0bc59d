"""One-line checks of single config values: each raises a ConfigError naming the key, the bad
value and a value that works (used by :mod:`rewardgen.cli.check` and the methods' own checks)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rewardgen.errors import ConfigError


def one_of(name: str, value: Any, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    if value not in valid:
        close = difflib.get_close_matches(str(value), valid, n=1)
        hint = f"did you mean {name}={close[0]}? " if close else ""
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(valid)}; {hint}"
                          f"e.g. {name}={valid[0]}")


def at_least(name: str, value: Any, low: float, hint: str = "") -> None:
    if value is None or isinstance(value, bool) or value < low:
        low_text = f"{low:g}"
        raise ConfigError(f"{name}={value} must be at least {low_text}"
                          + (f"; {hint}" if hint else ""))


def positive(name: str, value: Any, hint: str = "") -> None:
    if value is None or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name}={value} must be greater than 0" + (f"; {hint}" if hint else ""))


def optional_at_least(name: str, value: Any, low: float) -> None:
    if value is not None:
        at_least(name, value, low, f"or {name}=null")


def seeds(name: str, seeds: Any, example: str) -> None:
    if seeds is None:
        return
    if not isinstance(seeds, ListConfig | list) or len(seeds) == 0:
        raise ConfigError(f"{name}={show(seeds)} holds no seed; give at least one, e.g. "
                          f"{name}={example}")


def show(value: Any) -> str:
    if isinstance(value, DictConfig | ListConfig):
        return str(OmegaConf.to_container(value))
    return str(value)


def existing_dir(name: str, value: Any, what: str) -> None:
    if not value or not Path(str(value)).expanduser().is_dir():
        raise ConfigError(f"{name}={value} does not exist; give {what}")


__all__ = ["at_least", "existing_dir", "one_of", "optional_at_least", "positive", "seeds", "show"]
