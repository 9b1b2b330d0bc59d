"""The State view read from ``mjx.Data``: the same fields, positions and class as on C MuJoCo.

Each field's source is resolved against the task's MuJoCo model with the positions
:func:`rewardgen.tasks.sources.flat_index` gives the C-MuJoCo builder, then read from the flat
MJX array with ``jnp.take``; ``upright``/``yaw``/``pitch``/``roll``/``norm`` are their jnp
twins. The State class is the one :func:`rewardgen.tasks.state.state_source` renders (a
NamedTuple, hence a JAX pytree), so a program traced here sees the fields the prompt shows.
Scalars are 0-d float32 arrays, arrays float32 of the field's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rewardgen.errors import TaskError
from rewardgen.tasks.sources import flat_index, parse_source
from rewardgen.tasks.state import StateField, state_source
from rewardgen.train.brax_config import MJX_ARRAYS

Reader = Callable[[Any], Any]


def _quaternion_functions(jnp: Any) -> dict[str, Callable[[Any], Any]]:
    def upright(q: Any) -> Any:
        return 1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2])

    def yaw(q: Any) -> Any:
        w, x, y, z = q[0], q[1], q[2], q[3]
        return jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    def pitch(q: Any) -> Any:
        w, x, y, z = q[0], q[1], q[2], q[3]
        return jnp.arcsin(jnp.clip(2.0 * (w * y - z * x), -1.0, 1.0))

    def roll(q: Any) -> Any:
        w, x, y, z = q[0], q[1], q[2], q[3]
        return jnp.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))

    def norm(v: Any) -> Any:
        return jnp.abs(v) if v.ndim == 0 else jnp.sqrt(jnp.sum(v * v))

    return {"upright": upright, "yaw": yaw, "pitch": pitch, "roll": roll, "norm": norm}


@dataclass(frozen=True)
class MjxStateView:
    """Reads a task's State view from ``mjx.Data`` (one env; vmap it for a batch).

    Attributes:
        fields: the task's declaration.
        shapes: each field's shape (``()`` for a scalar).
        state_class: the State NamedTuple, rendered from the declaration.
        source: that class's source, as the prompt shows it.
    """

    fields: tuple[StateField, ...]
    shapes: tuple[tuple[int, ...], ...]
    state_class: type
    source: str
    readers: tuple[Reader, ...]

    def read(self, data: Any) -> Any:
        """The State of one ``mjx.Data`` (traceable)."""
        return self.state_class(*(reader(data) for reader in self.readers))

    def zeros(self, batch: Sequence[int] = ()) -> Any:
        """A State of zeros with leading ``batch`` dimensions (abstract shapes for tracing)."""
        import jax.numpy as jnp

        return self.state_class(*(jnp.zeros((*batch, *s), jnp.float32) for s in self.shapes))

    def from_numpy(self, state: Any) -> Any:
        """A float32 jnp State from a C-MuJoCo State (same class layout)."""
        import jax.numpy as jnp

        return self.state_class(*(jnp.asarray(np.asarray(v, np.float32)) for v in state))


def _reader(field: StateField, model: Any, dt: float) -> tuple[Reader, tuple[int, ...]]:
    import jax.numpy as jnp

    parsed = parse_source(field.source)
    if parsed.array not in MJX_ARRAYS:
        raise TaskError(
            f"state field {field.name!r}: {field.source!r} cannot be read from MJX "
            f"data; MJX fields are {', '.join(sorted(MJX_ARRAYS))}"
        )
    functions = _quaternion_functions(jnp)
    if parsed.array == "dt":

        def base(data: Any) -> Any:
            return jnp.asarray(dt, jnp.float32)

        shape: tuple[int, ...] = ()
    elif parsed.array == "time":

        def base(data: Any) -> Any:
            return jnp.asarray(data.time, jnp.float32)

        shape = ()
    else:
        index = flat_index(field.source, parsed, model)
        array, flat = parsed.array, jnp.asarray(index.reshape(-1), jnp.int32)
        shape = tuple(int(n) for n in index.shape)

        def base(data: Any) -> Any:
            values = jnp.take(getattr(data, array).reshape(-1), flat)
            return values.reshape(shape).astype(jnp.float32)

    for fn in reversed(parsed.functions):
        if fn != "norm" and int(np.prod(shape)) != 4:
            raise TaskError(f"state source {field.source!r}: {fn}() needs a quaternion")
        shape = ()
    if not parsed.functions:
        return base, shape

    def composed(data: Any, _base: Reader = base, _fns: tuple[str, ...] = parsed.functions) -> Any:
        value = _base(data)
        for name in reversed(_fns):
            value = functions[name](value.reshape(-1) if name != "norm" else value)
        return jnp.asarray(value, jnp.float32)

    return composed, shape


def mjx_state_view(
    fields: Sequence[StateField], model: Any, dt: float, title: str = "One time step."
) -> MjxStateView:
    """The State view of ``fields`` over a MuJoCo model (``mujoco.MjModel``), for MJX data.

    Raises:
        TaskError: a field MJX cannot read or an index the model does not have.
    """
    readers, shapes = zip(*(_reader(f, model, dt) for f in fields), strict=True)
    source = state_source(fields, list(shapes), title)
    namespace: dict[str, Any] = {"NamedTuple": NamedTuple, "np": np}
    exec(compile(source, "<state view>", "exec"), namespace)  # trusted: rendered from the spec
    return MjxStateView(tuple(fields), tuple(shapes), namespace["State"], source, tuple(readers))


__all__ = ["MjxStateView", "mjx_state_view"]
