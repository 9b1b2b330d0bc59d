"""The pre-run memory check: refuse a configuration whose training worker cannot fit its limit.

A worker runs under ``sandbox.memory_mb`` (the address space of each process on a CPU; the data
segment plus a watch of the tree's resident memory on a GPU; at least
:data:`~rewardgen.search.vision.VISION_MEMORY_MB` for the vision methods, which render). SAC
allocates its replay buffer when the model is built, so a buffer that cannot fit fails every
candidate at its first step, after the LLM has been paid. :func:`check_memory` estimates the
worker (:func:`rewardgen.train.memory.estimate`) for every budget of the run (``train.timesteps``,
``final.timesteps``) and raises one :class:`ConfigError` line naming what to change.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rewardgen.errors import ConfigError
from rewardgen.train import memory

log = logging.getLogger(__name__)
VISION_KINDS = ("clip", "vlm_preference")


def _reward_kind(cfg: Any) -> str:
    name = str(cfg.method.name) if "method" in cfg else "program"
    return name if name in VISION_KINDS else "program"


def _vision(cfg: Any, kind: str) -> dict[str, Any]:
    if kind not in VISION_KINDS:
        return {}
    plain = OmegaConf.to_container(cfg.method, resolve=True)
    assert isinstance(plain, dict)
    return {key: plain.get(key) or {} for key in ("render", "clip", "preference")}


def _clip_weights_mb(vision: dict[str, Any]) -> float:
    """The CLIP checkpoint's size on disk (about its size in memory; 0 for random weights)."""
    clip = vision.get("clip") or {}
    if not clip.get("pretrained"):
        return 0.0
    from rewardgen.rewards.clip import clip_weights

    path, _ = clip_weights(str(clip.get("model")), clip.get("pretrained"), clip.get("cache_dir"))
    return Path(path).stat().st_size / memory.MB if path else 0.0


def worker_limit_mb(cfg: Any, kind: str) -> int:
    """The limit the training worker runs under (vision methods: raised for EGL rendering)."""
    limit = int(cfg.sandbox.memory_mb)
    if kind in VISION_KINDS:
        from rewardgen.search.vision import VISION_MEMORY_MB

        limit = max(limit, VISION_MEMORY_MB)
    return limit


def _fix(
    est: memory.MemoryEstimate, limit: int, hp: dict[str, Any], steps: int, n_envs: int, kind: str
) -> str:
    """What to change, most specific first: a buffer that fits, the limit that fits, fewer envs."""
    fixes = []
    stored = est.parts.get("replay buffer", 0.0) + est.parts.get("frame store (relabelling)", 0.0)
    if stored:
        size = int(hp.get("buffer_size", memory.SB3_BUFFER_SIZE))
        per_transition = stored / memory.buffer_size_for(size, steps, n_envs)
        fits = int(0.95 * max(0.0, limit - (est.total - stored)) / per_transition)  # a margin
        if fits >= max(1000, int(hp.get("batch_size", 256))):
            fixes.append(f"++rl.hyperparams.buffer_size={fits // 1000 * 1000}")
    if kind == "vlm_preference":
        fixes.append("a smaller method.preference.image_size or method.preference.capacity")
    fixes.append(f"sandbox.memory_mb={math.ceil(est.total / 256) * 256}")
    if n_envs > 1:
        fixes.append("fewer rl.n_envs")
    return "; set " + " or ".join(fixes)


def check_memory(cfg: Any, task_name: str, budgets: dict[str, int]) -> None:
    """Refuse a run whose training worker would not fit its memory limit, in one line.

    Args:
        cfg: the composed ``rewardgen`` or ``rewardgen-eval`` config (already checked key by key).
        task_name: the task's name (its env is built once to read its observation size).
        budgets: the run's training budgets by key (``{"train.timesteps": 100000, ...}``).

    Raises:
        ConfigError: the estimate of some budget exceeds the limit; the line names the budget,
            the estimate's largest parts and the keys that fix it.
    """
    algo = str(cfg.rl.algo).lower()
    kind = _reward_kind(cfg)
    if algo not in memory.SB3_NET_ARCH:
        return  # _check_rl refuses it
    rl = OmegaConf.to_container(cfg.rl, resolve=True)
    assert isinstance(rl, dict)
    from rewardgen.train.sb3 import hyperparams_for

    hp = hyperparams_for({str(k): v for k, v in rl.items()}, task_name)
    if hp.get("optimize_memory_usage") and (
        int(hp.get("n_steps", 1)) > 1 or hp.get("replay_buffer_class") is not None
    ):
        raise ConfigError(
            "rl.hyperparams.optimize_memory_usage=true needs rewardgen's replay "
            "buffer: drop rl.hyperparams.n_steps / replay_buffer_class, or set "
            "rl.hyperparams.optimize_memory_usage=false"
        )
    n_envs, vec_env = int(cfg.rl.n_envs), str(cfg.rl.vec_env)
    spaces = memory.task_spaces(task_name) if algo == "sac" or kind in VISION_KINDS else None
    vision = _vision(cfg, kind)
    weights = _clip_weights_mb(vision) if kind == "clip" else 0.0
    limit = worker_limit_mb(cfg, kind)
    for key, steps in budgets.items():
        est = memory.estimate(
            algo=algo,
            hyperparams=hp,
            timesteps=steps,
            n_envs=n_envs,
            vec_env=vec_env,
            spaces=spaces,
            vision=vision,
            reward_kind=kind,
            clip_weights_mb=weights,
        )
        log.debug("memory estimate at %s=%d: %.0f MB (%s)", key, steps, est.total, est.describe())
        if est.total > limit:
            raise ConfigError(
                f"{key}={steps}: a {algo.upper()} worker on {task_name} needs about "
                f"{est.total:.0f} MB ({est.describe()}), above its limit of {limit} MB "
                f"(sandbox.memory_mb){_fix(est, limit, hp, steps, n_envs, kind)}"
            )


__all__ = ["check_memory", "worker_limit_mb"]
