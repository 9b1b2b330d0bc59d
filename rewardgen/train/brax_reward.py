"""The trainer's side of a reward program: a checked ``jax.export`` blob and the Brax wrapper.

The blob comes from the sandboxed trace worker (:mod:`rewardgen.worker.brax_trace`); nothing in
it is Python. Before use it is checked again as hostile input: its size, that it has no effects
(host callbacks), that it takes exactly the task's State fields, the action and the previous
State as float32 arrays with one symbolic batch dimension, and returns float32 scalars per
state with at most ``MAX_COMPONENTS`` components. :class:`ProgramRewardWrapper` then replaces
the env's native reward by the program's total, batched (it sits above Brax's VmapWrapper, as
exported calls cannot be vmapped), and records each component in ``state.metrics``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper
from jax import export

from rewardgen.runs.untrusted import UnsafeFileError, read_regular_file
from rewardgen.sandbox.contract import MAX_COMPONENT_NAME, MAX_COMPONENTS
from rewardgen.train.mjx_state import MjxStateView

MAX_BLOB_MB = 2
COMPONENT_PREFIX = "reward/"


class RewardBlobError(ValueError):
    """A serialised reward that is unreadable or does not fit the task."""


def _expected_shapes(view: MjxStateView, action_size: int) -> list[tuple[int, ...]]:
    return [*view.shapes, (action_size,), *view.shapes]


def load_reward(path: str | Path, view: MjxStateView, action_size: int) -> Any:
    """The checked ``jax.export.Exported`` reward at ``path``.

    Raises:
        RewardBlobError: the file is unsafe, unreadable or its signature does not fit.
    """
    try:
        raw = read_regular_file(path, MAX_BLOB_MB)
    except UnsafeFileError as e:
        raise RewardBlobError(f"the compiled reward is unusable: {e}") from e
    try:
        exported = export.deserialize(bytearray(raw))
    except Exception as e:  # noqa: BLE001 - a malformed blob is the candidate's doing
        raise RewardBlobError(f"the compiled reward cannot be read: {type(e).__name__}") from e
    if exported.ordered_effects or exported.unordered_effects:
        raise RewardBlobError("the compiled reward has effects (host callbacks)")
    if exported.nr_devices != 1:
        raise RewardBlobError(f"the compiled reward is for {exported.nr_devices} devices, not 1")
    expected = _expected_shapes(view, action_size)
    got = list(exported.in_avals)
    if len(got) != len(expected):
        raise RewardBlobError(
            f"the compiled reward takes {len(got)} arrays, the task gives {len(expected)}"
        )
    batch = str(got[0].shape[0]) if got and got[0].shape else None
    for aval, shape in zip(got, expected, strict=True):
        if (
            aval.dtype != jnp.float32
            or tuple(aval.shape[1:]) != shape
            or str(aval.shape[0]) != batch
            or batch.isdigit()
        ):
            raise RewardBlobError(
                f"the compiled reward takes {aval}, the task gives float32"
                f"[b, {', '.join(map(str, shape))}]"
            )
    outs = list(exported.out_avals)
    if not 1 <= len(outs) <= MAX_COMPONENTS + 1:
        raise RewardBlobError(f"the compiled reward returns {len(outs)} arrays")
    for aval in outs:
        if aval.dtype != jnp.float32 or len(aval.shape) != 1 or str(aval.shape[0]) != batch:
            raise RewardBlobError(f"the compiled reward returns {aval}, not float32[b]")
    names = component_names(exported)
    if any(not isinstance(n, str) or len(n) > MAX_COMPONENT_NAME for n in names):
        raise RewardBlobError("the compiled reward's component names are not short strings")
    return exported


def component_names(exported: Any) -> list[str]:
    """The component names of an exported ``(total, {name: value})`` reward, in output order."""
    total_and_components = jax.tree_util.tree_unflatten(
        exported.out_tree, list(range(len(exported.out_avals)))
    )
    if not (
        isinstance(total_and_components, tuple)
        and len(total_and_components) == 2
        and isinstance(total_and_components[1], dict)
    ):
        raise RewardBlobError("the compiled reward does not return (total, components)")
    return sorted(total_and_components[1], key=lambda k: total_and_components[1][k])


class ProgramRewardWrapper(Wrapper):  # type: ignore[misc]
    """Batched envs (above ``VmapWrapper``) whose reward is the exported program's total."""

    def __init__(self, env: Env, exported: Any, view: MjxStateView) -> None:
        super().__init__(env)
        self.exported = exported
        self.view = view
        self.names = component_names(exported)

    def _states(self, data: Any) -> tuple[Any, ...]:
        return tuple(jax.vmap(self.view.read)(data))

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        zeros = jnp.zeros(rng.shape[:-1])
        metrics = {**state.metrics, **{COMPONENT_PREFIX + n: zeros for n in self.names}}
        return state.replace(metrics=metrics)

    def step(self, state: State, action: jax.Array) -> State:
        prev = self._states(state.pipeline_state)
        nstate = self.env.step(state, action)
        total, components = self.exported.call(
            self._states(nstate.pipeline_state), action.astype(jnp.float32), prev
        )
        # a non-finite reward would poison the update: count it as 0 and end the episode
        finite = jnp.isfinite(total)
        metrics = {**nstate.metrics, **{COMPONENT_PREFIX + n: components[n] for n in self.names}}
        return nstate.replace(
            reward=jnp.where(finite, total, 0.0),
            done=jnp.where(finite, nstate.done, 1.0),
            metrics=metrics,
        )


__all__ = ["ProgramRewardWrapper", "RewardBlobError", "component_names", "load_reward"]
