"""smoke_test on states recorded from the real Hopper, with programs loaded the real way."""

from __future__ import annotations

import signal
import threading
from typing import Any

import numpy as np
import pytest

from rewardgen.errors import RewardCodeError, SandboxError
from rewardgen.sandbox.program import load_program
from rewardgen.sandbox.smoke import smoke_test
from rewardgen.tasks.spec import load_task

Sample = tuple[Any, Any, Any]


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    task = load_task("hopper")
    env = task.make_env()
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        builder = task.state_builder(env)
        prev = builder.build()
        out = []
        for _ in range(4):
            action = env.action_space.sample()
            env.step(action)
            state = builder.build()
            out.append((state, action, prev))
            prev = state
        return out
    finally:
        env.close()


def _fn(body: str, entry: str = "compute_reward") -> Any:
    return load_program("import numpy as np\nimport math\n\n" + body, entry).fn


GOOD = """
def compute_reward(state, action, prev_state):
    forward = state.x_velocity
    ctrl = -0.001 * float(np.sum(np.square(action)))
    upright = math.exp(-abs(state.torso_angle))
    return forward + ctrl + upright, {"forward": forward, "ctrl": ctrl, "upright": upright}
"""


def test_good_program_passes(samples: list[Sample]) -> None:
    smoke_test(_fn(GOOD), samples, call_timeout_s=1.0)


def test_good_progress_passes(samples: list[Sample]) -> None:
    fn = _fn(
        "def progress(state):\n    return min(1.0, max(0.0, state.x_position / 5.0))\n", "progress"
    )
    smoke_test(fn, samples, call_timeout_s=1.0, entry="progress")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "def compute_reward(state, action, prev_state):\n    return float('nan'), {}\n",
            r"^smoke test: total reward is not finite \(nan\) on recorded state 0$",
        ),
        (
            "def compute_reward(state, action, prev_state):\n"
            "    return 1.0, {'speed': np.inf * state.x_velocity}\n",
            r"^smoke test: component 'speed' is not finite \(-?inf\) on recorded state 0$",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return complex(1, 2), {}\n",
            r"^smoke test: total reward is complex .* on recorded state 0$",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return np.sqrt(-1 + 0j), {}\n",
            r"total reward is complex",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return 1.0\n",
            r"must return \(total, components\), got float on recorded state 0",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return state.joint_angles, {}\n",
            r"total reward is an array of shape \(3,\); return a scalar on recorded state 0",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return 1.0, [1.0]\n",
            r"components must be a dict, got list",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return 'high', {}\n",
            r"total reward is str, not a number",
        ),
        (
            "def compute_reward(state, action, prev_state):\n    return np.array(['1e300']), {}\n",
            r"^smoke test: raised RewardCodeError: np\.array produced an array of dtype <U5; .* "
            r"at line 5 on recorded state 0$",
        ),
    ],
)
def test_bad_outputs_are_rejected(samples: list[Sample], body: str, message: str) -> None:
    with pytest.raises(RewardCodeError, match=message):
        smoke_test(_fn(body), samples, call_timeout_s=1.0)


def test_failure_on_a_later_state_names_it(samples: list[Sample]) -> None:
    body = (
        "calls = [0]\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    calls[0] += 1\n"
        "    return (1.0 if calls[0] < 3 else float('inf')), {}\n"
    )
    with pytest.raises(RewardCodeError, match=r"not finite \(inf\) on recorded state 2$"):
        smoke_test(_fn(body), samples, call_timeout_s=1.0)


def test_raising_program_names_exception_and_line(samples: list[Sample]) -> None:
    body = (
        "def helper(x):\n"
        "    return x / 0\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    return helper(1), {}\n"
    )
    # the program's line 5 is "return x / 0" (three import/blank lines precede the body)
    with pytest.raises(
        RewardCodeError,
        match=r"^smoke test: raised ZeroDivisionError: division by zero at line 5 on recorded state 0$",
    ):
        smoke_test(_fn(body), samples, call_timeout_s=1.0)


def test_infinite_loop_hits_the_per_call_timeout(samples: list[Sample]) -> None:
    body = "def compute_reward(state, action, prev_state):\n    while True:\n        pass\n"
    previous = signal.getsignal(signal.SIGALRM)
    outer_timer = signal.getitimer(signal.ITIMER_REAL)  # pytest-timeout may run one
    with pytest.raises(
        RewardCodeError,
        match=r"^smoke test: compute_reward took longer than 0.2 s on recorded state 0$",
    ):
        smoke_test(_fn(body), samples, call_timeout_s=0.2)
    assert signal.getsignal(signal.SIGALRM) is previous
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    assert interval == outer_timer[1]
    assert outer_timer[0] - 1.0 < remaining <= outer_timer[0]  # the outer timer is restored


def test_progress_out_of_range(samples: list[Sample]) -> None:
    fn = _fn("def progress(state):\n    return 2.0\n", "progress")
    with pytest.raises(
        RewardCodeError, match=r"progress is 2.0, outside \[0, 1\] on recorded state 0"
    ):
        smoke_test(fn, samples, call_timeout_s=1.0, entry="progress")


def test_progress_of_a_non_numeric_dtype_is_rejected(samples: list[Sample]) -> None:
    # float(np.array(["0.5"])) is 0.5: the dtype, not float(), has to refuse it
    def progress(state: Any) -> Any:
        return np.array(["0.5"])

    with pytest.raises(
        RewardCodeError,
        match=r"^smoke test: progress must return a float in \[0, 1\], got dtype <U3 on recorded",
    ):
        smoke_test(progress, samples, call_timeout_s=1.0, entry="progress")


def test_slow_call_outside_the_main_thread_is_measured(samples: list[Sample]) -> None:
    body = (
        "def compute_reward(state, action, prev_state):\n"
        "    total = 0\n"
        "    for i in range(3_000_000):\n"
        "        total += i\n"
        "    return 0.0, {}\n"
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            smoke_test(_fn(body), samples[:1], call_timeout_s=0.01)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], RewardCodeError)
    assert "took longer than 0.01 s on recorded state 0" in str(errors[0])


def test_no_samples_is_a_caller_bug() -> None:
    with pytest.raises(SandboxError, match="at least one recorded state"):
        smoke_test(_fn(GOOD), [], call_timeout_s=1.0)
