"""The trusted evaluator's torch rebuild acts exactly as Brax's own deterministic policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks

from rewardgen.tasks.spec import load_task
from rewardgen.train.brax_policy import BraxPolicyNet, build_policy_model
from rewardgen.worker.brax_train import policy_tensors


def test_the_torch_rebuild_matches_brax_tanh_of_the_mean() -> None:
    obs_size, act_size = 11, 3
    network = ppo_networks.make_ppo_networks(
        obs_size,
        act_size,
        preprocess_observations_fn=running_statistics.normalize,
        policy_hidden_layer_sizes=(16, 16),
    )
    normalizer = running_statistics.init_state(jax.ShapeDtypeStruct((obs_size,), jnp.float32))
    rng = np.random.default_rng(0)
    batch = jnp.asarray(rng.normal(2.0, 3.0, size=(64, obs_size)).astype(np.float32))
    normalizer = running_statistics.update(normalizer, batch)
    params = (normalizer, network.policy_network.init(jax.random.PRNGKey(1)), None)
    policy = ppo_networks.make_inference_fn(network)(params, deterministic=True)
    obs = batch[:8]
    expected = np.asarray(policy(obs, jax.random.PRNGKey(0))[0])

    net = BraxPolicyNet(obs_size, act_size, (16, 16))
    net.load_state_dict(
        {k: torch.as_tensor(np.array(v)) for k, v in policy_tensors(params).items()}
    )
    got = net(torch.as_tensor(np.asarray(obs))).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_evaluator_shapes_the_policy_from_the_trusted_job() -> None:
    model = build_policy_model(
        load_task("hopper"), {"algo": "brax_ppo", "hyperparams": {"policy_hidden_layer_sizes": [8]}}
    )
    names = sorted(model.policy.state_dict())
    assert names == [
        "hidden_0.bias",
        "hidden_0.weight",
        "hidden_1.bias",
        "hidden_1.weight",
        "normalizer.mean",
        "normalizer.std",
    ]
    action, _ = model.predict(np.zeros(11, np.float32))
    assert action.shape == (3,) and np.all(np.abs(action) <= 1.0)
    with pytest.raises(RuntimeError, match="Missing key"):
        model.policy.load_state_dict({})
