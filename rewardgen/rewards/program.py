"""Load a checked reward program into a callable, with restricted builtins.

Only call this inside an isolated worker: it executes generated code.
"""

from __future__ import annotations

import builtins
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.validate import ALLOWED_MODULES, check_source

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance",
    "len", "list", "map", "max", "min", "pow", "range", "reversed", "round", "sorted", "sum",
    "tuple", "zip", "str", "set", "frozenset", "divmod", "slice", "complex", "True", "False",
    "None", "ValueError", "ZeroDivisionError", "ArithmeticError", "Exception", "TypeError",
    "IndexError", "KeyError", "FloatingPointError", "OverflowError",
)


def _restricted_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
    if level or name.split(".")[0] not in ALLOWED_MODULES:
        raise ImportError(f"import of {name!r} is not allowed in reward code")
    return builtins.__import__(name, globals, locals, fromlist, level)


SAFE_BUILTINS: dict[str, Any] = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES}
SAFE_BUILTINS["__import__"] = _restricted_import


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


@dataclass(frozen=True)
class RewardProgram:
    """A checked, loaded reward program.

    Attributes:
        source: the program text.
        entry: the function called (``compute_reward`` or ``progress``).
        fn: the loaded function.
    """

    source: str
    entry: str
    fn: Callable[..., Any]

    @property
    def sha256(self) -> str:
        return source_sha256(self.source)


def load_program(source: str, entry: str = "compute_reward") -> RewardProgram:
    """Check ``source`` statically and load its entry function with restricted builtins."""
    tree = check_source(source, entry)
    namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, "np": np, "numpy": np, "math": math,
                                 "__name__": "reward_program"}
    try:
        exec(compile(tree, "<reward program>", "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - any failure of generated code is a result
        raise RewardCodeError(f"defining the program failed: {type(e).__name__}: {e}") from e
    fn = namespace.get(entry)
    if not callable(fn):
        raise RewardCodeError(f"{entry!r} is not a function")
    return RewardProgram(source=source, entry=entry, fn=fn)


def check_reward_output(out: Any) -> tuple[float, dict[str, float]]:
    """Validate ``compute_reward``'s return value: a finite float and a dict of finite floats."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise RewardCodeError(
            f"compute_reward must return (total, components), got {type(out).__name__}"
        )
    total, components = out
    try:
        total_f = _finite(total, "total reward")
    except RewardCodeError:
        raise
    if not isinstance(components, dict):
        raise RewardCodeError(f"components must be a dict, got {type(components).__name__}")
    clean = {}
    for key, value in components.items():
        if not isinstance(key, str):
            raise RewardCodeError(f"component names must be strings, got {key!r}")
        clean[key] = _finite(value, f"component {key!r}")
    return total_f, clean


def _finite(value: Any, what: str) -> float:
    if isinstance(value, (complex, np.complexfloating)):
        raise RewardCodeError(f"{what} is complex ({value!r}); return a real float")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise RewardCodeError(f"{what} is an array of shape {value.shape}; return a scalar")
        value = value.reshape(())[()]
    try:
        out = float(value)
    except (TypeError, ValueError) as e:
        raise RewardCodeError(f"{what} is {type(value).__name__}, not a number") from e
    if not math.isfinite(out):
        raise RewardCodeError(f"{what} is not finite ({out})")
    return out
