"""Layer 2 for methods: the attribute names reward code may use on the objects it holds.

The surface (``surface.py``) hands reward code allowlisted *functions*; the arrays those return
come with all of numpy's methods, and some of them touch memory directly:
``x.resize(shape, refcheck=False)`` frees a buffer under a live view, and from that
use-after-free a program reached the real builtins. So methods get an allowlist too. The static
check (``validate.py``) refuses any attribute that is not a name of the ``np``/``math``
namespaces, a State field of the task, or a name on :data:`ALLOWED_ATTRIBUTES`: each of those
returns a new array, a view, a number or a plain container, and none writes into, reallocates,
reinterprets or serialises an array. A numpy upgrade that adds a method adds nothing here.

What is left out and why, for the names people reach for, is in :data:`REFUSED_BECAUSE`.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Collection

import numpy as np

from rewardgen.sandbox.surface import (
    NUMERIC_DTYPE_NAMES,
    UFUNC_METHODS,
    allowed_names,
    is_numeric_dtype_string,
)

# fmt: off
# reviewed against numpy 2.x's ndarray: pure methods (a new array, a read-only-respecting view or
# a number); `out=` writes only into an array the program built, with numpy's shape checks
ARRAY_METHODS = (
    "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "conjugate", "copy",
    "cumprod", "cumsum", "diagonal", "dot", "flatten", "item", "max", "mean", "min", "nonzero",
    "prod", "ravel", "repeat", "reshape", "round", "searchsorted", "squeeze", "std", "sum",
    "swapaxes", "take", "tolist", "trace", "transpose", "var",
)
ARRAY_ATTRIBUTES = ("shape", "ndim", "size", "dtype", "T", "real", "imag")
# np.finfo(np.float32).eps, x.dtype.kind, and the named results of np.linalg (eigh(a).eigenvalues)
INFO_ATTRIBUTES = (
    "eps", "tiny", "resolution", "smallest_normal", "bits", "kind", "itemsize",
    "eigenvalues", "eigenvectors", "U", "S", "Vh", "Q", "R", "sign", "logabsdet",
)
# Python's own containers and numbers: read, build and grow, nothing that reaches the interpreter
# (list.sort is left out because ndarray.sort has the same name: use sorted() or np.sort)
PYTHON_METHODS = (
    "items", "keys", "values", "get", "update", "setdefault", "pop", "append", "extend",
    "insert", "index", "count", "reverse", "add", "union", "intersection", "difference",
    "join", "format", "lower", "upper", "startswith", "endswith", "replace", "strip", "split",
    "is_integer", "bit_length",
)
REFUSED_BECAUSE = {
    "resize": "it reallocates the array's memory under live views; use np.resize(x, shape)",
    "sort": "it sorts in place; use np.sort(x) or sorted(x)",
    "partition": "it reorders in place; use np.sort(x)",
    "argpartition": "use np.argsort(x)",
    "fill": "it writes in place; use np.full_like(x, value)",
    "put": "it writes in place; use np.where or build a new array",
    "itemset": "it writes in place; build a new array",
    "setfield": "it writes raw bytes into the array",
    "getfield": "it reinterprets the array's raw bytes",
    "setflags": "it changes the array's write protection",
    "byteswap": "it rewrites the array's bytes in place",
    "view": "it reinterprets the array's raw bytes; use astype",
    "flat": "it writes through an iterator; use ravel()",
    "ctypes": "it exposes the array's memory address",
    "data": "it exposes the array's raw memory",
    "base": "it reaches the memory an array was built over",
    "tofile": "it writes a file",
    "dump": "it pickles to a file",
    "dumps": "it pickles the array",
    "tobytes": "it serialises raw memory; use tolist()",
}
# array methods with a dtype parameter -> its position (x.sum(axis, dtype)); numpy's functions
# of the same names are checked at run time by the surface
DTYPE_METHODS = {
    "astype": 0, "sum": 1, "mean": 1, "prod": 1, "cumsum": 1, "cumprod": 1, "std": 1, "var": 1,
    "trace": 3,
}
# fmt: on
ALLOWED_ATTRIBUTES = frozenset(
    ARRAY_METHODS + ARRAY_ATTRIBUTES + INFO_ATTRIBUTES + UFUNC_METHODS + PYTHON_METHODS
)
assert not ALLOWED_ATTRIBUTES & REFUSED_BECAUSE.keys()

# every type whose instances reward code can hold: any of their attribute names is refused
# unless allowed above, so that a name is only ever a State field or an allowed method
_REACHABLE_TYPES: tuple[type, ...] = (
    np.ndarray, np.generic, np.float64, np.float32, np.int64, np.bool_, np.complex128,
    np.dtype, np.flatiter, np.ufunc, np.finfo, np.iinfo,
    list, dict, tuple, set, frozenset, str, bytes, int, float, complex, bool, slice, range,
    type, types.FunctionType, types.GeneratorType, types.BuiltinFunctionType, BaseException,
    enumerate, zip, map, filter, reversed, type({}.items()), type({}.keys()),
    type({}.values()), type(iter([])), type(iter(())), type(iter(range(0))),
)  # fmt: skip
RESERVED_NAMES = frozenset(n for t in _REACHABLE_TYPES for n in dir(t))


def is_reserved(name: str) -> bool:
    """Whether ``name`` is an attribute of an array, number or container (a State field may not
    be called that: ``state.resize`` would make ``x.resize`` pass the check)."""
    return name in RESERVED_NAMES


def attribute_refusal(name: str, state_fields: Collection[str] | None) -> str | None:
    """Why reward code may not use ``.name`` on an object that is not a namespace, or None.

    Args:
        name: the attribute (already known not to start with ``_``).
        state_fields: the task's State field names; None where the task is not known here (a
            tool checking a file): then any name that no reachable type defines passes, which is
            what a State field name is.
    """
    if name in ALLOWED_ATTRIBUTES:
        return None
    if state_fields is None:
        if name not in RESERVED_NAMES:
            return None
    elif name in state_fields and name not in RESERVED_NAMES:
        return None
    why = REFUSED_BECAUSE.get(name)
    if why:
        return f"method or attribute .{name} is not allowed in reward code: {why}"
    if name in allowed_names("numpy") or name in allowed_names("math"):
        return (
            f"attribute .{name} is not on the reward-program allowlist for arrays; call numpy and "
            f"math by their own names (np.{name}(...)), not through another variable"
        )
    methods = f"the array methods {', '.join(ARRAY_METHODS[:12])}, ..."
    if state_fields and name not in RESERVED_NAMES:
        return (
            f"attribute .{name} is not on the reward-program allowlist: it is no State field of "
            f"this task ({', '.join(state_fields)}) and no allowed method ({methods})"
        )
    return (
        f"attribute .{name} is not on the reward-program allowlist: use np.<function> or {methods}"
    )


def _is_numeric_dtype(node: ast.AST) -> bool:
    """``float``, ``np.float32``, ``x.dtype``, ``"f8"``, ``None``: a dtype numpy keeps numeric."""
    if isinstance(node, ast.Constant):
        return node.value is None or (
            isinstance(node.value, str) and is_numeric_dtype_string(node.value)
        )
    if isinstance(node, ast.Name):
        return node.id in NUMERIC_DTYPE_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in NUMERIC_DTYPE_NAMES or node.attr == "dtype"
    return False


def dtype_refusal(node: ast.Call, on_namespace: bool) -> str | None:
    """Why the dtype arguments of the call ``node`` are refused (not numeric), or None.

    Args:
        node: a call in reward code.
        on_namespace: the call is ``np.<name>(...)``, whose result the surface checks at run
            time; a method's positional dtype (``x.sum(0, object)``) is checked here.
    """
    for keyword in node.keywords:
        if keyword.arg == "dtype" and not _is_numeric_dtype(keyword.value):
            return (
                f"dtype={ast.unparse(keyword.value)[:40]} is not a numeric dtype; use float, int, "
                "bool or np.float32/np.int64/... (arrays of objects, strings or bytes are not "
                "allowed)"
            )
    func = node.func
    if not isinstance(func, ast.Attribute) or func.attr not in DTYPE_METHODS or on_namespace:
        return None
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        return f"pass the arguments of .{func.attr}() directly, without * or **"
    position = DTYPE_METHODS[func.attr]
    if len(node.args) > position and not _is_numeric_dtype(node.args[position]):
        return (
            f".{func.attr}(): {ast.unparse(node.args[position])[:40]} is not a numeric dtype; "
            "use float, int, bool or np.float32/np.int64/..."
        )
    return None
