"""The State view: named quantities copied out of the simulator, and the source shown to the LLM.

A task declares its State view as a list of fields, each with a *source* in a small grammar::

    qpos[0]            qvel[2:]          qpos[rootz]       (joint names resolve to addresses)
    xpos[torso]        xpos[torso][2]    xquat[torso]      cvel[torso]      subtree_com[torso]
    cfrc_ext[1:]       site_xpos[tip]    sensordata[name]  ctrl             act
    time               dt
    upright(xquat[torso])   yaw(...)   pitch(...)   roll(...)   norm(...)

From that one declaration rewardgen builds both the class definition that the LLM reads and the
getters that fill it during training: :func:`state_source` renders the class, and
:class:`StateBuilder` executes *that very source* to make the class it instantiates, so the prompt
and the executed contract cannot drift apart. A State holds plain floats and read-only numpy
copies, never a handle to MuJoCo's model or data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rewardgen.errors import TaskError

Getter = Callable[[Any], Any]

_BODY_ARRAYS = {"xpos", "xquat", "xmat", "xipos", "cvel", "cfrc_ext", "subtree_com", "cacc"}
_SITE_ARRAYS = {"site_xpos", "site_xmat"}
_JOINT_ARRAYS = {"qpos", "qvel", "qacc", "qfrc_actuator"}
_PLAIN_ARRAYS = {"ctrl", "act", "sensordata", "actuator_force"}
_FUNCTIONS = ("upright", "yaw", "pitch", "roll", "norm")
_REF = re.compile(r"^([a-z_]+)((?:\[[^\[\]]+\])*)$")
_KEY = re.compile(r"\[([^\[\]]+)\]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StateField:
    """One named quantity of the State view."""

    name: str
    source: str
    unit: str = ""
    doc: str = ""


def _quat_fn(kind: str) -> Callable[[np.ndarray], float]:
    def upright(q: np.ndarray) -> float:
        w, x, y, z = q
        return float(1.0 - 2.0 * (x * x + y * y))

    def yaw(q: np.ndarray) -> float:
        w, x, y, z = q
        return float(math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))

    def pitch(q: np.ndarray) -> float:
        w, x, y, z = q
        return float(math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x)))))

    def roll(q: np.ndarray) -> float:
        w, x, y, z = q
        return float(math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y)))

    def norm(v: np.ndarray) -> float:
        return float(np.linalg.norm(v))

    return {"upright": upright, "yaw": yaw, "pitch": pitch, "roll": roll, "norm": norm}[kind]


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
    if not first or not _IDENT.match(key):
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


def compile_source(source: str, model: Any, dt: float) -> Getter:
    """Turn a field source into a getter ``data -> value`` (raises TaskError when invalid)."""
    text = source.strip()
    for fn in _FUNCTIONS:
        if text.startswith(fn + "(") and text.endswith(")"):
            inner = compile_source(text[len(fn) + 1 : -1], model, dt)
            f = _quat_fn(fn)
            return lambda data: f(inner(data))
    if text == "dt":
        return lambda data: dt
    if text == "time":
        return lambda data: float(data.time)
    match = _REF.match(text)
    if not match:
        raise TaskError(f"state source {source!r} is not of the form array[index] or fn(...)")
    array, keys_text = match.group(1), match.group(2)
    known = _BODY_ARRAYS | _SITE_ARRAYS | _JOINT_ARRAYS | _PLAIN_ARRAYS
    if array not in known:
        raise TaskError(f"state source {source!r}: unknown array {array!r}; use one of {sorted(known)}")
    try:
        keys = [
            _resolve_key(model, array, k, i == 0) for i, k in enumerate(_KEY.findall(keys_text))
        ]
    except (KeyError, ValueError) as e:
        raise TaskError(f"state source {source!r}: bad index ({e})") from e
    if not keys:
        return lambda data: getattr(data, array).copy()
    if len(keys) == 1:
        (k0,) = keys
        return lambda data: getattr(data, array)[k0]
    k0, k1 = keys[0], keys[1]
    if len(keys) == 2:
        return lambda data: getattr(data, array)[k0][k1]
    raise TaskError(f"state source {source!r}: at most two indices are supported")


def _finalise(getter: Getter, is_scalar: bool) -> Getter:
    if is_scalar:
        return lambda data: float(getter(data))

    def array_getter(data: Any) -> np.ndarray:
        value = np.array(getter(data), dtype=np.float64)
        value.flags.writeable = False
        return value

    return array_getter


def state_source(fields: Sequence[StateField], shapes: Sequence[tuple[int, ...]], title: str) -> str:
    """Render the State class definition exactly as it is executed and shown to the LLM."""
    lines = [
        "class State(NamedTuple):",
        f'    """{title} Plain floats and read-only numpy arrays copied from the simulator."""',
        "",
    ]
    for field, shape in zip(fields, shapes, strict=True):
        kind = "float" if shape == () else "np.ndarray"
        meta = [f"[{field.unit}]" if field.unit else ""]
        if shape != ():
            meta.append(f"shape {shape}")
        if field.doc:
            meta.append(field.doc)
        comment = " ".join(m for m in meta if m)
        lines.append(f"    {field.name}: {kind}  # {comment}" if comment else f"    {field.name}: {kind}")
    return "\n".join(lines) + "\n"


class StateBuilder:
    """Copies the declared fields out of a MuJoCo env into a State instance.

    Args:
        fields: the task's State view declaration.
        env: a gymnasium MuJoCo env (any wrapper depth); it must have been reset once.
        title: first line of the class docstring shown to the LLM.
    """

    def __init__(self, fields: Sequence[StateField], env: Any, title: str = "One time step.") -> None:
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise TaskError(f"state fields repeat a name: {names}")
        for name in names:
            if not _IDENT.match(name) or name.startswith("_"):
                raise TaskError(f"state field name {name!r} must be a plain identifier")
        base = env.unwrapped
        self._data = base.data
        raw = [compile_source(f.source, base.model, float(base.dt)) for f in fields]
        shapes = [np.shape(g(self._data)) for g in raw]
        self.fields = tuple(fields)
        self.source = state_source(fields, shapes, title)
        self.state_class = self._exec_source(self.source)
        self._getters = tuple(_finalise(g, s == ()) for g, s in zip(raw, shapes, strict=True))
        self._new = self.state_class.__new__

    @staticmethod
    def _exec_source(source: str) -> type:
        namespace: dict[str, Any] = {"NamedTuple": NamedTuple, "np": np}
        exec(compile(source, "<state view>", "exec"), namespace)  # trusted: rendered from the spec
        return namespace["State"]  # type: ignore[no-any-return]

    def build(self) -> Any:
        """Return a State for the env's current simulator data."""
        data = self._data
        return self._new(self.state_class, *[g(data) for g in self._getters])
