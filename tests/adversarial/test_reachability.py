"""What reward code can reach by attribute access alone, from everything in its namespace.

The static check forbids names, so whatever a program can touch is a chain of public attribute
names starting at its arguments, builtins and the surface namespaces (``np``, ``math``). This
walks those chains breadth-first (a few levels deep, skipping the names the check forbids) and
fails on anything that opens the host: any module at all, the interpreter's dangerous builtins,
frames or code objects, functions of os/sys/subprocess/..., numpy's pytest runners
(``np.test``), its global RNG setters and print options. The same walk from the real numpy,
without the forbidden names, finds ``numpy.ma.core.builtins`` and ``np.test``: the walk works.
"""

from __future__ import annotations

import builtins
import collections
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox.program import SAFE_BUILTINS
from rewardgen.sandbox.surface import NAMESPACES
from rewardgen.sandbox.validate import FORBIDDEN_ATTRIBUTES
from rewardgen.tasks.spec import load_task
from rewardgen.worker.train import record_smoke_samples

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
# numpy's global state: the legacy RNG, error handling, print options, buffer size
DANGEROUS_NUMPY = {
    id(f)
    for f in (
        np.random.seed, np.random.set_state, np.seterr, np.seterrcall, np.set_printoptions,
        np.setbufsize, np.frombuffer, np.fromfile, np.load, np.save, np.ndarray, np.dtype,
    )
}  # fmt: skip


def _finding(obj: Any, walk_package: str | None) -> str | None:
    if isinstance(obj, types.ModuleType):
        if walk_package is not None and obj.__name__.split(".")[0] == walk_package:
            return None
        return f"module {obj.__name__}"
    if isinstance(obj, FRAME_TYPES):
        return type(obj).__name__
    if id(obj) in DANGEROUS_BUILTINS:
        return f"builtin {obj.__name__}"
    if id(obj) in DANGEROUS_NUMPY:
        return f"numpy global or raw-memory door {getattr(obj, '__name__', obj)!r}"
    if type(obj).__name__ == "PytestTester":
        return "numpy test runner"
    module = getattr(obj, "__module__", None) if callable(obj) else None
    if isinstance(module, str) and module.split(".")[0] in DANGEROUS_MODULES:
        return f"callable from {module}"
    return None


def reachable_dangers(
    roots: Iterable[tuple[str, Any]], forbidden: Iterable[str], walk_package: str | None = None
) -> dict[str, str]:
    """Path -> what is dangerous there, for every dangerous object within DEPTH attributes.

    Any module is a finding, except those of ``walk_package``, which are walked into.
    """
    skip = set(forbidden)
    seen: set[int] = set()
    found: dict[str, str] = {}
    queue = collections.deque((path, obj, 0) for path, obj in roots)
    while queue:
        path, obj, depth = queue.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        what = _finding(obj, walk_package)
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
    """Everything a reward program starts from: its namespaces, builtins and real arguments,
    and the objects the surface's functions return (arrays, named tuples, machine limits)."""
    job = CandidateJob(task="hopper", out_dir=str(tmp_path), smoke_states=2)
    state, action, prev_state = record_smoke_samples(load_task("hopper"), job)[-1]
    surface = NAMESPACES["numpy"]
    matrix = surface.eye(3) + 0.5
    return [
        ("np", surface),
        ("math", NAMESPACES["math"]),
        *((name, value) for name, value in SAFE_BUILTINS.items() if not name.startswith("_")),
        ("state", state),
        ("prev_state", prev_state),
        ("action", action),
        ("array", surface.zeros(3)),
        ("bool_array", surface.isfinite(surface.zeros(3))),
        ("scalar", surface.float64(1.0)),
        ("dtype", surface.zeros(3).dtype),
        ("eig", surface.linalg.eig(matrix)),
        ("svd", surface.linalg.svd(matrix)),
        ("unique", surface.unique(surface.arange(4), return_counts=True)),
        ("finfo", surface.finfo(surface.float32)),
        ("iinfo", surface.iinfo(surface.int32)),
    ]


def test_nothing_dangerous_is_reachable_from_a_reward_program(tmp_path: Path) -> None:
    roots = _program_roots(tmp_path)
    found = reachable_dangers(roots, FORBIDDEN_ATTRIBUTES)
    assert found == {}


def test_the_surface_namespaces_hold_no_module_and_no_runner() -> None:
    for namespace in NAMESPACES.values():
        for name in dir(namespace):
            if name.startswith("_"):
                continue
            value = getattr(namespace, name)
            assert not isinstance(value, types.ModuleType), name
            assert type(value).__name__ != "PytestTester", name
    surface = NAMESPACES["numpy"]
    for name in (
        "test",
        "random",
        "testing",
        "lib",
        "ma",
        "rec",
        "char",
        "strings",
        "ctypeslib",
        "frombuffer",
        "set_printoptions",
        "seterr",
        "dtype",
        "empty",
        "vectorize",
    ):
        with pytest.raises(AttributeError, match=rf"np\.{name} is not available"):
            getattr(surface, name)
    with pytest.raises(AttributeError, match=r"np\.linalg\.test is not available"):
        surface.linalg.test  # noqa: B018 - the attribute access is what is tested


def test_the_walk_finds_builtins_and_test_runners_in_the_real_numpy() -> None:
    found = reachable_dangers([("np", np)], forbidden=(), walk_package="numpy")
    assert found.get("np.ma.core.builtins") == "module builtins"
    assert "module operator" in found.values()
    assert found.get("np.test") == "numpy test runner"
    assert found.get("np.linalg.test") == "numpy test runner"
    assert "numpy global or raw-memory door 'seed'" in found.values()
