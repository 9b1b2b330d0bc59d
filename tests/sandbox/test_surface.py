"""The reward program surface: what it holds, what its functions refuse to build, its messages."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.surface import (
    NAMESPACES,
    NUMERIC_DTYPE_NAMES,
    RewardNamespace,
    allowed_names,
    guard,
    is_numeric_dtype_string,
    names_of,
)

np_ = NAMESPACES["numpy"]
ENVS = Path(__file__).resolve().parents[2] / "envs"
# what Eureka-style reward code reaches for; each must be on the surface of this numpy
EUREKA_NAMES = (  # noqa: SIM905 - a sentence of names reads better than 50 quoted strings
    "array asarray zeros ones zeros_like ones_like full arange linspace eye stack concatenate "
    "hstack vstack clip where exp log sqrt tanh sin cos arctan2 abs square power sum mean max "
    "min argmax prod cumsum dot cross minimum maximum sign isfinite isnan pi e inf float32 "
    "float64 int32 int64 bool_ linalg ndarray"
).split()


def test_the_surface_holds_what_reward_code_uses() -> None:
    assert set(EUREKA_NAMES) <= allowed_names("numpy")
    assert {"norm", "det", "inv", "solve", "eigvalsh"} <= allowed_names("numpy.linalg")
    assert {n for n in dir(math) if not n.startswith("_")} <= allowed_names("math") | {"fma"}
    assert 200 < len(allowed_names("numpy")) < 300  # an allowlist, not numpy minus a denylist


def _surface_chains(expr: str) -> list[tuple[str, str]]:
    """(namespace, name) for each ``np.x`` / ``np.linalg.x`` / ``math.x`` in ``expr``."""
    chains = []
    for node in ast.walk(ast.parse(expr)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = {"np": "numpy", "math": "math"}.get(node.value.id)
            if module is not None:
                chains.append((module, node.attr))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "np"
            and node.value.attr == "linalg"
        ):
            chains.append(("numpy.linalg", node.attr))
    return chains


@pytest.mark.parametrize("path", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_seed_term_of_every_task_uses_only_the_surface(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())
    exprs = [*(spec.get("seed_terms") or {}).values(), spec.get("sparse_reward") or "0"]
    for expr in exprs:
        for module, name in _surface_chains(str(expr)):
            assert name in allowed_names(module), f"{path.stem}: {module}.{name} in {expr!r}"


@pytest.mark.parametrize(
    "build",
    [
        lambda: np_.array(["1e300"]),
        lambda: np_.array([b"1e300"]),
        lambda: np_.asarray([None]),
        lambda: np_.zeros(2, [("p", "O")]),
        lambda: np_.zeros(2, "V8"),
        lambda: np_.full(1, "x"),
        lambda: np_.where([True], ["a"], ["b"]),
        lambda: np_.concatenate([np_.zeros(1), ["a"]]),
        lambda: np_.array([{}]),
        lambda: np_.stack([np_.zeros(1)], dtype="U3"),
        lambda: np_.add.outer(np_.zeros(1), np_.zeros(1), dtype="O"),
    ],
)
def test_numpy_calls_cannot_build_object_string_bytes_or_void_arrays(build: Any) -> None:
    with pytest.raises(RewardCodeError, match=r"produced an array of dtype .*only build numeric"):
        build()


def test_results_of_every_kind_are_checked() -> None:
    assert np_.unique(np_.arange(3), return_counts=True)[1].tolist() == [1, 1, 1]
    assert np_.linalg.eigvals(np_.eye(2)).tolist() == [1.0, 1.0]  # complex allowed, not here
    assert np_.shape(np_.zeros((2, 3))) == (2, 3)
    assert np_.maximum.reduce(np_.array([1.0, 3.0, 2.0])) == 3.0
    assert np_.add.outer(np_.arange(2), np_.arange(2)).tolist() == [[0, 1], [1, 2]]
    assert np_.finfo(np_.float32).eps == np.finfo(np.float32).eps
    with pytest.raises(RewardCodeError, match=r"np\.add\.reduce produced an array of dtype object"):
        np_.add.reduce(np_.zeros((2, 2)), 0, "O")
    odd = guard(lambda: {"not": "numeric"}, "np.odd")
    with pytest.raises(RewardCodeError, match=r"np\.odd returned a dict, not a numeric result"):
        odd()


def test_ndarray_is_for_isinstance_only() -> None:
    assert isinstance(np.zeros(2), np_.ndarray)
    assert not isinstance([1.0], np_.ndarray)
    with pytest.raises(RewardCodeError, match=r"np\.ndarray\(\.\.\.\) is not available"):
        np_.ndarray((1,), [("p", "O")], np.zeros(8, np.uint8))


def test_namespaces_are_read_only_and_not_modules() -> None:
    with pytest.raises(AttributeError, match="np is read-only"):
        np_.mean = len
    with pytest.raises(AttributeError, match="math is read-only"):
        del NAMESPACES["math"].sqrt
    assert np.mean is not len and math.sqrt(4.0) == 2.0
    assert all(isinstance(ns, RewardNamespace) for ns in NAMESPACES.values())
    assert repr(np_).startswith("<np: 2") and "linalg" in names_of(np_)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("random", r"^np\.random is not available to reward programs: a reward must be a "),
        ("empty", r"^np\.empty is not available .*uninitialised memory; use np\.zeros$"),
        (
            "sun",
            r"^np\.sun is not available .*; did you mean np\.sum.*\(allowed: array, .*names\)$",
        ),
        ("test", r"^np\.test is not available to reward programs: it is numpy's pytest runner"),
        ("ma", r"^np\.ma is not available to reward programs; did you mean np\.max"),
        ("frombuffer", r"^np\.frombuffer is not available to reward programs \(allowed: array"),
    ],
)
def test_missing_names_say_what_is_available(name: str, message: str) -> None:
    with pytest.raises(AttributeError, match=message):
        getattr(np_, name)


@pytest.mark.parametrize(
    ("text", "numeric"),
    [
        ("float32", True), ("f8", True), ("<i4", True), ("bool", True), ("uint8", True),
        ("int", True), ("O", False), ("object", False), ("U5", False), ("S8", False),
        ("V8", False), ("str", False), ("complex", False), ("M8", False), ("(2,)f8", False),
        ("p,O", False), ("", False), ("f" * 40, False),
    ],
)  # fmt: skip
def test_numeric_dtype_strings(text: str, numeric: bool) -> None:
    assert is_numeric_dtype_string(text) is numeric


def test_numeric_dtype_names_are_numeric() -> None:
    for name in NUMERIC_DTYPE_NAMES - {"float", "int", "bool"}:
        assert np.dtype(getattr(np, name)).kind in "biuf", name
