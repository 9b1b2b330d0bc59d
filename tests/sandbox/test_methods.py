"""The method allowlist: every array, number and container attribute off it is refused statically."""

from __future__ import annotations

import numpy as np
import pytest

from rewardgen.errors import RewardCodeError, TaskError
from rewardgen.sandbox.methods import (
    ALLOWED_ATTRIBUTES,
    ARRAY_ATTRIBUTES,
    ARRAY_METHODS,
    REFUSED_BECAUSE,
    RESERVED_NAMES,
    attribute_refusal,
)
from rewardgen.sandbox.program import check_reward_output, load_program
from rewardgen.sandbox.validate import check_source
from rewardgen.tasks.spec import load_task, parse_task, task_names

FIELDS = ("joint_angles", "x_velocity")
# in-place writers, reallocators, raw-memory and serialising members: never on the allowlist
DANGEROUS = (
    "resize", "put", "fill", "sort", "partition", "byteswap", "setflags", "itemset", "setfield",
    "getfield", "view", "flat", "ctypes", "data", "base", "tofile", "dump", "dumps", "tobytes",
    "flags", "strides", "choose", "device", "to_device",
)  # fmt: skip


def _program(line: str) -> str:
    return (
        "import numpy as np\n\n\ndef compute_reward(state, action, prev_state):\n"
        f"    x = np.zeros(3)\n    {line}\n    return 0.0, {{}}\n"
    )


def test_no_dangerous_member_is_allowed() -> None:
    assert not ALLOWED_ATTRIBUTES & set(DANGEROUS)
    assert set(ARRAY_METHODS + ARRAY_ATTRIBUTES) <= set(dir(np.ndarray))


PUBLIC_ARRAY_MEMBERS = sorted(
    n
    for t in (np.ndarray, np.float64, np.dtype, np.flatiter)
    for n in dir(t)
    if not n.startswith("_") and n not in ALLOWED_ATTRIBUTES
)


@pytest.mark.parametrize("name", PUBLIC_ARRAY_MEMBERS)
def test_every_array_member_off_the_allowlist_is_refused(name: str) -> None:
    for fields in (None, FIELDS):
        with pytest.raises(RewardCodeError, match=rf"\.{name}\b|'{name}'"):
            check_source(_program(f"y = x.{name}"), state_fields=fields)


@pytest.mark.parametrize("name", sorted(REFUSED_BECAUSE))
def test_refusals_say_why_and_what_to_use(name: str) -> None:
    why = attribute_refusal(name, FIELDS)
    assert why is not None and REFUSED_BECAUSE[name] in why


def test_a_method_numpy_might_add_is_refused_by_default() -> None:
    # not a member of anything reachable today: still refused when the task's fields are known
    with pytest.raises(RewardCodeError, match=r"\.to_cupy is not on the reward-program allowlist"):
        check_source(_program("y = x.to_cupy()"), state_fields=FIELDS)
    # where the task is unknown, only names no reachable type defines pass (as a field name)
    check_source(_program("y = state.to_cupy"), state_fields=None)


def test_state_fields_are_the_only_other_attributes() -> None:
    ok = "y = state.joint_angles.sum() + prev_state.x_velocity"
    check_source(_program(ok), state_fields=FIELDS)
    with pytest.raises(
        RewardCodeError, match=r"\.torso_height is not on .*no State field of this task"
    ):
        check_source(_program("y = state.torso_height"), state_fields=FIELDS)


def test_a_state_field_may_not_shadow_a_method() -> None:
    assert attribute_refusal("resize", ("resize",)) is not None
    raw = {
        "env_id": "InvertedPendulum-v5",
        "description": "balance",
        "state": [{"name": "resize", "source": "qpos[0]"}],
        "fitness": {"aggregate": "duration"},
    }
    with pytest.raises(TaskError, match=r"state field name 'resize' is also the name of an array"):
        parse_task(raw, "shadow")


def test_no_builtin_task_field_is_a_reserved_name() -> None:
    for name in task_names():
        assert not set(load_task(name).state_names) & RESERVED_NAMES, name


def test_allowed_methods_run_on_real_arrays() -> None:
    source = (
        "import numpy as np\n\n\ndef compute_reward(state, action, prev_state):\n"
        "    q = state.joint_angles\n"
        "    a = np.asarray(action, dtype=float)\n"
        "    parts = {'sum': q.sum(), 'mean': q.mean(), 'max': q.max(), 'min': q.min()}\n"
        "    parts['std'] = q.std() + q.var() + q.prod() + q.cumsum()[-1] + q.cumprod()[-1]\n"
        "    parts['shape'] = float(q.shape[0] + q.ndim + q.size + q.T.size + q.real.sum())\n"
        "    parts['dot'] = float(q.dot(a) + q.reshape(3, 1).ravel().flatten().copy().sum())\n"
        "    parts['clip'] = float(q.clip(-1, 1).round(2).astype(np.float32).sum())\n"
        "    parts['arg'] = float(q.argmax() + q.argmin() + q.argsort()[0] + q.take([0])[0])\n"
        "    parts['eps'] = float(np.finfo(np.float32).eps + np.maximum.reduce(q))\n"
        "    parts['eig'] = float(np.linalg.eigh(np.eye(2)).eigenvalues.sum())\n"
        "    parts['item'] = q.all() + q.any() + q.item(0) + len(q.tolist()) + q.nonzero()[0].size\n"
        "    vals = [v for v in parts.values()]\n"
        "    vals.append(0.0)\n"
        "    total = sum(parts.get(k, 0.0) for k in parts.keys())\n"
        "    return float(total), {k: float(v) for k, v in parts.items()}\n"
    )
    fn = load_program(source, state_fields=load_task("hopper").state_names).fn

    class View:
        joint_angles = np.array([0.1, -0.2, 0.3])
        x_velocity = 1.0

    total, parts = check_reward_output(fn(View, np.ones(3), View))
    assert np.isfinite(total) and len(parts) == 12
