"""One job builder: the run's config becomes the job a training worker runs.

The search, the final phase, ``rewardgen-eval`` and ``rewardgen-replay`` all build their
training jobs here, so budgets, evaluation, selection and sandbox settings come from one place
with one set of defaults (the config schema's). The method says what reward its programs are
(:attr:`~rewardgen.methods.eureka.EurekaMethod.reward_kind`), so callers never name a method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rewardgen.runs.records import (  # the kinds live with the job that carries them
    JUDGE_DIR,
    MPC_KIND,
    NO_CODE_KINDS,
    REWARD_KINDS,
    VISION_KINDS,
    CandidateJob,
    JudgeJob,
    RewardKind,
)


def method_reward(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """The reward kind of the configured method's programs, and the options its worker needs."""
    if "method" not in cfg:  # rewardgen-eval: plain compute_reward programs
        return RewardKind.PROGRAM.value, {}
    from rewardgen.methods import method_class

    cls = method_class(str(cfg.method.name))
    return str(cls.reward_kind), cls.reward_options(cfg.method)


def training_job(cfg: DictConfig, out_dir: str, source: str | None, kind: str = "program", *,
                 timesteps: int | None = None, seed: int | None = None) -> CandidateJob:
    """A training job for one reward under a ``rewardgen`` or ``rewardgen-eval`` config.

    Args:
        cfg: the composed config (conf/config.yaml or conf/eval.yaml).
        out_dir: the candidate's folder.
        source: the reward program (None for ``native``/``sparse``).
        kind: ``program`` means "a program of the run's method" (its reward kind is the
            method's); any other :class:`RewardKind` is taken as it is.
        timesteps: the budget (default ``train.timesteps``; the final phase passes its own).
        seed: the training seed (default ``seed``).
    """
    options: dict[str, Any] = {}
    if kind == RewardKind.PROGRAM:
        kind, options = method_reward(cfg)
    if "loop" in cfg:
        selection, last_k = str(cfg.loop.selection), int(cfg.loop.last_k)
    else:
        selection, last_k = str(cfg.fitness_aggregate), int(cfg.last_k)
    budget = int(cfg.train.timesteps if timesteps is None else timesteps)
    if kind == RewardKind.MPC:  # one MPC episode: its budget is the episode's control steps
        budget = int(options["mpc"]["episode_steps"])
    return CandidateJob(
        task=str(cfg.task),
        out_dir=str(out_dir),
        reward_source=source,
        reward_kind=str(kind),
        seed=int(cfg.seed if seed is None else seed),
        device=str(cfg.device),
        timesteps=budget,
        eval_freq=int(cfg.train.eval_freq),
        eval_episodes=int(cfg.train.eval_episodes),
        max_episode_steps=cfg.train.max_episode_steps,
        rl=OmegaConf.to_container(cfg.rl, resolve=True),  # type: ignore[arg-type]
        selection=selection,
        last_k=last_k,
        save_policy=bool(cfg.train.save_policy),
        stored_episodes=_stored_episodes(cfg),
        tensorboard=bool(cfg.train.tensorboard),
        smoke_states=int(cfg.sandbox.smoke_states),
        smoke_call_timeout_s=float(cfg.sandbox.smoke_call_timeout_s),
        call_budget_s=(None if cfg.sandbox.get("call_budget_s") is None
                       else float(cfg.sandbox.call_budget_s)),
        reward_options=options,
    )


def _stored_episodes(cfg: DictConfig) -> int:
    """Evaluation episodes a candidate keeps for later scoring: CARD's pool when it screens."""
    from rewardgen.runs.trajectories import MAX_STORED_EPISODES

    loop = cfg.get("loop")
    if loop is not None and str(loop.get("screening", "none")) == "trajectory_preference":
        return max(int(loop.get("screening_episodes", 100)), MAX_STORED_EPISODES)
    return MAX_STORED_EPISODES


candidate_job = training_job  # the name the loop, the final phase, tests and benches use


def judge_job(cfg: DictConfig, task: Any, cand_dir: Path, kind: str, device: str) -> JudgeJob:
    """The vision judge's job for one trained candidate (``loop.judge*``, ``method.render``,
    ``method.clip``): render the evaluator's policy.zip; CLIP scores the frames when ``kind``
    is ``clip``, the VLM judge (``vlm``) reads them in the parent. ``device``: the resolved
    ``device`` (``auto`` already turned into ``cpu`` or ``cuda``)."""
    loop, render = cfg.loop, cfg.method.render
    steps = loop.judge_steps or cfg.train.max_episode_steps or (task.max_episode_steps or 1000)
    return JudgeJob(
        task=str(cfg.task), out_dir=str(cand_dir / JUDGE_DIR), seed=int(cfg.seed),
        device=device, judge="clip" if kind == "clip" else "frames",
        policy=str(cand_dir / "policy.zip"), algo=str(cfg.rl.algo),
        episodes=int(loop.judge_episodes), max_steps=int(steps),
        width=int(render.width), height=int(render.height),
        frame_skip=int(render.frame_skip), frames=int(loop.judge_frames),
        clip=OmegaConf.to_container(cfg.method.clip, resolve=True),  # type: ignore[arg-type]
    )

__all__ = ["MPC_KIND", "NO_CODE_KINDS", "REWARD_KINDS", "VISION_KINDS", "RewardKind",
           "candidate_job", "judge_job", "method_reward", "training_job"]
