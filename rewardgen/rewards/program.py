"""Load a checked reward program into a callable, with restricted builtins.

Only call this inside an isolated worker: it executes generated code.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.validate import ALLOWED_MODULES, FORBIDDEN_ATTRIBUTES, check_source

MAX_COMPONENTS = 64  # more named components than this is a flood, not a reward decomposition
MAX_COMPONENT_NAME = 100
# The only submodules reward code sees; the rest of numpy (ma, lib, testing, ...) holds modules
# such as builtins and operator one attribute away.
VIEW_SUBMODULES = ("linalg", "random", "fft", "polynomial", "emath")

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance",
    "len", "list", "map", "max", "min", "pow", "range", "reversed", "round", "sorted", "sum",
    "tuple", "zip", "str", "set", "frozenset", "divmod", "slice", "complex", "True", "False",
    "None", "ValueError", "ZeroDivisionError", "ArithmeticError", "Exception", "TypeError",
    "IndexError", "KeyError", "FloatingPointError", "OverflowError",
)


def _public_view(module: types.ModuleType, name: str, views: dict[str, types.ModuleType]) -> None:
    """Add to ``views`` a copy of ``module`` holding only its public, allowed attributes.

    Reward code gets these copies instead of the real modules: submodules outside
    VIEW_SUBMODULES and names the static check forbids are simply absent (layer 1 is a name
    list; this is what holds if that list misses a path), and an assignment to an attribute,
    should one get through, changes the copy, never the numpy that the trusted fitness uses.
    """
    view = types.ModuleType(f"{name} (reward program view)")  # not importable under this name
    views[name] = view
    for attr in dir(module):
        if attr.startswith("_") or attr in FORBIDDEN_ATTRIBUTES:
            continue
        try:
            value = getattr(module, attr)
        except (AttributeError, ImportError):
            continue
        if isinstance(value, types.ModuleType):
            if name == "numpy" and attr in VIEW_SUBMODULES:
                _public_view(value, f"numpy.{attr}", views)
                setattr(view, attr, views[f"numpy.{attr}"])
            continue
        setattr(view, attr, value)


def _build_views() -> dict[str, types.ModuleType]:
    import numpy.fft
    import numpy.linalg
    import numpy.polynomial
    import numpy.random  # noqa: F401 - loaded so the views can copy them

    views: dict[str, types.ModuleType] = {}
    _public_view(np, "numpy", views)
    _public_view(math, "math", views)
    return views


MODULE_VIEWS = _build_views()


def _restricted_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
    if level or name.split(".")[0] not in ALLOWED_MODULES:
        raise ImportError(f"import of {name!r} is not allowed in reward code")
    if name not in MODULE_VIEWS:
        raise ImportError(
            f"import of {name!r} is not available in reward code; use numpy, "
            f"{', '.join('numpy.' + s for s in VIEW_SUBMODULES)} or math"
        )
    # `import numpy.linalg` binds the top package; `from numpy.linalg import x` needs the module
    return MODULE_VIEWS[name if fromlist else name.split(".")[0]]


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
    numpy_view, math_view = MODULE_VIEWS["numpy"], MODULE_VIEWS["math"]
    namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, "np": numpy_view,
                                 "numpy": numpy_view, "math": math_view,
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
        clean[key] = _finite(value, f"component {key!r}")
    return total_f, clean


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: Any, what: str) -> float:
    if isinstance(value, (complex, np.complexfloating)):
        raise RewardCodeError(f"{what} is complex ({value!r}); return a real float")
    if isinstance(value, (str, bytes)):
        raise RewardCodeError(f"{what} is {type(value).__name__}, not a number")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise RewardCodeError(f"{what} is an array of shape {value.shape}; return a scalar")
        value = value.reshape(())[()]
    try:
        out = float(value)
    except (TypeError, ValueError) as e:
        raise RewardCodeError(f"{what} is {type(value).__name__}, not a number") from e
    except OverflowError as e:
        raise RewardCodeError(f"{what} is too large for a float ({e})") from e
    if not math.isfinite(out):
        raise RewardCodeError(f"{what} is not finite ({out})")
    return out
