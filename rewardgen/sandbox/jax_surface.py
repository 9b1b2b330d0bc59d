"""The ``np`` and ``math`` a reward program sees under ``rl=brax_ppo``: jax.numpy behind the
same allowlist as :mod:`rewardgen.sandbox.surface`.

Names come from surface.py's lists (so the static check, ``validate.py``, is unchanged); those
jax.numpy lacks (``ascontiguousarray``, ``copyto``) and the functions whose result shape depends
on values (``nonzero``, ``unique``, ...: they cannot be traced) are absent, with a reason.
``math`` is rebound to jnp twins of its functions (real ``math`` needs concrete floats). Every
callable is guarded: its result must be a numeric jax array or a plain number.

Only import this inside the sandboxed trace worker or tests: it binds jax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.surface import (
    BUILD_KINDS,
    LINALG_FUNCTIONS,
    MATH_NAMES,
    NUMPY_CONSTANTS,
    NUMPY_DTYPES,
    NUMPY_FUNCTIONS,
    NUMPY_INFO,
    RewardNamespace,
)

# value-dependent output shapes: not traceable (jax needs a static size=)
UNTRACEABLE = (
    "nonzero",
    "argwhere",
    "flatnonzero",
    "unique",
    "bincount",
    "histogram",
    "select",
    "delete",
    "insert",
    "resize",
    "isscalar",
)
ABSENT_UNDER_JAX = {
    **{
        n: "its result's shape depends on the values, which cannot be compiled; use np.where"
        for n in UNTRACEABLE
    },
    "ascontiguousarray": "jax arrays have no memory layout to choose; use np.asarray",
    "copyto": "jax arrays are immutable; build a new array with np.where",
}
_MATH_CONSTANTS = {"pi": np.pi, "e": np.e, "inf": np.inf, "nan": np.nan, "tau": 2 * np.pi}
# math names whose jnp twin has another name
_MATH_ALIASES = {
    "fabs": "abs",
    "pow": "power",
    "atan2": "arctan2",
    "acos": "arccos",
    "asin": "arcsin",
    "atan": "arctan",
    "acosh": "arccosh",
    "asinh": "arcsinh",
    "atanh": "arctanh",
    "isclose": "isclose",
    "remainder": "remainder",
    "fmod": "fmod",
    "copysign": "copysign",
    "hypot": "hypot",
    "ldexp": "ldexp",
    "degrees": "degrees",
    "radians": "radians",
    "trunc": "trunc",
}


def _numeric(out: Any, what: str, depth: int = 0) -> Any:
    if isinstance(out, (jax.Array, np.ndarray, np.generic)):
        if np.dtype(out.dtype).kind not in BUILD_KINDS:
            raise RewardCodeError(
                f"{what} produced dtype {out.dtype}; reward programs may only build numeric arrays"
            )
    elif isinstance(out, (tuple, list)) and depth < 2:
        for item in out:
            _numeric(item, what, depth + 1)
    elif not isinstance(out, (int, float, complex, np.finfo, jnp.finfo)) and out is not None:
        raise RewardCodeError(f"{what} returned a {type(out).__name__}, not a numeric result")
    return out


def guard(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``fn`` whose result must be numeric (jax arrays included)."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return _numeric(fn(*args, **kwargs), what)

    guarded.__name__ = guarded.__qualname__ = what.rsplit(".", 1)[-1]
    return guarded


class _JaxArrayTypeMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, (jax.Array, np.ndarray))

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise RewardCodeError(
            "np.ndarray(...) is not available to reward programs; build "
            "arrays with np.array, np.zeros or np.full"
        )


class ndarray(metaclass=_JaxArrayTypeMeta):  # noqa: N801 - stands in for np.ndarray
    """``isinstance(x, np.ndarray)`` holds for traced arrays too."""


def _members(module: Any, names: Iterable[str], label: str) -> dict[str, Any]:
    return {
        n: guard(getattr(module, n), f"{label}.{n}")
        for n in names
        if n not in ABSENT_UNDER_JAX and hasattr(module, n)
    }


class _Namespace(RewardNamespace):
    """A RewardNamespace whose missing names say why they are absent under JAX."""

    def __getattr__(self, name: str) -> Any:
        why = ABSENT_UNDER_JAX.get(name)
        if why:
            raise AttributeError(
                f"np.{name} is not available to reward programs under rl=brax_ppo: {why}"
            )
        return super().__getattr__(name)


def _build() -> dict[str, RewardNamespace]:
    linalg = _Namespace("np.linalg", _members(jnp.linalg, LINALG_FUNCTIONS, "np.linalg"))
    members = _members(jnp, NUMPY_FUNCTIONS, "np")
    members.update({n: getattr(jnp, n) for n in NUMPY_INFO if hasattr(jnp, n)})
    for name in (*NUMPY_DTYPES, *NUMPY_CONSTANTS):
        if hasattr(jnp, name):
            members[name] = getattr(jnp, name)
    members.update(ndarray=ndarray, linalg=linalg)
    numpy_view = _Namespace("np", members)
    math_members: dict[str, Any] = {}
    for name in MATH_NAMES:
        if name in _MATH_CONSTANTS:
            math_members[name] = _MATH_CONSTANTS[name]
        elif hasattr(jnp, _MATH_ALIASES.get(name, name)):
            twin = getattr(jnp, _MATH_ALIASES.get(name, name))
            math_members[name] = guard(twin, f"math.{name}")
    math_view = RewardNamespace("math", math_members)
    return {"numpy": numpy_view, "numpy.linalg": linalg, "math": math_view}


JAX_NAMESPACES = _build()

__all__ = ["ABSENT_UNDER_JAX", "JAX_NAMESPACES", "guard", "ndarray"]
