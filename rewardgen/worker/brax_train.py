"""Train one candidate with ``rl=brax_ppo``: Brax PPO on the task's MJX env, on the accelerator.

Called by the training target (:func:`rewardgen.worker.train.run_candidate`) when the job's
``rl.algo`` is ``brax_ppo``; it runs in the same sandboxed worker. A reward program is first
traced by a child process (:mod:`rewardgen.worker.brax_trace`, CPU only) that writes its
``jax.export`` blob; this process loads only that blob (:mod:`rewardgen.train.brax_reward`),
never the Python. At every evaluation point Brax hands over the parameters, which are written
as ``checkpoints/<timesteps>.safetensors`` (the observation normaliser's mean and std and the
policy MLP, in the layout :mod:`rewardgen.train.brax_policy` rebuilds); the trusted evaluator
measures them in C MuJoCo. Compile and train seconds are logged separately.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import PROGRESS_FILE, CandidateJob, CandidateResult
from rewardgen.runs.untrusted import read_regular_file
from rewardgen.sandbox.contract import one_line, short_traceback
from rewardgen.sandbox.program import source_sha256
from rewardgen.tasks.spec import load_task
from rewardgen.train.brax_config import refusal, steps_per_update, train_kwargs
from rewardgen.train.checkpoints import CHECKPOINT_DIR, checkpoint_path
from rewardgen.worker.brax_trace import BLOB_FILE, TRACE_TARGET

log = logging.getLogger(__name__)

TRACE_DIR = "trace"
TRACE_TIMEOUT_S = 600.0
CACHE_ENV = "REWARDGEN_JAX_CACHE"  # a writable folder: XLA's persistent compilation cache
REPORTED = ["episode_returns", "env_steps"]


def configure_jax() -> None:
    """Bounded GPU memory per worker (several candidates share a card) and an optional cache."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    cache = os.environ.get(CACHE_ENV)
    if cache and os.access(cache, os.W_OK):
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def policy_tensors(params: tuple[Any, Any, Any]) -> dict[str, np.ndarray]:
    """Brax's ``(normalizer, policy, value)`` as named float32 arrays (torch Linear layout)."""
    normalizer, policy = params[0], params[1]
    layers = policy["params"]
    out = {
        "normalizer.mean": np.asarray(normalizer.mean, np.float32),
        "normalizer.std": np.asarray(normalizer.std, np.float32),
    }
    for name in sorted(layers, key=lambda n: int(n.rsplit("_", 1)[1])):
        out[f"{name}.weight"] = np.ascontiguousarray(
            np.asarray(layers[name]["kernel"]).T, dtype=np.float32
        )
        out[f"{name}.bias"] = np.asarray(layers[name]["bias"], np.float32)
    return out


def save_policy(params: tuple[Any, Any, Any], folder: Path, timesteps: int) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, timesteps)
    tmp = folder / f".{path.name}.tmp"
    save_file(policy_tensors(params), str(tmp))
    os.replace(tmp, path)
    return path


def trace_in_child(job: CandidateJob, out_dir: Path) -> tuple[CandidateResult, Path]:
    """Trace the program in a CPU-only child process; (its result, the blob's path)."""
    trace_dir = out_dir / TRACE_DIR
    trace_dir.mkdir(parents=True, exist_ok=True)
    trace_job = dataclasses.replace(job, out_dir=str(trace_dir), device="cpu")
    job_path = atomic_write_json(trace_dir / "job.json", trace_job.to_dict())
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "rewardgen.sandbox.child", str(job_path), TRACE_TARGET]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=TRACE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return CandidateResult(
            status="rejected",
            reason=f"tracing the program took over {TRACE_TIMEOUT_S:g} s; write a shorter program",
        ), trace_dir
    result_path = trace_dir / "result.json"
    if not result_path.is_file():
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        return CandidateResult(
            status="rejected",
            reason=one_line(f"tracing the program died (exit {proc.returncode}): {last}"),
        ), trace_dir
    raw = json.loads(read_regular_file(result_path, 8))
    return CandidateResult.from_dict(raw), trace_dir / BLOB_FILE


def _sparse_reward(expr: str) -> Any:
    """The task's trusted sparse expression as a jnp function of the State view."""
    import jax.numpy as jnp

    from rewardgen.sandbox.jax_surface import JAX_NAMESPACES

    scope = {
        "np": JAX_NAMESPACES["numpy"],
        "math": JAX_NAMESPACES["math"],
        "float": lambda x: jnp.asarray(x, jnp.float32),
    }
    fn = eval(f"lambda state: ({expr})", scope)  # trusted: the task file's expression
    return lambda state, action, prev: (jnp.asarray(fn(state), jnp.float32), {})


def _wrap_fn(exported: Any, view: Any) -> Any:
    from brax.envs.wrappers.training import AutoResetWrapper, EpisodeWrapper, VmapWrapper

    from rewardgen.train.brax_reward import ProgramRewardWrapper

    def wrap(
        env: Any, episode_length: int = 1000, action_repeat: int = 1, randomization_fn: Any = None
    ) -> Any:
        env = VmapWrapper(env)
        if exported is not None:
            env = ProgramRewardWrapper(env, exported, view)
        return AutoResetWrapper(EpisodeWrapper(env, episode_length, action_repeat))

    return wrap


def run_candidate(job: CandidateJob) -> CandidateResult:
    """Trace (a program), train with Brax PPO and write checkpoints; always return a result.

    Raises:
        ConfigError: the job does not fit the backend (task refused, bad hyperparameters).
    """
    t0 = time.monotonic()
    task = load_task(job.task)
    reason = refusal(task)
    if reason:
        raise ConfigError(reason)
    kwargs, network = train_kwargs(job.rl, job.task)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sha = source_sha256(job.reward_source) if job.reward_source else None
    blob_path: Path | None = None
    if job.reward_kind == "program":
        traced, blob_path = trace_in_child(job, out_dir)
        if traced.status != "ok":
            traced.seed, traced.reward_sha256 = job.seed, sha
            traced.wall_time_s = time.monotonic() - t0
            return traced
    elif job.reward_kind not in ("native", "sparse"):
        raise ConfigError(
            f"rl=brax_ppo trains reward_kind program, native or sparse, not "
            f"{job.reward_kind!r}; use rl=ppo"
        )
    configure_jax()
    import functools

    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    from rewardgen.train.brax_reward import RewardBlobError, load_reward
    from rewardgen.train.mjx_env import MjxTaskEnv

    env = MjxTaskEnv(task)
    exported = None
    if blob_path is not None:
        try:
            exported = load_reward(blob_path, env.state_view, env.action_size)
        except RewardBlobError as e:
            return CandidateResult(
                status="rejected",
                reason=one_line(str(e)),
                seed=job.seed,
                reward_sha256=sha,
                wall_time_s=time.monotonic() - t0,
            )
    elif job.reward_kind == "sparse":
        if not task.sparse_reward:
            raise ConfigError(f"task {task.name!r} has no sparse_reward")
        from jax import export

        from rewardgen.sandbox.jax_trace import export_reward

        blob = export_reward(
            _sparse_reward(task.sparse_reward), env.state_view.zeros(), env.action_size
        )
        exported = export.deserialize(bytearray(blob))
    checkpoints = max(1, job.timesteps // max(1, job.eval_freq))
    episode_length = int(job.max_episode_steps or task.max_episode_steps or 1000)
    folder = out_dir / CHECKPOINT_DIR
    returns: list[float] = []
    marks: dict[str, float] = {"start": time.monotonic()}
    last_step = 0

    def on_params(step: int, make_policy: Any, params: Any) -> None:
        nonlocal last_step
        last_step = int(step)
        marks.setdefault("first_params", time.monotonic())
        save_policy(params, folder, last_step)
        atomic_write_json(out_dir / PROGRESS_FILE, {"timesteps": last_step, "total": job.timesteps})

    def on_progress(step: int, metrics: dict[str, Any]) -> None:
        if "eval/episode_reward" in metrics:
            returns.append(float(metrics["eval/episode_reward"]))

    status, reason, tb = "ok", "", ""
    try:
        ppo.train(
            environment=env,
            num_timesteps=job.timesteps,
            episode_length=episode_length,
            seed=job.seed,
            num_evals=0 if checkpoints == 1 else checkpoints + 1,
            wrap_env_fn=_wrap_fn(exported, env.state_view),
            network_factory=functools.partial(ppo_networks.make_ppo_networks, **network),
            policy_params_fn=on_params,
            progress_fn=on_progress,
            **kwargs,
        )
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a failing candidate is a result, never a crash
        status, reason, tb = "failed", one_line(f"{type(e).__name__}: {e}"), short_traceback(e)
        log.warning("brax training raised %s: %s", type(e).__name__, e, exc_info=True)
    end = time.monotonic()
    first = marks.get("first_params", end)
    log.info(
        "brax_ppo: %d env steps, compile + first epoch %.1f s, total %.1f s (%d steps per update)",
        last_step,
        first - marks["start"],
        end - marks["start"],
        steps_per_update(kwargs),
    )
    return CandidateResult(
        status=status,
        reason=reason,
        traceback=tb,
        episode_returns=returns,
        env_steps=last_step,
        wall_time_s=end - t0,
        reward_sha256=sha,
        seed=job.seed,
        reported=list(REPORTED),
    )


__all__ = ["policy_tensors", "run_candidate", "save_policy", "trace_in_child"]
