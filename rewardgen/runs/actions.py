"""Action sequences across the trust boundary: what the untrusted MPC worker hands the replay.

The MPC worker (:mod:`rewardgen.worker.mpc`) ran a reward program, so everything it writes is
hostile input. It hands over one thing: ``actions.npy``, the action it applied at each control
step, as a plain float array (``numpy.save`` without pickles). The trusted replay
(:mod:`rewardgen.worker.mpc_replay`) reads it with :func:`read_actions`: a small regular file,
no pickle, a float array of the action space's shape, finite, inside the action bounds, at most
the job's episode length. Nothing else from the worker is measured.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rewardgen.runs.atomic import atomic_write_bytes
from rewardgen.runs.untrusted import UnsafeFileError, read_regular_file

ACTIONS_FILE = "actions.npy"
MAX_ACTIONS_MB = 64
_BOUND_SLACK = 1e-6  # float32 rounding of the bounds


class ActionFileError(ValueError):
    """An action file that is missing, malformed or outside the action space."""


def write_actions(path: str | Path, actions: np.ndarray) -> Path:
    """Write ``actions`` (steps x action size) as a plain float64 ``.npy``, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(actions, dtype=np.float64), allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


def read_actions(path: str | Path, shape: tuple[int, ...], low: np.ndarray, high: np.ndarray,
                 max_steps: int) -> np.ndarray:
    """The validated action sequence in ``path``: (steps, *shape) float64.

    Raises:
        ActionFileError: not a small regular file, a pickle or not an ``.npy``, a wrong dtype or
            shape, no step or more than ``max_steps``, a NaN or infinite value, or an action
            outside [low, high].
    """
    name = Path(path).name
    try:
        data = read_regular_file(path, MAX_ACTIONS_MB)
    except UnsafeFileError as e:
        raise ActionFileError(str(e)) from e
    try:
        actions = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ActionFileError(f"{name} is not a plain .npy array: {e}") from e
    if not isinstance(actions, np.ndarray) or actions.dtype.kind != "f":
        raise ActionFileError(f"{name} holds {getattr(actions, 'dtype', type(actions))}, "
                              "not floats")
    if actions.ndim != 1 + len(shape) or tuple(actions.shape[1:]) != tuple(shape):
        raise ActionFileError(f"{name} has shape {actions.shape}; expected (steps, "
                              f"{', '.join(map(str, shape))})")
    if not 1 <= len(actions) <= max_steps:
        raise ActionFileError(f"{name} holds {len(actions)} steps; expected 1 to {max_steps}")
    actions = actions.astype(np.float64)
    if not np.isfinite(actions).all():
        raise ActionFileError(f"{name} holds NaN or infinite actions")
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), shape)
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), shape)
    if (actions < lo - _BOUND_SLACK).any() or (actions > hi + _BOUND_SLACK).any():
        raise ActionFileError(f"{name} holds actions outside the action space's bounds")
    return np.clip(actions, lo, hi)


__all__ = ["ACTIONS_FILE", "ActionFileError", "read_actions", "write_actions"]
