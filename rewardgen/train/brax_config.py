"""``rl=brax_ppo`` without JAX: which tasks it runs, why others are refused, its keyword arguments.

Everything here is importable where only the CPU path is installed (the config check, the
trusted evaluator), so a refusal costs nothing and names its reason in one line.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from rewardgen.errors import ConfigError
from rewardgen.tasks.sources import parse_source
from rewardgen.tasks.spec import TaskSpec

BRAX_ALGO = "brax_ppo"
# gymnasium v5 env ids whose step, reset noise, termination and observation are ported to MJX
# (rewardgen/train/mjx_env.py) and whose parity with C MuJoCo is checked (docs/gpu.md)
OFFERED_ENV_IDS = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5")
# MuJoCo data arrays MJX fills as C MuJoCo does after gymnasium's step; cfrc_ext and cacc need
# mj_rnePostConstraint (gymnasium calls it, MJX does not), sensors are only partly in MJX 3.3
MJX_ARRAYS = frozenset({
    "qpos", "qvel", "qacc", "qfrc_actuator", "xpos", "xquat", "xmat", "xipos", "cvel",
    "subtree_com", "site_xpos", "site_xmat", "ctrl", "act", "actuator_force", "dt", "time",
})  # fmt: skip
# ppo.train's keyword arguments a config may set (num_timesteps, episode_length and seed come
# from the job; network sizes go to the network factory)
TRAIN_KEYS = frozenset({
    "num_envs", "action_repeat", "learning_rate", "entropy_cost", "discounting",
    "unroll_length", "batch_size", "num_minibatches", "num_updates_per_batch",
    "num_resets_per_eval", "normalize_observations", "reward_scaling", "clipping_epsilon",
    "gae_lambda", "max_grad_norm", "normalize_advantage", "num_eval_envs", "deterministic_eval",
})  # fmt: skip
NETWORK_KEYS = frozenset({"policy_hidden_layer_sizes", "value_hidden_layer_sizes"})
UNSUPPORTED_METHODS = {
    "l2r": "an MPC controller",
    "progress": "a count bonus over progress cells",
    "motif": "a reward model of LLM preferences",
    "clip": "a CLIP reward",
    "vlm_preference": "a VLM preference reward model",
}
GPU_PACKAGES = ("jax", "brax", "mujoco.mjx")
INSTALL_HINT = "pip install 'rewardgen[gpu]'"
# what the prompt says under rl=brax_ppo: the program is compiled (traced once over arrays)
ARRAY_RULES = (
    "The reward function is compiled for a GPU: it is traced once over arrays, so write it with "
    "array functions only. State values are arrays while it runs: use np.where(cond, a, b) "
    "instead of if/else, a ternary or while on them; np.logical_and / np.logical_or / "
    "np.logical_not (or &, |, ~ on comparisons) instead of and / or / not; np.maximum / "
    "np.minimum instead of builtin max / min; no float(), int(), bool() or .item() and no math "
    "functions on state values (use np.exp, np.sqrt, ...); no item assignment (a[0] = x) and no "
    "boolean-mask indexing (x[x > 0]); the component dict has fixed literal keys. Code that "
    "follows these rules also runs with numpy."
)


def is_brax(rl: dict[str, Any]) -> bool:
    """Whether an ``rl`` config (a job's dict) selects this backend."""
    return str(rl.get("algo", "")).lower() == BRAX_ALGO


def missing_packages() -> list[str]:
    """The GPU extra's packages this Python lacks (empty when ``rl=brax_ppo`` can run)."""
    missing = []
    for name in GPU_PACKAGES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except ModuleNotFoundError:
            missing.append(name)
    return missing


def refusal(task: TaskSpec) -> str | None:
    """Why ``task`` cannot train faithfully with ``rl=brax_ppo`` (one line), or None.

    Only tasks whose gymnasium env is ported and parity-checked are offered; of those, a State
    field whose value MJX does not compute as C MuJoCo does (an ``env.`` attribute, contact
    forces, sensors) is refused too, since the reward program would read a different number.

    Example:
        >>> from rewardgen.tasks.spec import load_task
        >>> refusal(load_task("hopper")) is None
        True
        >>> print(refusal(load_task("humanoid")))  # doctest: +ELLIPSIS
        task 'humanoid' (Humanoid-v5) does not run on rl=brax_ppo: ... PGS ...
    """
    head = f"task {task.name!r} ({task.env_id}) does not run on rl=brax_ppo"
    if task.env_id.startswith(("Humanoid-", "HumanoidStandup-")):
        return (
            f"{head}: its XML uses the PGS solver, which MJX does not implement (Newton would "
            "change the physics); use rl=ppo or rl=sac"
        )
    if task.env_id not in OFFERED_ENV_IDS:
        return (
            f"{head}: only {', '.join(OFFERED_ENV_IDS)} are ported to MJX and parity-checked "
            "against C MuJoCo; use rl=ppo or rl=sac"
        )
    for field in task.state:
        parsed = parse_source(field.source)
        if parsed.array not in MJX_ARRAYS:
            why = (
                "an env attribute outside MuJoCo's data"
                if parsed.array == "env"
                else f"{parsed.array}, which MJX does not compute as gymnasium's C MuJoCo does"
            )
            return (
                f"{head}: State field {field.name!r} reads {field.source!r} ({why}); drop the "
                "field or use rl=ppo"
            )
    if task.env_kwargs.get("xml_file"):
        return (
            f"{head}: env_kwargs.xml_file replaces the model whose parity was checked; use rl=ppo"
        )
    return None


def train_kwargs(job_rl: dict[str, Any], task_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(ppo.train keyword arguments, network factory keyword arguments)`` for one task.

    The three layers of :func:`~rewardgen.train.sb3.hyperparams_for` (common, per_task, the
    user's overrides); ``rl.n_envs`` is ``num_envs`` unless a layer sets it.

    Raises:
        ConfigError: a key ppo.train does not take, or a batch that does not divide evenly.
    """
    from rewardgen.train.sb3 import hyperparams_for  # torch: only where training is configured

    merged = hyperparams_for(job_rl, task_name)
    unknown = sorted(set(merged) - TRAIN_KEYS - NETWORK_KEYS)
    if unknown:
        raise ConfigError(
            f"rl hyperparameters {unknown} are not Brax PPO's; allowed: "
            f"{', '.join(sorted(TRAIN_KEYS | NETWORK_KEYS))}"
        )
    network = {k: tuple(int(n) for n in merged.pop(k)) for k in NETWORK_KEYS if k in merged}
    merged.setdefault("num_envs", int(job_rl.get("n_envs", 1)))
    envs, batch, minibatches = (
        int(merged.get(k, d))
        for k, d in (("num_envs", 1), ("batch_size", 32), ("num_minibatches", 16))
    )
    if envs < 1 or batch * minibatches % envs:
        raise ConfigError(
            f"rl: batch_size * num_minibatches ({batch} * {minibatches}) must be a "
            f"multiple of num_envs ({envs}); change one of them"
        )
    return merged, network


def check_config(cfg: Any, task: TaskSpec) -> None:
    """The pre-run check of a composed config with ``rl=brax_ppo`` (one line on failure).

    Raises:
        ConfigError: the task is refused, the GPU extra is missing, the method trains a reward
            this backend cannot (vision, progress, MPC), or the hyperparameters do not fit.
    """
    from omegaconf import OmegaConf

    reason = refusal(task)
    if reason:
        raise ConfigError(reason)
    method = str(OmegaConf.select(cfg, "method.name", default="") or "")
    if method in UNSUPPORTED_METHODS:
        raise ConfigError(
            f"method={method} trains {UNSUPPORTED_METHODS[method]}, which "
            "rl=brax_ppo does not run (it trains compute_reward programs, the "
            "native and the sparse reward); use rl=ppo or rl=sac"
        )
    missing = missing_packages()
    if missing:
        raise ConfigError(
            f"rl=brax_ppo needs {', '.join(missing)}, not installed here; {INSTALL_HINT}"
        )
    rl = OmegaConf.to_container(cfg.rl, resolve=True)
    train_kwargs(rl, task.name)  # type: ignore[arg-type]


def steps_per_update(kwargs: dict[str, Any]) -> int:
    """Env steps of one PPO update: ``batch_size * unroll_length * num_minibatches``."""
    return (
        int(kwargs.get("batch_size", 32))
        * int(kwargs.get("unroll_length", 10))
        * int(kwargs.get("num_minibatches", 16))
        * int(kwargs.get("action_repeat", 1))
    )


__all__ = [
    "ARRAY_RULES",
    "BRAX_ALGO",
    "check_config",
    "INSTALL_HINT",
    "OFFERED_ENV_IDS",
    "is_brax",
    "missing_packages",
    "refusal",
    "steps_per_update",
    "train_kwargs",
]
