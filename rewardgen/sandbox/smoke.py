"""Layer 2 of isolation: call a loaded reward program on recorded states before training on it.

Training a policy on a reward that returns NaN on the third step, or that takes a second per
call, wastes the whole candidate budget and then fails somewhere inside SB3 with a message the
LLM cannot act on. A few calls on recorded states catch both in milliseconds, with a reason that
names the state, the line and the problem. Runs inside the isolated worker.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from rewardgen.errors import RewardCodeError, SandboxError
from rewardgen.sandbox.contract import PROGRAM_FILENAME, exception_message
from rewardgen.sandbox.program import check_reward_output, check_unit_interval


class _CallTimeout(BaseException):
    """Raised by the timer inside the reward call; a BaseException so no handler swallows it."""


def _on_timer(signum: int, frame: FrameType | None) -> None:
    raise _CallTimeout


def _program_line(exc: BaseException) -> int | None:
    """The deepest line of the reward program in the exception's traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == PROGRAM_FILENAME:
            line = frame.lineno
    return line


def _call_with_budget(call: Callable[[], Any], budget_s: float) -> tuple[Any, bool]:
    """Run ``call`` under an ITIMER_REAL budget; return (output, timed_out).

    Signals are delivered to the main thread only; elsewhere the call runs to completion and
    is only measured (the worker's wall-clock timeout still bounds it).
    """
    if threading.current_thread() is not threading.main_thread():
        start = time.monotonic()
        out = call()
        return out, time.monotonic() - start > budget_s
    old_handler = signal.signal(signal.SIGALRM, _on_timer)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, budget_s)
    start = time.monotonic()
    try:
        return call(), False
    except _CallTimeout:
        return None, True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:
            remaining = max(old_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, old_interval)


def _check_progress(out: Any) -> None:
    check_unit_interval(out, "progress", "must return")


def random_transitions(env: Any, state: Callable[[], Any], seed: int,
                       steps: int) -> list[tuple[Any, Any, Any]]:
    """``steps`` (state, action, prev_state) triples of random actions from ``env`` reset with
    ``seed`` (reset again at an episode's end), ``state()`` reading the State view: the samples a
    smoke test runs the reward program on, the same on every run."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    prev = state()
    samples = []
    for _ in range(steps):
        action = env.action_space.sample()
        _, _, terminated, truncated, _ = env.step(action)
        current = state()
        samples.append((current, action, prev))
        if terminated or truncated:
            env.reset()
            current = state()
        prev = current
    return samples


def smoke_test(
    fn: Callable[..., Any],
    samples: Sequence[tuple[Any, Any, Any]],
    call_timeout_s: float,
    *,
    entry: str = "compute_reward",
) -> None:
    """Call the reward program on each recorded ``(state, action, prev_state)`` and check it.

    Args:
        fn: the loaded entry function (``RewardProgram.fn``).
        samples: recorded transitions, e.g. from random actions in the task's env.
        call_timeout_s: budget of one call; a reward slower than this would dominate training.
        entry: ``compute_reward`` (returns ``(total, components)``) or ``progress`` (called as
            ``progress(state)``, returns a float in [0, 1]).

    Raises:
        RewardCodeError: with the first problem found, e.g. "smoke test: compute_reward took
            longer than 1.0 s on recorded state 3".
        SandboxError: when ``samples`` is empty (a caller bug: nothing would be tested).
    """
    if not samples:
        raise SandboxError("smoke_test needs at least one recorded state; got none")
    for i, (state, action, prev_state) in enumerate(samples):
        args = (state,) if entry == "progress" else (state, action, prev_state)
        call = functools.partial(fn, *args)
        try:
            out, timed_out = _call_with_budget(call, call_timeout_s)
        except Exception as e:  # noqa: BLE001 - any failure of generated code is the finding
            line = _program_line(e)
            where = f" at line {line}" if line is not None else ""
            raise RewardCodeError(
                f"smoke test: raised {type(e).__name__}: {exception_message(e)}{where} on "
                f"recorded state {i}"
            ) from e
        if timed_out:
            raise RewardCodeError(
                f"smoke test: {entry} took longer than {call_timeout_s:g} s on recorded state {i}"
            )
        try:
            if entry == "progress":
                _check_progress(out)
            else:
                check_reward_output(out)
        except RewardCodeError as e:
            raise RewardCodeError(f"smoke test: {e} on recorded state {i}") from e
