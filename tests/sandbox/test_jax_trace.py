"""Reward programs traced with np bound to jax.numpy: good ones export, bad ones say why."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from rewardgen.errors import RewardCodeError
from rewardgen.llm.offline import render_program
from rewardgen.sandbox.jax_surface import JAX_NAMESPACES
from rewardgen.sandbox.jax_trace import export_reward, load_traceable
from rewardgen.sandbox.program import load_program
from rewardgen.tasks.spec import load_task
from rewardgen.train.mjx_state import mjx_state_view

GOOD = """
import numpy as np

def compute_reward(state, action, prev_state):
    forward = state.x_velocity
    healthy = np.where((state.torso_height > 0.7) & (np.abs(state.torso_angle) < 0.2), 1.0, 0.0)
    ctrl = -np.sum(np.square(action))
    return forward + healthy + 1e-3 * ctrl, {"forward": forward, "healthy": healthy, "ctrl": ctrl}
"""


@pytest.fixture(scope="module")
def hopper_view():
    task = load_task("hopper")
    env = task.make_env()
    view = mjx_state_view(task.state, env.unwrapped.model, float(env.unwrapped.dt))
    env.close()
    return view


def _export(source: str, view) -> bytes:
    return export_reward(load_traceable(source), view.zeros(), 3)


def test_an_array_style_program_exports_and_matches_numpy(hopper_view) -> None:
    blob = _export(GOOD, hopper_view)
    exported = export.deserialize(bytearray(blob))
    assert exported.platforms == ("cpu", "cuda")
    rng = np.random.default_rng(0)
    states = tuple(
        jnp.asarray(rng.normal(size=(5, *s)).astype(np.float32)) for s in hopper_view.shapes
    )
    actions = jnp.asarray(rng.normal(size=(5, 3)).astype(np.float32))
    total, parts = exported.call(states, actions, states)
    assert sorted(parts) == ["ctrl", "forward", "healthy"]
    numpy_fn = load_program(GOOD).fn  # the same program still runs on numpy
    for i in range(5):
        state = hopper_view.state_class(*(np.asarray(s[i], np.float64) for s in states))
        expected, _ = numpy_fn(state, np.asarray(actions[i]), state)
        assert float(total[i]) == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            "    h = 1.0 if state.torso_height > 0.7 else 0.0\n    return h, {}",
            r"line 3: use np.where\(cond, a, b\).*\(TracerBoolConversionError\)",
        ),
        (
            "    if state.x_velocity > 0:\n        return 1.0, {}\n    return 0.0, {}",
            r"line 3: use np.where.*instead of if",
        ),
        (
            "    return -float(np.sum(np.square(action))), {}",
            r"line 3: keep values as arrays: no float\(\).*\(ConcretizationTypeError\)",
        ),
        (
            "    return math.exp(state.x_velocity) + max(state.x_velocity, 0.0), {}",
            r"line 3: use np.where.*builtin max/min",
        ),
        (
            "    a = np.zeros(3)\n    a[0] = state.x_velocity\n    return a[0], {}",
            r"line 4: build a new array .* instead of assigning items",
        ),
        ("    return np.sum(action[action > 0]), {}", r"line 3: use np.where\(mask, x, 0.0\)"),
        ("    return action, {}", r"total reward has shape \(3,\); return a scalar per state"),
        (
            "    return np.nonzero(action)[0][0], {}",
            r"np.nonzero is not available .* depends on the "
            r"values",
        ),
        ("    return state.__class__, {}", r"attribute '__class__' is not allowed"),
    ],
)
def test_untraceable_or_forging_programs_are_rejected_with_the_fix(
    hopper_view, body: str, match: str
) -> None:
    source = f"import math\ndef compute_reward(state, action, prev_state):\n{body}\n"
    with pytest.raises(RewardCodeError, match=match):
        _export(source, hopper_view)


def test_a_host_callback_is_refused(hopper_view) -> None:
    def calls_back(state, action, prev_state):
        value = jax.pure_callback(
            lambda x: np.asarray(x, np.float32),
            jax.ShapeDtypeStruct((), jnp.float32),
            state.x_velocity,
        )
        return value, {}

    with pytest.raises(RewardCodeError, match="calls back to the host"):
        export_reward(calls_back, hopper_view.zeros(), 3)


def test_the_jax_namespace_keeps_the_allowlist() -> None:
    np_view = JAX_NAMESPACES["numpy"]
    with pytest.raises(AttributeError, match="np.unique is not available .* under rl=brax_ppo"):
        _ = np_view.unique
    with pytest.raises(AttributeError, match="np.random is not available"):
        _ = np_view.random
    assert float(jax.jit(lambda x: JAX_NAMESPACES["math"].exp(x))(0.0)) == 1.0


@pytest.mark.parametrize(
    "name",
    [
        "hopper",
        "walker2d",
        "half_cheetah",
        "hopper_backflip",
        "walker2d_one_leg_hop",
        "half_cheetah_front_leg_stand",
    ],
)
def test_the_offline_seed_terms_trace(name: str) -> None:
    task = load_task(name)
    env = task.make_env()
    view = mjx_state_view(task.state, env.unwrapped.model, float(env.unwrapped.dt))
    action_size = int(env.action_space.shape[0])
    env.close()
    source = render_program({term: 1.0 for term in task.seed_terms}, task.seed_terms)
    export_reward(load_traceable(source), view.zeros(), action_size)
    load_program(source)  # and it stays a valid numpy program
