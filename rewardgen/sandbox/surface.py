"""The numpy and math a reward program sees: an allowlist of named functions and constants.

Reward code never touches the real ``numpy`` or ``math`` module. ``import numpy`` hands it a
:class:`RewardNamespace` holding only the names listed here; everything else (test runners,
print options, the global RNG, dtype registries, ``ndarray(buffer=...)``, ``frombuffer``,
``ctypes``, ``lib``, ``ma``, ``rec``, ``char``, ``strings``, ``random``, ...) is simply absent, and
asking for it raises an ``AttributeError`` that names what is available. Listing what is allowed
instead of what is not means a numpy upgrade cannot add a door.

Every numpy callable is wrapped so that its result is checked: an array or scalar of object,
string, bytes or void dtype (the raw material of pointer forging and of string "rewards") cannot
be built through the surface. Array *methods* (``x.astype``, ``x.sum(dtype=...)``) are numpy's
own; the static check (``validate.py``) vets their dtype arguments and the output check rejects
any non-numeric result.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from rewardgen.errors import RewardCodeError

NUMERIC_KINDS = "biuf"  # bool, int, uint, float: what a reward, a component or astype may be
BUILD_KINDS = NUMERIC_KINDS + "c"  # numpy calls may also give complex (eigvals, roots)

# fmt: off
NUMPY_FUNCTIONS = (
    # creation
    "array", "asarray", "ascontiguousarray", "copy", "zeros", "ones", "full", "zeros_like",
    "ones_like", "full_like", "arange", "linspace", "logspace", "geomspace", "eye", "identity",
    "diag", "diagflat", "tri", "tril", "triu", "meshgrid", "repeat", "tile",
    # shape and joining
    "reshape", "ravel", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze",
    "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to", "broadcast_arrays", "concatenate",
    "concat", "stack", "hstack", "vstack", "dstack", "column_stack", "split", "array_split",
    "flip", "fliplr", "flipud", "roll", "rot90", "append", "insert", "delete", "pad", "resize",
    "shape", "ndim", "size", "take", "take_along_axis", "diagonal", "copyto",
    # elementwise math
    "abs", "absolute", "fabs", "sign", "signbit", "sqrt", "cbrt", "square", "exp", "exp2",
    "expm1", "log", "log2", "log10", "log1p", "logaddexp", "logaddexp2", "power", "pow",
    "float_power", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "asin", "acos",
    "atan", "atan2", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "asinh", "acosh",
    "atanh", "hypot", "deg2rad", "rad2deg", "degrees", "radians", "sinc", "add", "subtract",
    "multiply", "divide", "true_divide", "floor_divide", "mod", "fmod", "remainder", "negative",
    "positive", "reciprocal", "maximum", "minimum", "fmax", "fmin", "floor", "ceil", "trunc",
    "fix", "rint", "round", "around", "clip", "copysign", "heaviside", "ldexp", "nan_to_num",
    "interp", "unwrap",
    # comparison and logic
    "isfinite", "isnan", "isinf", "isclose", "allclose", "array_equal", "isscalar", "equal",
    "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "where", "select", "nonzero", "argwhere", "flatnonzero",
    "count_nonzero", "all", "any",
    # reductions and statistics
    "sum", "prod", "mean", "average", "median", "std", "var", "max", "min", "amax", "amin",
    "ptp", "argmax", "argmin", "cumsum", "cumprod", "cumulative_sum", "cumulative_prod", "diff",
    "gradient", "trapezoid", "percentile", "quantile", "nansum", "nanmean", "nanmedian",
    "nanstd", "nanvar", "nanmax", "nanmin", "nanargmax", "nanargmin", "nanpercentile",
    "nanquantile", "sort", "argsort", "unique", "searchsorted", "histogram", "bincount",
    "digitize", "corrcoef", "cov", "convolve", "correlate", "polyfit", "polyval",
    # linear algebra at the top level
    "dot", "vdot", "inner", "outer", "matmul", "cross", "tensordot", "kron", "einsum", "trace",
    "vecdot",
)
LINALG_FUNCTIONS = (
    "norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv", "pinv", "solve", "lstsq",
    "eig", "eigh", "eigvals", "eigvalsh", "svd", "qr", "cholesky", "matrix_rank",
    "matrix_power", "cond", "multi_dot", "cross", "outer", "trace", "diagonal", "vecdot",
)
# real numpy types: dtype names for dtype=/astype and isinstance; calling one gives a number
NUMPY_DTYPES = (
    "float16", "float32", "float64", "half", "single", "double", "longdouble", "int8", "int16",
    "int32", "int64", "intp", "uint8", "uint16", "uint32", "uint64", "uintp", "bool_", "bool",
)
NUMPY_ABSTRACT_TYPES = ("number", "integer", "signedinteger", "unsignedinteger", "floating")
NUMPY_CONSTANTS = ("pi", "e", "inf", "nan", "euler_gamma", "newaxis")
NUMPY_INFO = ("finfo", "iinfo")  # machine limits: np.finfo(np.float32).eps
UFUNC_METHODS = ("reduce", "accumulate", "outer")
MATH_NAMES = (
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "comb",
    "copysign", "cos", "cosh", "degrees", "dist", "e", "erf", "erfc", "exp", "exp2", "expm1",
    "fabs", "factorial", "floor", "fma", "fmod", "frexp", "fsum", "gamma", "gcd", "hypot", "inf",
    "isclose", "isfinite", "isinf", "isnan", "isqrt", "lcm", "ldexp", "lgamma", "log", "log10",
    "log1p", "log2", "modf", "nan", "nextafter", "perm", "pi", "pow", "prod", "radians",
    "remainder", "sin", "sinh", "sqrt", "sumprod", "tan", "tanh", "tau", "trunc", "ulp",
)
# why some names people ask for are absent on purpose (the rest: "not on the allowlist")
ABSENT_BECAUSE = {
    "random": "a reward must be a deterministic function of (state, action, prev_state)",
    "test": "it is numpy's pytest runner (it writes, reads and imports files)",
    "empty": "it returns uninitialised memory; use np.zeros",
    "empty_like": "it returns uninitialised memory; use np.zeros_like",
    "dtype": "pass a dtype name instead, e.g. dtype=np.float32 or dtype=float",
}
# the names shown first when an unknown one is asked for
COMMON = (
    "array", "asarray", "zeros", "clip", "where", "sum", "mean", "exp", "sqrt", "tanh", "abs",
    "dot", "linalg.norm",
)
# fmt: on
_PLAIN_RESULTS = frozenset(
    {float, int, bool, complex, type(None), np.float64, np.float32, np.int64, np.int32, np.bool_}
)
_PASS_THROUGH = (int, float, complex, np.finfo, np.iinfo)  # bool is an int


class RewardNamespace:
    """A read-only bag of allowed names standing in for a module (``np``, ``np.linalg``, ``math``).

    Not a module: nothing reachable from reward code is one. It has no public attribute but
    its members (``names_of`` and ``unavailable`` are functions here, not methods); a missing
    name raises an ``AttributeError`` that says what is available.
    """

    def __init__(self, label: str, members: dict[str, Any]) -> None:
        self.__dict__.update(members)
        self.__dict__["_label"] = label

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(unavailable(self, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._label} is read-only in reward programs")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._label} is read-only in reward programs")

    def __repr__(self) -> str:
        return f"<{self._label}: {len(names_of(self))} names allowed in reward programs>"


def names_of(namespace: RewardNamespace) -> list[str]:
    """The names ``namespace`` holds, sorted."""
    return sorted(n for n in vars(namespace) if not n.startswith("_"))


def unavailable(namespace: RewardNamespace, name: str) -> str:
    """Why ``name`` is not in ``namespace``, on one line."""
    return unavailable_message(vars(namespace)["_label"], name, names_of(namespace))


def unavailable_message(label: str, name: str, available: Iterable[str]) -> str:
    """One line: ``np.foo`` is not available, why if known, near names and common ones."""
    available = list(available)
    why = ABSENT_BECAUSE.get(name) if label.startswith("np") else None
    text = f"{label}.{name} is not available to reward programs"
    if why:
        return f"{text}: {why}"
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    if close:
        text += "; did you mean " + ", ".join(f"{label}.{c}" for c in close) + "?"
    shown = [c for c in COMMON if c.split(".")[0] in available][:8] if label == "np" else []
    shown = shown or available[:8]
    return f"{text} (allowed: {', '.join(shown)}, ... {len(available)} names)"


def _bad_dtype(what: str, dtype: Any) -> RewardCodeError:
    return RewardCodeError(
        f"{what} produced an array of dtype {dtype}; reward programs may only build numeric "
        "(bool, int, float) arrays"
    )


def _check_result(out: Any, what: str, depth: int = 0) -> Any:
    """``out`` if it is numeric (or a tuple/list of numeric results); raise otherwise."""
    if isinstance(out, (np.ndarray, np.generic)):
        if out.dtype.kind not in BUILD_KINDS:
            raise _bad_dtype(what, out.dtype)
    elif isinstance(out, (tuple, list)) and depth < 2:
        for item in out:
            _check_result(item, what, depth + 1)
    elif not isinstance(out, _PASS_THROUGH) and out is not None:
        raise RewardCodeError(f"{what} returned a {type(out).__name__}, not a numeric result")
    return out


def guard(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``fn`` whose result must be numeric; the check costs one type lookup in the common case."""
    plain = _PLAIN_RESULTS
    ndarray = np.ndarray
    kinds = BUILD_KINDS

    def guarded(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        cls = type(out)
        if cls is ndarray:
            if out.dtype.kind in kinds:
                return out
        elif cls in plain:
            return out
        return _check_result(out, what)

    guarded.__name__ = guarded.__qualname__ = what.rsplit(".", 1)[-1]
    guarded.__doc__ = getattr(fn, "__doc__", None)
    if isinstance(fn, np.ufunc):
        for method in UFUNC_METHODS:  # np.maximum.reduce(x), np.add.outer(a, b)
            setattr(guarded, method, guard(getattr(fn, method), f"{what}.{method}"))
    return guarded


class _ArrayTypeMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, np.ndarray)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise RewardCodeError(
            "np.ndarray(...) is not available to reward programs; build arrays with np.array, "
            "np.zeros, np.full or np.arange"
        )


class ndarray(metaclass=_ArrayTypeMeta):  # noqa: N801 - stands in for np.ndarray
    """``isinstance(x, np.ndarray)`` works; calling it (``np.ndarray(shape, buffer=...)``) does not."""


def _members(module: Any, names: Iterable[str], label: str) -> dict[str, Any]:
    """``names`` present in ``module`` (numpy versions differ), each guarded."""
    return {n: guard(getattr(module, n), f"{label}.{n}") for n in names if hasattr(module, n)}


def _build() -> dict[str, RewardNamespace]:
    linalg = RewardNamespace("np.linalg", _members(np.linalg, LINALG_FUNCTIONS, "np.linalg"))
    members = _members(np, NUMPY_FUNCTIONS, "np")
    members.update(_members(np, NUMPY_INFO, "np"))
    for name in (*NUMPY_DTYPES, *NUMPY_ABSTRACT_TYPES, *NUMPY_CONSTANTS):
        if hasattr(np, name):
            members[name] = getattr(np, name)
    members["ndarray"] = ndarray
    members["linalg"] = linalg
    numpy_view = RewardNamespace("np", members)
    math_view = RewardNamespace(
        "math", {n: getattr(math, n) for n in MATH_NAMES if hasattr(math, n)}
    )
    return {"numpy": numpy_view, "numpy.linalg": linalg, "math": math_view}


NAMESPACES = _build()
# what ``dtype=`` and ``astype`` may name: builtins and numpy's numeric types
NUMERIC_DTYPE_NAMES = frozenset(
    {"float", "int", "bool", *(n for n in NUMPY_DTYPES if hasattr(np, n))}
)


_ALLOWED = {module: frozenset(names_of(namespace)) for module, namespace in NAMESPACES.items()}


def allowed_names(module: str) -> frozenset[str]:
    """The names reward code may take from ``module`` ("numpy", "numpy.linalg" or "math")."""
    return _ALLOWED[module]


def is_numeric_dtype_string(text: str) -> bool:
    """Whether ``text`` names a bool, int, uint or float dtype ("float32", "f8", "<i4")."""
    if not 0 < len(text) <= 16 or not text.lstrip("<>=|").isalnum():
        return False
    try:
        return np.dtype(text).kind in NUMERIC_KINDS
    except (TypeError, ValueError, SyntaxError):
        return False
