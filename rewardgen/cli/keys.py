"""Which keys the config has: a mistyped key gets the closest real one, never Hydra's ``+key``.

Hydra answers ``loop.sample=4`` with "To append to your config use +loop.sample=4"; that runs
with the default ``loop.samples`` and leaves a run directory that cannot be resumed. Here every
key is checked against the dataclass schemas of ``rewardgen/config/`` (a mapping such as
``rl.hyperparams`` takes any key below it) and the error names the key meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig

from rewardgen.config import METHOD_SCHEMAS
from rewardgen.errors import ConfigError


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else Any
    return tp


def schema_keys(schema: type, method: str | None = None) -> dict[str, str]:
    """Every dotted key of a dataclass schema -> ``open`` (a mapping: anything may go below it),
    ``list`` or ``leaf``. ``method`` picks the schema of the ``method`` node
    (:data:`~rewardgen.config.METHOD_SCHEMAS`; None: the keys of any method)."""
    out: dict[str, str] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, tp = prefix + f.name, _unwrap(hints[f.name])
            if key == "method" and dataclasses.is_dataclass(tp):
                out[key] = "node"
                for schema in ([METHOD_SCHEMAS[method]] if method in METHOD_SCHEMAS
                               else METHOD_SCHEMAS.values()):
                    walk(schema, key + ".")
                continue
            if dataclasses.is_dataclass(tp):
                out[key] = "node"
                walk(tp, key + ".")  # type: ignore[arg-type]
            elif tp is Any or typing.get_origin(tp) is dict or tp is dict:
                out[key] = "open"
            elif typing.get_origin(tp) is list:
                out[key] = "list"
            else:
                out[key] = "leaf"

    walk(schema, "")
    return out


def key_error(key: str, schema: type, value: str | None = None,
              method: str | None = None) -> str | None:
    """None when ``key`` is a key of ``schema`` (or lies under an open mapping), else the error
    line: the closest real key, written as an override to paste. ``method``: the run's method
    (its own schema decides the ``method.*`` keys)."""
    keys = schema_keys(schema, method)
    parts = key.split(".")
    for i in range(1, len(parts) + 1):
        head = ".".join(parts[:i])
        kind = keys.get(head)
        if kind == "open" or (kind == "list" and i < len(parts) and parts[i].isdigit()
                              and i + 1 == len(parts)):
            return None
        if kind is None:
            break
    else:
        return None
    owners = [name for name in METHOD_SCHEMAS if name != method and key in schema_keys(schema, name)]
    if method is not None and key.startswith("method.") and owners:
        return (f"{key} is a key of method={' / method='.join(owners)}, not of method={method}; "
                f"`rewardgen method={method} --cfg job` prints this method's keys")
    close = difflib.get_close_matches(key, [k for k, v in keys.items() if v != "node"], n=1,
                                      cutoff=0.6)
    if close:
        fix = f"{close[0]}={value}" if value is not None else close[0]
        return f"{key} is not a config key; did you mean {fix}?"
    parent = ".".join(parts[:-1])
    siblings = sorted(k.rpartition(".")[2] for k in keys
                      if k.rpartition(".")[0] == parent and keys[k] != "node")
    where = f"keys of {parent}: {', '.join(siblings)}" if parent in keys else \
        "`rewardgen --cfg job` prints every key"
    return f"{key} is not a config key ({where})"


def config_method(cfg: DictConfig) -> str | None:
    """The composed config's method name (None for ``rewardgen-eval``'s config)."""
    return str(cfg.method.name) if "method" in cfg and "name" in cfg.method else None


def unknown_keys(cfg: DictConfig, schema: type) -> list[str]:
    """Dotted keys of ``cfg`` that its schema does not have (added with ``+key=value``)."""
    keys = schema_keys(schema, config_method(cfg))
    found = []

    def walk(node: Any, prefix: str) -> None:
        for name in node.keys() if isinstance(node, DictConfig) else ():
            key = prefix + str(name)
            kind = keys.get(key)
            if kind is None:
                found.append(key)
            elif kind == "node":
                walk(node._get_node(name), key + ".")

    walk(cfg, "")
    return found


def check_override_keys(overrides: Iterable[str], schema: type, groups: Iterable[str]) -> None:
    """Refuse ``key=value`` overrides (plain or ``+``) of keys the schema does not have.

    Hydra would say ``To append to your config use +loop.sample=4``; that runs with the default
    value and the run cannot be resumed. Config groups (``llm=openai``), ``hydra.*`` and
    deletions are left to Hydra.

    Raises:
        ConfigError: naming the closest real key.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise ConfigError(f"{' '.join(str(e).split())}; write overrides as key=value, e.g. "
                          "loop.samples=4") from e
    groups = set(groups)
    methods = [o for o in parsed if o.key_or_group == "method" and not o.is_delete()]
    method: str | None = "eureka"  # conf/config.yaml's default
    if methods:  # a sweep over methods: each job's composition checks its own keys
        method = None if methods[-1].is_sweep_override() else \
            methods[-1].get_value_element_as_str()
    elif any(o.key_or_group.lstrip("+") == "experiment" for o in parsed):
        method = None  # a preset may pick the method: the composed config is checked after
    for override in parsed:
        key = override.key_or_group
        if override.is_delete() or key in groups or "/" in key or key.split(".")[0] == "hydra":
            continue
        value = None if override.is_sweep_override() else override.get_value_element_as_str()
        error = key_error(key, schema, value, method if "method" in schema_keys(schema) else None)
        if error is not None:
            raise ConfigError(error)


def compose_error(e: Exception) -> ConfigError:
    """Hydra's multi-line composition error as one line (the override, then the cause)."""
    text = str(e).split("Config search path:")[0]  # Hydra's search path says nothing useful
    text = text.replace(":\n\t", ": ").replace("\n\t", ", ")  # "Available options in 'llm':"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = e.__cause__
    while cause is not None:
        lines += [line.strip() for line in str(cause).splitlines()[:1] if line.strip()]
        cause = cause.__cause__
    lines = [line for line in lines if not line.startswith(("full_key:", "object_type=",
                                                            "reference_type=", "Set the env",
                                                            "To append to your config use"))]
    unique = list(dict.fromkeys(lines))
    return ConfigError("; ".join(unique) or type(e).__name__)


__all__ = ["check_override_keys", "compose_error", "config_method", "key_error", "schema_keys",
           "unknown_keys"]
