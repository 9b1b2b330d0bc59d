"""The State view's source grammar: parse a field's source, resolve it against a MuJoCo model.

Each source (``qpos[rootz]``, ``xpos[torso][2]``, ``upright(xquat[torso])``, ``env.goal``, ...;
see :mod:`rewardgen.tasks.state`) is resolved once to fixed positions in MuJoCo's flat data
buffers and becomes one expression over them; :class:`rewardgen.tasks.state.StateBuilder` reads
all fields with one generated function. Only integers resolved here and names from the fixed
grammar ever reach that generated code. Export vendors this module next to ``state.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardgen.errors import TaskError

Getter = Callable[[Any], Any]

_BODY_ARRAYS = {"xpos", "xquat", "xmat", "xipos", "cvel", "cfrc_ext", "subtree_com", "cacc"}
_SITE_ARRAYS = {"site_xpos", "site_xmat"}
_JOINT_ARRAYS = {"qpos", "qvel", "qacc", "qfrc_actuator"}
_PLAIN_ARRAYS = {"ctrl", "act", "sensordata", "actuator_force"}
_ARRAYS = _BODY_ARRAYS | _SITE_ARRAYS | _JOINT_ARRAYS | _PLAIN_ARRAYS
# Shape of each array as a function of the model's sizes (MuJoCo's MjData layout).
_SHAPES: dict[str, tuple[str | int, ...]] = {
    **{a: ("nbody", 3) for a in ("xpos", "xipos", "subtree_com")},
    "xquat": ("nbody", 4), "xmat": ("nbody", 9),
    **{a: ("nbody", 6) for a in ("cvel", "cfrc_ext", "cacc")},
    "site_xpos": ("nsite", 3), "site_xmat": ("nsite", 9),
    "qpos": ("nq",), "qvel": ("nv",), "qacc": ("nv",), "qfrc_actuator": ("nv",),
    "ctrl": ("nu",), "actuator_force": ("nu",), "act": ("na",), "sensordata": ("nsensordata",),
}  # fmt: skip
_FUNCTIONS = ("upright", "yaw", "pitch", "roll", "norm")
_QUATERNION_FUNCTIONS = ("upright", "yaw", "pitch", "roll")
_REF = re.compile(r"^([a-z_]+)((?:\[[^\[\]]+\])*)$")
_KEY = re.compile(r"\[([^\[\]]+)\]")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")  # body/joint/site names in robot models
_ENV = re.compile(r"^env\.([A-Za-z_][A-Za-z0-9_]*)(\(\))?((?:\[[^\[\]]+\])*)$")
_MAX_KEYS = 2


def _upright(q: list[float]) -> float:
    w, x, y, z = q
    return 1.0 - 2.0 * (x * x + y * y)


def _yaw(q: list[float]) -> float:
    w, x, y, z = q
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _pitch(q: list[float]) -> float:
    w, x, y, z = q
    return math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))


def _roll(q: list[float]) -> float:
    w, x, y, z = q
    return math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))


# Names the generated code may use besides the flat data buffers; nothing else is in its scope.
_HELPERS: dict[str, Any] = {
    "_upright": _upright,
    "_yaw": _yaw,
    "_pitch": _pitch,
    "_roll": _roll,
    "_hypot": math.hypot,
    "_abs": abs,
    "_frombuffer": np.frombuffer,
    "_asarray": np.asarray,
    "_f8": np.float64,
}


@dataclass(frozen=True)
class _Parsed:
    """A source split into its parts, before any model is known."""

    functions: tuple[str, ...]  # outermost first
    array: str  # an array name, or "dt" / "time", or "env" (an attribute of the env)
    keys: tuple[str, ...]
    attribute: str = ""  # array "env": the attribute's name
    call: bool = False  # array "env": call it (a method without arguments)


def parse_source(source: str) -> _Parsed:
    """Check a source against the grammar without a model (raises TaskError when invalid).

    Used at load time so that a typo in a task file fails before any env is built; names of
    bodies, joints and sites are checked later, against the model, by :class:`StateBuilder`.
    """
    text = source.strip()
    functions: list[str] = []
    while True:
        for fn in _FUNCTIONS:
            if text.startswith(fn + "(") and text.endswith(")"):
                functions.append(fn)
                text = text[len(fn) + 1 : -1].strip()
                break
        else:
            break
    if text in ("dt", "time"):
        return _Parsed(tuple(functions), text, ())
    if text.startswith("env."):
        return _parse_env_source(source, text, tuple(functions))
    match = _REF.match(text)
    if not match:
        raise TaskError(
            f"state source {source!r} is not of the form array[index] or fn(...); "
            f"functions: {', '.join(_FUNCTIONS)}"
        )
    array, keys_text = match.group(1), match.group(2)
    if array not in _ARRAYS:
        raise TaskError(
            f"state source {source!r}: unknown array {array!r}; use one of {sorted(_ARRAYS)}"
        )
    keys = tuple(k.strip() for k in _KEY.findall(keys_text))
    if len(keys) > _MAX_KEYS:
        raise TaskError(f"state source {source!r}: at most {_MAX_KEYS} indices are supported")
    for i, key in enumerate(keys):
        if i == 0 and _NAME.match(key):
            if array in _PLAIN_ARRAYS and array != "sensordata":
                raise TaskError(
                    f"state source {source!r}: {array} cannot be indexed by name; use a number"
                )
            continue
        try:
            _parse_index(key)
        except ValueError as e:
            raise TaskError(
                f"state source {source!r}: bad index [{key}]; use a number, a slice like 2:5, "
                "or (first index only) a body, joint, site or sensor name"
            ) from e
    return _Parsed(tuple(functions), array, keys)


def _parse_env_source(source: str, text: str, functions: tuple[str, ...]) -> _Parsed:
    match = _ENV.match(text)
    if not match or match.group(1).startswith("__"):
        raise TaskError(
            f"state source {source!r}: write env.<attribute>, env.<method>() or either with "
            "numeric indices, e.g. env.goal[0:3] (no dunder names)"
        )
    keys = tuple(k.strip() for k in _KEY.findall(match.group(3)))
    if len(keys) > _MAX_KEYS:
        raise TaskError(f"state source {source!r}: at most {_MAX_KEYS} indices are supported")
    for key in keys:
        try:
            _parse_index(key)
        except ValueError as e:
            raise TaskError(
                f"state source {source!r}: bad index [{key}]; env attributes take numbers or "
                "slices like 0:3"
            ) from e
    return _Parsed(functions, "env", keys, match.group(1), bool(match.group(2)))


def _parse_index(text: str) -> int | slice:
    text = text.strip()
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) != 2:
            raise ValueError(text)
        lo, hi = (int(p) if p else None for p in parts)
        return slice(lo, hi)
    return int(text)


def _joint_index(model: Any, array: str, name: str) -> int | slice:
    joint = model.joint(name)
    sizes = {0: (7, 6), 1: (4, 3), 2: (1, 1), 3: (1, 1)}  # free, ball, slide, hinge
    nq, nv = sizes[int(joint.type[0])]
    start = int(joint.qposadr[0]) if array == "qpos" else int(joint.dofadr[0])
    width = nq if array == "qpos" else nv
    return start if width == 1 else slice(start, start + width)


def _sensor_index(model: Any, name: str) -> int | slice:
    sensor = model.sensor(name)
    start, dim = int(sensor.adr[0]), int(sensor.dim[0])
    return start if dim == 1 else slice(start, start + dim)


def _resolve_key(model: Any, array: str, key: str, first: bool) -> int | slice:
    key = key.strip()
    if not first or not _NAME.match(key):
        return _parse_index(key)
    if array in _BODY_ARRAYS:
        return int(model.body(key).id)
    if array in _SITE_ARRAYS:
        return int(model.site(key).id)
    if array in _JOINT_ARRAYS:
        return _joint_index(model, array, key)
    if array == "sensordata":
        return _sensor_index(model, key)
    raise ValueError(f"{array} cannot be indexed by name")


def _array_shape(model: Any, array: str) -> tuple[int, ...]:
    return tuple(int(getattr(model, d)) if isinstance(d, str) else d for d in _SHAPES[array])


@dataclass(frozen=True)
class _Resolved:
    """A source resolved against a model: a scalar expression or a block of a flat buffer."""

    expr: str  # scalar: a Python expression giving a float; array: its copy expression
    shape: tuple[int, ...] = ()  # () for a scalar
    values: str = ""  # array: an expression giving its values as a list of floats


class Bindings:
    """Names the generated code reads, each bound to a view of one MuJoCo data array.

    Resolving records *which* views are needed; :meth:`scope` binds them to a given MjData, once
    per builder, so a step does no attribute lookups and no numpy slicing.
    """

    def __init__(self, env: Any = None) -> None:
        self.requests: dict[str, tuple[str, int | None, int | None]] = {}
        self.env = env  # the unwrapped env, for env.<attribute> sources

    def flat(self, array: str) -> str:
        name = f"_flat_{array}"
        self.requests[name] = (array, None, None)
        return name

    def block(self, array: str, start: int, stop: int) -> str:
        name = f"_mv_{array}_{start}_{stop}"
        self.requests[name] = (array, start, stop)
        return name

    def scope(self, data: Any) -> dict[str, Any]:
        out: dict[str, Any] = {**_HELPERS, "_data": data, "__builtins__": {}}
        if self.env is not None:
            out["_env"] = self.env
        for name, (array, start, stop) in self.requests.items():
            view = getattr(data, array).reshape(-1)
            if not np.shares_memory(view, getattr(data, array)):
                raise TaskError(f"MuJoCo's data.{array} is not contiguous; cannot read it")
            # A memoryview over the live buffer: .tobytes() and .tolist() copy the current values.
            out[name] = view if start is None else memoryview(view)[start:stop]
        return out


def resolve(source: str, model: Any, dt: float, bindings: Bindings) -> _Resolved:
    """Resolve a source to fixed positions in the model's flat data buffers."""
    parsed = parse_source(source)
    if parsed.array == "dt":
        value = _Resolved(repr(float(dt)))
    elif parsed.array == "time":
        value = _Resolved("_data.time")
    elif parsed.array == "env":
        value = _resolve_env(source, parsed, bindings.env)
    else:
        value = _array_value(parsed.array, flat_index(source, parsed, model), bindings)
    for fn in reversed(parsed.functions):
        value = _apply(fn, value, source)
    return value


def flat_index(source: str, parsed: _Parsed, model: Any) -> np.ndarray:
    """The positions a data-array source reads in its flat buffer, shaped like its value.

    Shared by the State builder and the MJX State view (:mod:`rewardgen.train.mjx_state`), so
    both read the same positions for the same source.
    """
    shape = _array_shape(model, parsed.array)
    index = np.arange(math.prod(shape)).reshape(shape)
    try:
        for i, key in enumerate(parsed.keys):
            index = index[_resolve_key(model, parsed.array, key, i == 0)]
    except (KeyError, ValueError, IndexError) as e:
        reason = str(e).strip("'\"")
        raise TaskError(
            f"state source {source!r}: bad index ({reason}); {parsed.array} has shape {shape}"
        ) from e
    return np.asarray(index)


def _resolve_env(source: str, parsed: _Parsed, env: Any) -> _Resolved:
    """An env attribute: its shape is fixed now, its value is read afresh at every build."""
    if env is None:
        raise TaskError(f"state source {source!r}: env.<attribute> needs the env, not only a model")
    name = parsed.attribute
    try:
        raw = getattr(env, name)
        value = np.asarray(raw() if parsed.call else raw, dtype=np.float64)
    except AttributeError as e:
        raise TaskError(
            f"state source {source!r}: {type(env).__name__} has no attribute {name!r}"
        ) from e
    except (TypeError, ValueError) as e:
        raise TaskError(
            f"state source {source!r}: env.{name} is not numeric ({type(e).__name__}: {e}); "
            "point it at an array or a number" + ("" if parsed.call else ", or call it with ()")
        ) from e
    index = np.arange(value.size).reshape(value.shape)
    try:
        for key in parsed.keys:
            index = index[_parse_index(key)]
    except IndexError as e:
        raise TaskError(
            f"state source {source!r}: bad index ({e}); env.{name} has shape {value.shape}"
        ) from e
    read = f"_asarray(_env.{name}{'()' if parsed.call else ''}, _f8).reshape(-1)"
    flat = np.asarray(index).reshape(-1)
    if np.ndim(index) == 0:
        return _Resolved(f"{read}.item({int(flat[0])})")
    start = int(flat[0]) if flat.size else 0
    block = f"{read}[{start}:{start + flat.size}]"
    shape: tuple[int, ...] = tuple(map(int, np.shape(index)))
    copy = f"_frombuffer({block}.tobytes())"
    return _Resolved(copy if len(shape) == 1 else f"{copy}.reshape({shape})", shape,
                     f"{block}.tolist()")


def _array_value(array: str, index: np.ndarray, bindings: Bindings) -> _Resolved:
    flat = index.reshape(-1)
    if index.ndim == 0:
        return _Resolved(f"{bindings.flat(array)}.item({int(flat[0])})")
    start = int(flat[0]) if flat.size else 0
    if np.array_equal(flat, np.arange(start, start + flat.size)):
        block = bindings.block(array, start, start + flat.size)
        raw, values = f"{block}.tobytes()", f"{block}.tolist()"
    else:  # not reachable with the grammar's plain slices; kept correct anyway
        taken = f"{bindings.flat(array)}.take({flat.tolist()})"
        raw, values = f"{taken}.tobytes()", f"{taken}.tolist()"
    # A copy backed by immutable bytes: read-only, and nothing can make it writeable again.
    copy = f"_frombuffer({raw})"
    shape = tuple(int(n) for n in index.shape)
    return _Resolved(copy if len(shape) == 1 else f"{copy}.reshape({shape})", shape, values)


def _apply(fn: str, value: _Resolved, source: str) -> _Resolved:
    scalar = value.shape == ()
    if fn == "norm":
        return _Resolved(f"_abs({value.expr})" if scalar else f"_hypot(*{value.values})")
    if scalar or math.prod(value.shape) != 4:
        got = "a scalar" if scalar else f"shape {value.shape}"
        raise TaskError(
            f"state source {source!r}: {fn}() needs a quaternion (4 values, e.g. xquat[torso]), "
            f"got {got}"
        )
    return _Resolved(f"_{fn}({value.values})")


def compile_source(source: str, model: Any, dt: float, env: Any = None) -> Getter:
    """Turn a field source into a getter ``data -> value`` (raises TaskError when invalid).

    The value is what the State holds: a float, or a read-only numpy copy. This is the slow,
    one-field path (it binds the data on every call); :class:`StateBuilder` reads all fields at
    once. ``env`` (the unwrapped env) is needed only by ``env.<attribute>`` sources.
    """
    bindings = Bindings(env)
    code = compile(resolve(source, model, dt, bindings).expr, "<state source>", "eval")

    def getter(data: Any) -> Any:
        return eval(code, bindings.scope(data))  # trusted: grammar names and resolved integers

    return getter
