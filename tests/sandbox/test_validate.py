"""The static policy: legit Eureka-style programs pass, every forbidden construct is named."""

from __future__ import annotations

import ast
from typing import Any, NamedTuple

import numpy as np
import pytest

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.program import check_reward_output, load_program
from rewardgen.sandbox.validate import check_source

EUREKA_STYLE = '''"""Reward for a forward-hopping robot."""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
from numpy.linalg import norm
from math import tanh

TARGET_SPEED: float = 2.0
WEIGHTS = {"forward": 1.0, "alive": 0.5, "ctrl": 0.01}


def _squash(x: float, scale: float = 1.0) -> float:
    """Bounded in (-1, 1)."""
    return math.tanh(x / scale)


def compute_reward(state, action: np.ndarray, prev_state) -> Tuple[float, Dict[str, float]]:
    """Forward progress, staying alive, cheap actions."""
    speed: float = state.x_velocity
    forward = WEIGHTS["forward"] * np.exp(-abs(speed - TARGET_SPEED))
    alive = WEIGHTS["alive"] * float(state.torso_height > 0.7)
    ctrl = -WEIGHTS["ctrl"] * float(np.linalg.norm(np.clip(action, -1.0, 1.0)) ** 2)
    joints = {f"joint_{i}": _squash(v) for i, v in enumerate(state.joint_angles)}
    lean = [abs(a) for a in state.joint_angles if a < 0]
    smooth = -0.1 * tanh(float(norm(state.joint_angles - prev_state.joint_angles)))
    label = "{}_{:.1f}".format("speed", TARGET_SPEED)
    components: dict[str, float] = {"forward": forward, "alive": alive, "ctrl": ctrl, "smooth": smooth}
    components[label] = 0.0
    total = sum(components.values()) + 0.0 * sum(lean) + 0.0 * sum(joints.values())
    return float(total), components
'''


class FakeState(NamedTuple):
    x_velocity: float
    torso_height: float
    joint_angles: np.ndarray


def test_eureka_style_program_passes_and_runs() -> None:
    program = load_program(EUREKA_STYLE)
    state = FakeState(1.0, 1.2, np.array([0.1, -0.2, 0.3]))
    prev = FakeState(0.9, 1.2, np.array([0.0, -0.1, 0.3]))
    total, components = check_reward_output(program.fn(state, np.ones(3), prev))
    assert set(components) == {"forward", "alive", "ctrl", "smooth", "speed_2.0"}
    assert total == pytest.approx(sum(components.values()))


def test_hints_and_hint_imports_are_stripped() -> None:
    tree = check_source(EUREKA_STYLE)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_reward")
    assert fn.returns is None and all(a.annotation is None for a in fn.args.args)
    assert not any(isinstance(n, ast.AnnAssign) for n in ast.walk(tree))
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert modules == ["numpy.linalg", "math"]


def test_progress_entry_passes() -> None:
    check_source("def progress(state):\n    return 0.5\n", entry="progress")


def test_lambda_and_nested_helpers_pass() -> None:
    src = (
        "def compute_reward(state, action, prev_state, scale=1.0):\n"
        "    sq = lambda v: v * v\n"
        "    def inner(x):\n"
        "        return sq(x) * scale\n"
        "    return inner(2.0), {'a': inner(1.0)}\n"
    )
    fn: Any = load_program(src).fn
    assert fn(None, None, None) == (4.0, {"a": 1.0})


def _prog(body: str) -> str:
    return body + "\n\ndef compute_reward(state, action, prev_state):\n    return 0.0, {}\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (_prog("import os"), r"import of 'os' is not allowed \(only numpy, math\)"),
        (_prog("import torch"), r"import of 'torch' is not allowed"),
        (_prog("from subprocess import run"), r"import from 'subprocess' is not allowed"),
        (_prog("from numpy import ctypeslib"), r"import of numpy.ctypeslib is not allowed"),
        (_prog("import numpy.lib.format"), r"import of 'numpy.lib.format' is not allowed"),
        (_prog("from numpy import *"), r"'from numpy import \*' is not allowed"),
        (_prog("from . import x"), r"import from None is not allowed"),
        (_prog("import numpy as _np"), r"import alias '_np' may not start with '_'"),
        (_prog("X = eval('1')"), r"name 'eval' is not allowed"),
        (_prog("X = exec"), r"name 'exec' is not allowed"),
        (_prog("X = open"), r"name 'open' is not allowed"),
        (_prog("X = getattr"), r"name 'getattr' is not allowed"),
        (_prog("X = __builtins__"), r"name '__builtins__' is not allowed"),
        (_prog("X = __import__"), r"name '__import__' is not allowed"),
        (_prog("X = (1).__class__"), r"attribute '__class__' is not allowed"),
        (_prog("X = (1)._private"), r"attribute '_private' is not allowed"),
        (_prog("import numpy as np\nX = np.load"), r"attribute 'load' is not allowed"),
        (_prog("import numpy as np\nX = np.ones(2).tofile"), r"attribute 'tofile' is not allowed"),
        (_prog("X = (i for i in []).gi_frame"), r"attribute 'gi_frame' is not allowed"),
        (_prog("X = (i for i in []).gi_code"), r"attribute 'gi_code' is not allowed"),
        (_prog("X = '__class__'"), r"string constants containing '__' are not allowed"),
        (_prog("X = b'__class__'"), r"string constants containing '__' are not allowed"),
        (_prog("X = '{0.real}'.format(1)"), r"format field '0.real' reads an attribute"),
        (_prog("S = '{}'\nX = S.format(1)"), r"'.format' is only allowed on a string literal"),
        (_prog("X = '{a}'.format_map({})"), r"attribute 'format_map' is not allowed"),
        (_prog("class A:\n    pass"), r"ClassDef statements are not allowed"),
        (_prog("def f():\n    global X\n    X = 1"), r"Global statements are not allowed"),
        (_prog("def f():\n    try:\n        pass\n    except Exception:\n        pass"), r"Try"),
        (_prog("def f(x):\n    with x:\n        pass"), r"With statements are not allowed"),
        (_prog("def f():\n    yield 1"), r"Yield statements are not allowed"),
        (_prog("async def f():\n    pass"), r"AsyncFunctionDef statements are not allowed"),
        (
            _prog("def f(x):\n    match x:\n        case int(real=r):\n            return r"),
            r"Match statements are not allowed",
        ),
        (_prog("def __init__():\n    pass"), r"function name '__init__' may not start with '__'"),
        (_prog("def f(__x):\n    return 1"), r"parameter name '__x' may not start with '__'"),
        (_prog("for i in range(3):\n    pass"), r"top-level For is not allowed"),
        (
            _prog("if __name__ == '__main__':\n    pass"),
            r"top-level If is not allowed.*remove any `if __name__ == '__main__':` test block",
        ),
        (_prog("compute_reward(1, 2, 3)"), r"top-level expressions other than docstrings"),
        (
            "def reward(state):\n    return 0.0, {}\n",
            r"no top-level function named 'compute_reward'",
        ),
        (
            "def compute_reward(s, a, p):\n    pass\ndef compute_reward(s, a, p):\n    pass\n",
            r"'compute_reward' is defined 2 times",
        ),
        (
            "def compute_reward(state, action):\n    return 0.0, {}\n",
            r"compute_reward must accept \(state, action, prev_state\); it takes 2 positional",
        ),
        (
            "def compute_reward(state, action, prev_state)\n    return 0\n",
            r"syntax error at line 1",
        ),
        ("x = 1\0\n", r"cannot be parsed|syntax error"),
        ("x = 1\n" * 20_000, r"keep it under 50000"),
    ],
)
def test_forbidden_constructs_are_named(source: str, message: str) -> None:
    with pytest.raises(RewardCodeError, match=message):
        check_source(source)


def test_rejection_names_the_line() -> None:
    with pytest.raises(RewardCodeError, match=r"^line 4: name 'open' is not allowed"):
        check_source(_prog("import math\n\n\nX = open"))


def _body(line: str) -> str:
    return (
        "import numpy as np\n\n"
        "def compute_reward(state, action, prev_state):\n"
        f"    {line}\n"
        "    return 0.0, {}\n"
    )


@pytest.mark.parametrize(
    "source",
    [
        _body("x = action.astype(np.float32) + action.astype('float32') + action.astype(float)"),
        _body("x = action.astype(action.dtype) + action.astype(dtype=np.int64)"),
        _body("x = np.zeros(3, dtype=np.float64) + np.ones(3, dtype=None) + np.full(3, 1, 'f8')"),
        _body("axis = 0\n    x = np.sum(action, axis) + np.mean(action, 0) + action.sum(0, float)"),
        _body("x = np.linalg.norm(action) + np.maximum.reduce(action) + np.ndarray"),
        _body("x = np.pi + np.e + np.inf * 0 + math.tau"),
        "import numpy as np\nimport numpy.linalg as la\nfrom numpy import linalg, float32\n"
        "from numpy.typing import NDArray\nimport numpy.typing as npt\n\n"
        "def compute_reward(state, action: NDArray[np.float64], prev_state: npt.ArrayLike):\n"
        "    x: np.typing.NDArray = la.norm(action) + linalg.det(np.eye(2)) + float32(1)\n"
        "    return float(x), {}\n",
    ],
)
def test_numeric_dtypes_and_the_surface_pass(source: str) -> None:
    load_program(source)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x = np.random.seed(0)", r"np\.random is not available to reward programs: a reward must"),
        ("x = np.test()", r"np\.test is not available to reward programs: it is numpy's pytest"),
        ("x = np.linalg.test()", r"np\.linalg\.test is not available to reward programs"),
        ("x = numpy.frombuffer", r"attribute 'frombuffer' is not allowed"),
        ("x = np.ma", r"np\.ma is not available to reward programs"),
        ("x = np.strings", r"np\.strings is not available to reward programs"),
        ("x = np.char", r"np\.char is not available to reward programs"),
        ("x = np.empty(3)", r"np\.empty is not available .*uninitialised memory"),
        ("x = np.dtype('O')", r"np\.dtype is not available .*dtype name instead"),
        ("x = np.vectorize(abs)", r"np\.vectorize is not available"),
        ("x = math.fsum if np.sun else 0", r"np\.sun is not available.*did you mean np\.sum"),
        ("x = action.view(np.uint8)", r"attribute 'view' is not allowed"),
        ("x = action.data", r"attribute 'data' is not allowed"),
        ("x = action.base", r"attribute 'base' is not allowed"),
        ("x = action.tobytes()", r"attribute 'tobytes' is not allowed"),
        ("x = action.dumps()", r"attribute 'dumps' is not allowed"),
        ("x = action.getfield(np.float32)", r"attribute 'getfield' is not allowed"),
        ("x = action.setfield(0, np.float32)", r"attribute 'setfield' is not allowed"),
        ("x = action.astype('O')", r"\.astype\(\): 'O' is not a numeric dtype"),
        ("x = action.astype(str)", r"\.astype\(\): str is not a numeric dtype"),
        ("x = action.astype(complex)", r"\.astype\(\): complex is not a numeric dtype"),
        ("d = 'U8'\n    x = action.astype(d)", r"\.astype\(\): d is not a numeric dtype"),
        ("x = action.astype(dtype='S8')", r"dtype='S8' is not a numeric dtype"),
        ("x = action.cumsum(0, 'O')", r"\.cumsum\(\): 'O' is not a numeric dtype"),
        ("x = action.trace(0, 0, 1, str)", r"\.trace\(\): str is not a numeric dtype"),
        (
            "x = action.astype(**{'dtype': 'O'})",
            r"pass the arguments of \.astype\(\) directly, without \* or \*\*",
        ),
        ("x = action.sum(*[0, 'O'])", r".*\.sum\(\) directly, without \* or \*\*"),
        ("x = np.zeros(1, dtype=[('p', 'O')])", r"dtype=\[\('p', 'O'\)\] is not a numeric dtype"),
        ("x = np.array(['1'], dtype='U1')", r"dtype='U1' is not a numeric dtype"),
        ("x = np.array([1], dtype=complex)", r"dtype=complex is not a numeric dtype"),
        ("int = str", r"name 'int' may not be rebound in reward code"),
        ("np = action", r"name 'np' may not be rebound in reward code"),
        ("x = [0 for float32 in range(2)]", r"name 'float32' may not be rebound"),
        ("x = lambda float: float", r"name 'float' may not be rebound"),
    ],
)
def test_surface_rules_are_named(line: str, message: str) -> None:
    with pytest.raises(RewardCodeError, match=r"^line \d+: " + message):
        check_source(_body(line))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (_prog("from numpy import test"), r"np\.test is not available to reward programs"),
        (_prog("from numpy.linalg import test"), r"np\.linalg\.test is not available"),
        (_prog("import numpy.random"), r"import of 'numpy\.random' is not available in reward"),
        (_prog("from numpy.random import seed"), r"import of 'numpy\.random' is not available"),
        (_prog("import numpy.ma as ma"), r"import of 'numpy\.ma' is not available in reward"),
        (_prog("from numpy import strings"), r"np\.strings is not available"),
        (_prog("from math import fooo"), r"math\.fooo is not available"),
    ],
)
def test_imports_outside_the_surface_are_named(source: str, message: str) -> None:
    with pytest.raises(RewardCodeError, match=r"^line 1: " + message):
        check_source(source)
