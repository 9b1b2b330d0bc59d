"""Load a checked reward program into a callable, with restricted builtins; check its output.

The program sees ~40 safe builtins and, for ``numpy``, ``numpy.linalg`` and ``math``, the
allowlisted namespaces of ``sandbox/surface.py``, never the real modules. Only call
:func:`load_program` inside an isolated worker: it executes generated code.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.contract import (
    COMPONENT_NAME,
    MAX_COMPONENT_NAME,
    MAX_COMPONENTS,
    MAX_REWARD_MAGNITUDE,
    PROGRAM_FILENAME,
    magnitude_reason,
)
from rewardgen.sandbox.surface import (
    NAMESPACES,
    NUMERIC_KINDS,
    RewardNamespace,
    unavailable,
)
from rewardgen.sandbox.validate import check_source

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance",
    "len", "list", "map", "max", "min", "pow", "range", "reversed", "round", "sorted", "sum",
    "tuple", "zip", "str", "set", "frozenset", "divmod", "slice", "complex", "True", "False",
    "None", "ValueError", "ZeroDivisionError", "ArithmeticError", "Exception", "TypeError",
    "IndexError", "KeyError", "FloatingPointError", "OverflowError",
)  # fmt: skip


def _restricted_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> RewardNamespace | None:
    """``import`` for reward code: the allowlisted namespaces of numpy, numpy.linalg and math.

    It is also the ``__import__`` that numpy's C code meets when, called from a reward frame for
    the first time, it imports one of its own modules (``x.sum()`` imports
    ``numpy._core._methods``). CPython's ``PyImport_Import`` calls it with an empty *list*
    ``fromlist`` (the ``import`` statement gives None or a tuple) and then takes the module from
    ``sys.modules``, ignoring what is returned: so that module is imported and None returned.
    """
    if type(fromlist) is list and not fromlist and not level and name.startswith("numpy."):
        importlib.import_module(name)
        return None
    if level or name not in NAMESPACES:
        raise ImportError(
            f"import of {name!r} is not available in reward code; use {', '.join(NAMESPACES)}"
        )
    module = NAMESPACES[name]
    for attr in fromlist or ():
        if attr.startswith("_") or attr not in vars(module):
            # the namespace's own message, not Python's "cannot import name"
            raise ImportError(unavailable(module, attr))
    # `import numpy.linalg` binds the top package; `from numpy.linalg import x` needs the module
    return module if fromlist else NAMESPACES[name.split(".")[0]]


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


def load_program(
    source: str, entry: str = "compute_reward", state_fields: Collection[str] | None = None
) -> RewardProgram:
    """Check ``source`` statically (``state_fields``: see ``check_source``) and load its entry
    function with restricted builtins."""
    tree = check_source(source, entry, state_fields)
    numpy_view, math_view = NAMESPACES["numpy"], NAMESPACES["math"]
    namespace: dict[str, Any] = {
        "__builtins__": SAFE_BUILTINS,
        "np": numpy_view,
        "numpy": numpy_view,
        "math": math_view,
        "__name__": "reward_program",
    }
    try:
        exec(compile(tree, PROGRAM_FILENAME, "exec"), namespace)
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
    total_f = _finite(total, "total reward")
    if abs(total_f) > MAX_REWARD_MAGNITUDE:
        raise RewardCodeError(magnitude_reason(total_f, MAX_REWARD_MAGNITUDE))
    if not isinstance(components, dict):
        raise RewardCodeError(f"components must be a dict, got {type(components).__name__}")
    if len(components) > MAX_COMPONENTS:
        raise RewardCodeError(
            f"components has {len(components)} entries; return at most {MAX_COMPONENTS} named terms"
        )
    clean = {}
    for key, value in components.items():
        if not isinstance(key, str):
            raise RewardCodeError(f"component names must be strings, got {_short(key)}")
        if len(key) > MAX_COMPONENT_NAME:
            raise RewardCodeError(
                f"component name {_short(key)} is {len(key)} characters; keep names under "
                f"{MAX_COMPONENT_NAME}"
            )
        if not COMPONENT_NAME.fullmatch(key):
            raise RewardCodeError(
                f"component name {_short(key)} may hold only letters, digits, '_', '.' and '-'; "
                "name components like 'forward_velocity'"
            )
        clean[key] = _finite(value, f"component {key!r}")
    return total_f, clean


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: Any, what: str) -> float:
    if isinstance(value, (np.ndarray, np.generic)):
        kind = value.dtype.kind
        if kind not in NUMERIC_KINDS and kind != "c":
            raise RewardCodeError(
                f"{what} has dtype {value.dtype}; return a number (bool, int or float)"
            )
    if isinstance(value, (complex, np.complexfloating)):
        raise RewardCodeError(f"{what} is complex ({value!r}); return a real float")
    if isinstance(value, (str, bytes)):
        raise RewardCodeError(f"{what} is {type(value).__name__}, not a number")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise RewardCodeError(f"{what} is an array of shape {value.shape}; return a scalar")
        value = value.reshape(())[()]
        if isinstance(value, np.complexfloating):
            raise RewardCodeError(f"{what} is complex ({value!r}); return a real float")
    try:
        out = float(value)
    except (TypeError, ValueError) as e:
        raise RewardCodeError(f"{what} is {type(value).__name__}, not a number") from e
    except OverflowError as e:
        raise RewardCodeError(f"{what} is too large for a float ({e})") from e
    if not math.isfinite(out):
        raise RewardCodeError(f"{what} is not finite ({out})")
    return out


def check_unit_interval(value: Any, what: str, verb: str = "must be") -> float:
    """``value`` as a float in [0, 1] (a progress value), else RewardCodeError naming ``what``.

    Example:
        >>> check_unit_interval(np.float32(0.5), "progress", "must return")
        0.5
    """
    if isinstance(value, (bool, str, bytes, complex, np.complexfloating)):
        raise RewardCodeError(f"{what} {verb} a float in [0, 1], got {type(value).__name__}")
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind not in NUMERIC_KINDS:
        raise RewardCodeError(f"{what} {verb} a float in [0, 1], got dtype {value.dtype}")
    try:
        number = float(value)
    except (TypeError, ValueError) as e:
        raise RewardCodeError(f"{what} {verb} a float in [0, 1], got {type(value).__name__}") from e
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise RewardCodeError(f"{what} is {number}, outside [0, 1]")
    return number
