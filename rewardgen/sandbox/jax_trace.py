"""Trace a reward program with ``np`` bound to jax.numpy and serialise it with ``jax.export``.

Runs only inside the sandboxed trace worker (:mod:`rewardgen.worker.brax_trace`): it executes
generated code. The program passes the same static check as on the CPU path, is loaded with the
same restricted builtins but the jax namespaces (:mod:`.jax_surface`), and is traced once over
abstract States with a symbolic batch size. What leaves is a StableHLO blob: the trainer
deserialises it and never sees Python reward code. ``jax.export`` refuses host callbacks; the
blob is also checked for effects, input and output shapes and dtypes here and again on load
(:func:`rewardgen.train.brax_reward.load_reward`).

A trace error becomes a :class:`RewardCodeError` naming the program's line and the fix
("use np.where instead of if"), so the next prompt can correct it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import export

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.contract import MAX_COMPONENT_NAME, MAX_COMPONENTS, PROGRAM_FILENAME
from rewardgen.sandbox.jax_surface import JAX_NAMESPACES
from rewardgen.sandbox.program import SAFE_BUILTINS
from rewardgen.sandbox.surface import RewardNamespace, unavailable
from rewardgen.sandbox.validate import check_source

PLATFORMS = ("cpu", "cuda")  # the blob runs on the trainer's accelerator or on the CPU
MAX_BLOB_BYTES = 2_000_000
# (exception type name, fix): what the LLM should write instead
FIXES = (
    (
        "TracerBoolConversionError",
        "use np.where(cond, a, b), np.logical_and/or or "
        "np.maximum/np.minimum instead of if, while, and/or/not, a ternary or builtin max/min on "
        "state values",
    ),
    (
        "ConcretizationTypeError",
        "keep values as arrays: no float(), int(), bool(), .item() or "
        "math.* on state values; use np functions",
    ),
    (
        "TracerIntegerConversionError",
        "do not use state values as Python ints (range, indexing); use np.where or fixed indices",
    ),
    (
        "TracerArrayConversionError",
        "do not convert state values to Python or numpy objects; use np functions on them",
    ),
    ("NonConcreteBooleanIndexError", "use np.where(mask, x, 0.0) instead of x[mask]"),
)
_IMMUTABLE = (
    "build a new array (np.array([...]), np.where) instead of assigning items; arrays "
    "are immutable under rl=brax_ppo"
)


def _import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> RewardNamespace:
    if level or name not in JAX_NAMESPACES:
        raise ImportError(
            f"import of {name!r} is not available in reward code; use {', '.join(JAX_NAMESPACES)}"
        )
    module = JAX_NAMESPACES[name]
    for attr in fromlist or ():
        if attr.startswith("_") or attr not in vars(module):
            raise ImportError(unavailable(module, attr))
    return module if fromlist else JAX_NAMESPACES[name.split(".")[0]]


def load_traceable(source: str, entry: str = "compute_reward") -> Callable[..., Any]:
    """Check ``source`` statically and load ``entry`` with ``np``/``math`` bound to jax."""
    tree = check_source(source, entry)
    numpy_view = JAX_NAMESPACES["numpy"]
    namespace: dict[str, Any] = {
        "__builtins__": {**SAFE_BUILTINS, "__import__": _import},
        "np": numpy_view,
        "numpy": numpy_view,
        "math": JAX_NAMESPACES["math"],
        "__name__": "reward_program",
    }
    try:
        exec(compile(tree, PROGRAM_FILENAME, "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - any failure of generated code is a result
        raise RewardCodeError(f"defining the program failed: {type(e).__name__}: {e}") from e
    fn = namespace.get(entry)
    if not callable(fn):
        raise RewardCodeError(f"{entry!r} is not a function")
    return fn  # type: ignore[no-any-return]


def program_line(exc: BaseException) -> int | None:
    """The deepest line of the reward program in ``exc``'s traceback."""
    lines = [
        f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == PROGRAM_FILENAME
    ]
    return lines[-1] if lines else None


def trace_reason(exc: BaseException) -> str:
    """One line: where the program failed to trace, what it raised and how to fix it."""
    name = type(exc).__name__
    line = program_line(exc)
    where = f"line {line}: " if line else ""
    fix = next((f for n, f in FIXES if n == name), None)
    message = str(exc).splitlines()[0] if str(exc) else name
    if fix is None and "immutable" in str(exc):
        fix = _IMMUTABLE
    if fix is None:
        return f"does not compile for rl=brax_ppo: {where}{name}: {message[:160]}"
    return f"does not compile for rl=brax_ppo: {where}{fix} ({name})"


def _scalar(value: Any, what: str) -> Any:
    array = jnp.asarray(value)
    if array.shape != ():
        raise RewardCodeError(f"{what} has shape {array.shape}; return a scalar per state")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise RewardCodeError(f"{what} is complex; return a real float")
    return array.astype(jnp.float32)


def _checked_output(out: Any) -> tuple[Any, dict[str, Any]]:
    """The program's (total, components) as float32 scalars per state; raise on anything else."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise RewardCodeError(
            f"compute_reward must return (total, components), got {type(out).__name__}"
        )
    total, components = out
    if not isinstance(components, dict):
        raise RewardCodeError(f"components must be a dict, got {type(components).__name__}")
    if len(components) > MAX_COMPONENTS:
        raise RewardCodeError(
            f"components has {len(components)} entries; return at most {MAX_COMPONENTS} named terms"
        )
    for key in components:
        if not isinstance(key, str) or len(key) > MAX_COMPONENT_NAME:
            raise RewardCodeError(
                f"component names must be strings under {MAX_COMPONENT_NAME} "
                f"characters, got {key!r:.60}"
            )
    clean = {k: _scalar(v, f"component {k!r}") for k, v in components.items()}
    return _scalar(total, "total reward"), clean


def export_reward(fn: Callable[..., Any], state_zeros: Any, action_size: int) -> bytes:
    """Trace ``fn(state, action, prev_state)`` over a symbolic batch and serialise it.

    Args:
        fn: the loaded program (per state).
        state_zeros: a State of unbatched float32 arrays (its shapes and class).
        action_size: the action vector's length.

    Raises:
        RewardCodeError: it does not trace, returns the wrong structure, or needs the host.
    """
    (batch,) = export.symbolic_shape("b")

    def spec(x: Any) -> Any:
        return jax.ShapeDtypeStruct((batch, *x.shape), jnp.float32)

    state_class = type(state_zeros)
    state_spec = tuple(spec(x) for x in state_zeros)  # plain tuples: the State class stays here
    action_spec = jax.ShapeDtypeStruct((batch, action_size), jnp.float32)

    def per_state(state: Any, action: Any, prev_state: Any) -> Any:
        return _checked_output(fn(state_class(*state), action, state_class(*prev_state)))

    batched = jax.jit(jax.vmap(per_state))
    try:
        exported = export.export(batched, platforms=PLATFORMS)(state_spec, action_spec, state_spec)
        blob = bytes(exported.serialize())
    except RewardCodeError:
        raise
    except NotImplementedError as e:
        if "host_callback" in str(e) or "callback" in str(e):
            raise RewardCodeError(
                "does not compile for rl=brax_ppo: it calls back to the "
                "host (a Python callback); write it with np functions only"
            ) from e
        raise RewardCodeError(trace_reason(e)) from e
    except Exception as e:  # noqa: BLE001 - any trace failure of generated code is a result
        raise RewardCodeError(trace_reason(e)) from e
    if exported.ordered_effects or exported.unordered_effects:
        raise RewardCodeError(
            "does not compile for rl=brax_ppo: it has side effects (host "
            "callbacks); write it with np functions only"
        )
    if len(blob) > MAX_BLOB_BYTES:
        raise RewardCodeError(
            f"the compiled program is {len(blob)} bytes (limit "
            f"{MAX_BLOB_BYTES}); write a shorter program without long loops"
        )
    return blob


__all__ = ["FIXES", "PLATFORMS", "export_reward", "load_traceable", "trace_reason"]
