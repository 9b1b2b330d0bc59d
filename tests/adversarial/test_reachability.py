"""What reward code can reach by attribute access alone, from everything in its namespace.

The static check forbids names, so whatever a program can touch is a chain of public attribute
names starting at its arguments, builtins and modules. This walks those chains breadth-first
(a few levels deep, skipping the names the check forbids) and fails on anything that opens the
host: a module that is not one of the reward program's views, the interpreter's dangerous
builtins, frames or code objects, functions of os/sys/subprocess/... The same walk from the
real numpy, without the forbidden names, finds ``numpy.ma.core.builtins``: the walk works.
"""

from __future__ import annotations

import builtins
import collections
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.results import CandidateJob
from rewardgen.rewards.program import MODULE_VIEWS, SAFE_BUILTINS
from rewardgen.sandbox.validate import FORBIDDEN_ATTRIBUTES
from rewardgen.tasks import load_task
from rewardgen.train.job import record_smoke_samples

DEPTH = 4
DANGEROUS_BUILTINS = {
    id(getattr(builtins, name))
    for name in (
        "open", "exec", "eval", "compile", "getattr", "setattr", "delattr", "__import__",
        "globals", "locals", "vars", "input", "breakpoint", "print", "memoryview", "type",
    )
}  # fmt: skip
DANGEROUS_MODULES = {
    "os", "sys", "subprocess", "io", "pickle", "ctypes", "importlib", "shutil", "inspect",
    "operator", "socket", "signal", "posix", "gc", "pathlib", "tempfile", "runpy", "marshal",
    "threading", "multiprocessing", "_io", "_pickle", "_ctypes", "_socket", "_signal",
}  # fmt: skip
FRAME_TYPES = (types.FrameType, types.CodeType, types.TracebackType)


def _finding(obj: Any, views: set[int]) -> str | None:
    if isinstance(obj, types.ModuleType):
        return None if id(obj) in views else f"module {obj.__name__}"
    if isinstance(obj, FRAME_TYPES):
        return type(obj).__name__
    if id(obj) in DANGEROUS_BUILTINS:
        return f"builtin {obj.__name__}"
    module = getattr(obj, "__module__", None) if callable(obj) else None
    if isinstance(module, str) and module.split(".")[0] in DANGEROUS_MODULES:
        return f"callable from {module}"
    return None


def reachable_dangers(
    roots: Iterable[tuple[str, Any]], forbidden: Iterable[str], views: set[int]
) -> dict[str, str]:
    """Path -> what is dangerous there, for every dangerous object within DEPTH attributes."""
    skip = set(forbidden)
    seen: set[int] = set()
    found: dict[str, str] = {}
    queue = collections.deque((path, obj, 0) for path, obj in roots)
    while queue:
        path, obj, depth = queue.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        what = _finding(obj, views)
        if what is not None:
            found[path] = what
            continue
        if depth == DEPTH:
            continue
        try:
            names = dir(obj)
        except Exception:  # noqa: BLE001 - an object whose dir() fails has nothing to walk
            continue
        for name in names:
            if name.startswith("_") or name in skip:
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # noqa: BLE001 - properties may raise; nothing reached then
                continue
            if not isinstance(value, (int, float, complex, str, bytes, bool, type(None))):
                queue.append((f"{path}.{name}", value, depth + 1))
    return found


def _program_roots(tmp_path: Path) -> list[tuple[str, Any]]:
    """Everything a reward program starts from: its modules, builtins and real arguments."""
    job = CandidateJob(task="hopper", out_dir=str(tmp_path), smoke_states=2)
    state, action, prev_state = record_smoke_samples(load_task("hopper"), job)[-1]
    return [
        ("np", MODULE_VIEWS["numpy"]),
        ("math", MODULE_VIEWS["math"]),
        *((name, value) for name, value in SAFE_BUILTINS.items() if not name.startswith("_")),
        ("state", state),
        ("prev_state", prev_state),
        ("action", action),
        ("rng", np.random.default_rng(0)),
        ("array", np.zeros(3)),
        ("scalar", np.float64(1.0)),
        ("vectorized", np.vectorize(abs)),
        ("masked_errstate", np.errstate()),
    ]


def test_nothing_dangerous_is_reachable_from_a_reward_program(tmp_path: Path) -> None:
    views = {id(v) for v in MODULE_VIEWS.values()}
    found = reachable_dangers(_program_roots(tmp_path), FORBIDDEN_ATTRIBUTES, views)
    assert found == {}


def test_the_walk_finds_builtins_in_the_real_numpy() -> None:
    numpy_modules = {id(m) for m in list(sys.modules.values()) if m.__name__.startswith("numpy")}
    found = reachable_dangers([("np", np)], forbidden=(), views=numpy_modules)
    assert found.get("np.ma.core.builtins") == "module builtins"
    assert "module operator" in found.values()
