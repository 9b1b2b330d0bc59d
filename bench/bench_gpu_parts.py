"""The measuring parts of gpu_search.py, imported only once its dependencies are known present."""

from __future__ import annotations

import functools
import time
from typing import Any

from omegaconf import OmegaConf

from rewardgen.llm.offline import render_program
from rewardgen.resources import resource_dir
from rewardgen.sandbox.jax_trace import export_reward, load_traceable
from rewardgen.tasks.spec import load_task
from rewardgen.train.brax_config import train_kwargs
from rewardgen.train.brax_parity import fixed_policy
from rewardgen.worker.evaluate import run_episode

SMALL = {
    "num_envs": 4,
    "batch_size": 4,
    "num_minibatches": 2,
    "unroll_length": 4,
    "num_updates_per_batch": 1,
    "num_eval_envs": 2,
    "policy_hidden_layer_sizes": [8],
    "value_hidden_layer_sizes": [8],
}


def _exported_seed_reward(env: Any) -> Any:
    from jax import export

    task = env.task
    source = render_program({name: 1.0 for name in task.seed_terms}, task.seed_terms)
    blob = export_reward(load_traceable(source), env.state_view.zeros(), env.action_size)
    return export.deserialize(bytearray(blob))


def train_epochs(envs: int, per_epoch: int, small: bool) -> dict[str, float]:
    """Three training epochs of one hopper candidate; their timing."""
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    from rewardgen.train.mjx_env import MjxTaskEnv
    from rewardgen.worker.brax_train import _wrap_fn

    rl = OmegaConf.to_container(OmegaConf.load(resource_dir("conf") / "rl" / "brax_ppo.yaml"))
    rl["hyperparams"] = {**(SMALL if small else {}), "num_envs": envs}  # type: ignore[index]
    kwargs, network = train_kwargs(rl, "hopper")  # type: ignore[arg-type]
    t0 = time.monotonic()
    env = MjxTaskEnv(load_task("hopper"))
    exported = _exported_seed_reward(env)
    walltimes: list[float] = []
    first_progress: list[float] = []

    def on_progress(step: int, metrics: dict[str, Any]) -> None:
        first_progress.append(time.monotonic())
        if "training/walltime" in metrics:
            walltimes.append(float(metrics["training/walltime"]))

    ppo.train(
        environment=env,
        num_timesteps=3 * per_epoch,
        episode_length=1000,
        seed=0,
        num_evals=4,
        wrap_env_fn=_wrap_fn(exported, env.state_view),
        network_factory=functools.partial(ppo_networks.make_ppo_networks, **network),
        progress_fn=on_progress,
        **kwargs,
    )
    epochs = [b - a for a, b in zip([0.0, *walltimes], walltimes, strict=False)]
    steps = 3 * per_epoch / max(1, len(epochs))
    compiled = min(epochs[1:]) if len(epochs) > 1 else epochs[0]
    setup = first_progress[0] - t0 if first_progress else 0.0
    return {
        "setup_s": setup,
        "first_epoch_s": epochs[0],
        "epoch_s": compiled,
        "compile_s": setup + max(0.0, epochs[0] - compiled),
        "steps_per_s": steps / compiled,
    }


def evaluator_seconds(episodes: int, probe_steps: int = 2000) -> float:
    """Seconds the trusted evaluator spends on ``episodes`` 1000-step hopper episodes."""
    import torch

    task = load_task("hopper")
    net = fixed_policy(task)
    env = task.make_env()

    def act(obs: Any) -> Any:
        with torch.no_grad():
            return net(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    t0, done = time.monotonic(), 0
    try:
        while done < probe_steps:
            done += run_episode(task, env, act, seed=done)["length"]
    finally:
        env.close()
    return (time.monotonic() - t0) / done * 1000 * episodes
