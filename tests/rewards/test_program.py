"""load_program against the allowlisted surface, and check_reward_output against non-numbers."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from typing import Any, NamedTuple

import numpy as np
import pytest

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.program import SAFE_BUILTINS, check_reward_output, load_program
from rewardgen.sandbox.surface import NAMESPACES


class State(NamedTuple):
    x_velocity: float
    joint_angles: np.ndarray


STATE = State(1.5, np.array([0.1, -0.2, 0.3]))
ACTION = np.array([0.5, -0.5, 1.0], dtype=np.float32)
RETURN = "    return float(total), {'total': float(total)}\n"


@pytest.fixture
def static_check_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load programs as if the static check had let them through (it now resolves ``m = np``
    aliases and refuses unknown attributes), to test the next layer, the surface, on its own."""
    import ast

    import rewardgen.sandbox.program as program

    monkeypatch.setattr(program, "check_source", lambda source, *args: ast.parse(source))


def _run(source: str) -> tuple[float, dict[str, float]]:
    return check_reward_output(load_program(source).fn(STATE, ACTION, STATE))


@pytest.mark.parametrize(
    ("imports", "expression"),
    [
        ("import numpy as np", "np.linalg.norm(state.joint_angles)"),
        ("import numpy", "numpy.linalg.norm(state.joint_angles)"),
        ("import numpy.linalg", "numpy.linalg.norm(state.joint_angles)"),
        ("import numpy.linalg as la", "la.norm(state.joint_angles)"),
        ("from numpy import linalg", "linalg.norm(state.joint_angles)"),
        ("from numpy.linalg import norm", "norm(state.joint_angles)"),
        ("from numpy import float32, clip", "clip(float32(2.5), 0.0, 1.0)"),
        ("import math", "math.tanh(state.x_velocity)"),
        ("from math import tanh, pi", "tanh(pi)"),
        ("import numpy as np", "np.maximum.reduce(np.abs(action.astype(np.float64)))"),
        ("import numpy as np", "np.sum(action, 0, float) + action.sum(0, 'float32')"),
        ("", "np.exp(-math.fabs(state.x_velocity))"),  # bound without import, as LLMs assume
    ],
)
def test_every_import_form_of_the_surface_loads_and_runs(imports: str, expression: str) -> None:
    source = f"{imports}\n\ndef compute_reward(state, action, prev_state):\n"
    source += f"    total = {expression}\n" + RETURN
    total, components = _run(source)
    assert math.isfinite(total) and components == {"total": total}


def test_numpy_internal_imports_from_a_reward_frame_work_in_a_fresh_process() -> None:
    # x.sum(0, float) and f"{array}" make numpy's C code import numpy._core modules on first use,
    # through the __import__ of the calling (reward) frame; a fresh process has not cached them
    script = textwrap.dedent(
        """
        import numpy as np
        from rewardgen.sandbox.program import load_program
        source = (
            "def compute_reward(state, action, prev_state):\\n"
            "    text = f'{action}'\\n"
            "    return float(action.sum(0, float) + action.mean() + len(text) * 0), {}\\n"
        )
        print(load_program(source).fn(None, np.ones(3), None)[0])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "4.0"


def test_the_import_refuses_what_the_surface_lacks() -> None:
    restricted = SAFE_BUILTINS["__import__"]
    with pytest.raises(ImportError, match=r"^np\.test is not available to reward programs: it is"):
        restricted("numpy", None, None, ("test",), 0)
    with pytest.raises(ImportError, match=r"^np\.linalg\.test is not available"):
        restricted("numpy.linalg", None, None, ("test",), 0)
    with pytest.raises(ImportError, match=r"import of 'numpy\.random' is not available in reward"):
        restricted("numpy.random", None, None, None, 0)
    with pytest.raises(ImportError, match=r"import of 'os' is not available in reward code"):
        restricted("os", None, None, None, 0)
    assert restricted("numpy", None, None, None, 0) is NAMESPACES["numpy"]
    # numpy's C code importing its own module: imported, but nothing handed back
    assert restricted("numpy._core._methods", {}, {}, [], 0) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # an alias the static check missed: the namespace itself refuses
        ("NP = np\nRUN = NP.test\n", r"AttributeError: np\.test is not available"),
        ("LA = np.linalg\nRUN = LA.test\n", r"AttributeError: np\.linalg\.test is not available"),
        ("NP = np\nSEED = NP.random\n", r"np\.random is not available .*deterministic"),
        ("NP = np\nBAD = NP.array(['1e300'])\n", r"np\.array produced an array of dtype <U5"),
        ("NP = np\nRAW = NP.ndarray((1,), [('p', 'O')])\n", r"np\.ndarray\(\.\.\.\) is not"),
    ],
)
@pytest.mark.usefixtures("static_check_missed")
def test_load_time_attacks_past_the_static_check_fail_at_load(body: str, message: str) -> None:
    source = body + "\ndef compute_reward(state, action, prev_state):\n    return 0.0, {}\n"
    with pytest.raises(RewardCodeError, match=r"^defining the program failed: .*" + message):
        load_program(source)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("alias.array(['1e300'])", r"np\.array produced an array of dtype <U5"),
        ("alias.asarray([len, 1.0])", r"np\.asarray produced an array of dtype object"),
        ("alias.zeros(1, spec)", r"np\.zeros produced an array of dtype \[\('p', 'O'\)\]"),
        ("alias.full(1, b'1')", r"np\.full produced an array of dtype \|S1"),
        ("alias.random.seed(0)", r"np\.random is not available"),
        ("alias.printoptions(precision=1)", r"np\.printoptions is not available"),
        ("alias.errstate(all='ignore')", r"np\.errstate is not available"),
        ("alias.dtype('O')", r"np\.dtype is not available .*dtype name instead"),
        ("alias.linalg.test()", r"np\.linalg\.test is not available"),
    ],
)
@pytest.mark.usefixtures("static_check_missed")
def test_call_time_attacks_past_the_static_check_raise(expression: str, message: str) -> None:
    source = (
        "import numpy as np\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    alias = np\n"
        "    spec = [('p', 'O')]\n"
        f"    total = {expression}\n" + RETURN
    )
    fn = load_program(source).fn
    with pytest.raises((RewardCodeError, AttributeError), match=message):
        fn(STATE, ACTION, STATE)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.array(["1e300"]), r"^total reward has dtype <U5; return a number"),
        (np.array([b"1e300"]), r"^total reward has dtype \|S5"),
        (np.array([1.0], dtype=object), r"^total reward has dtype object"),
        (np.zeros(1, dtype=[("p", "f8")]), r"^total reward has dtype \[\('p', '<f8'\)\]"),
        (np.zeros((), dtype="V8"), r"^total reward has dtype \|V8"),
        (np.zeros(1, dtype="M8[s]"), r"^total reward has dtype datetime64\[s\]"),
        (np.str_("1.5"), r"^total reward has dtype <U3"),
        (np.bytes_(b"1.5"), r"^total reward has dtype \|S3"),
        (np.array([1 + 2j]), r"^total reward is complex"),
    ],
)
def test_output_check_rejects_non_numeric_dtypes(value: Any, message: str) -> None:
    with pytest.raises(RewardCodeError, match=message):
        check_reward_output((value, {}))
    with pytest.raises(RewardCodeError, match=message.replace("total reward", "component 'a'")):
        check_reward_output((1.0, {"a": value}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.array([True]), 1.0),
        (np.uint8(7), 7.0),
        (np.int64(-3), -3.0),
        (np.array([2.5], dtype=np.float32), 2.5),
        (np.float16(0.5), 0.5),
    ],
)
def test_output_check_accepts_numeric_dtypes(value: Any, expected: float) -> None:
    assert check_reward_output((value, {"a": value})) == (expected, {"a": expected})
