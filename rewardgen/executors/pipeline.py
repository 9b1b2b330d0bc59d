"""One candidate from start to result: untrusted training, then trusted measurement.

The trust boundary of the design in one function (:func:`run_job`). For a training job:

1. the *untrusted* worker (``rewardgen.worker.train:run_candidate``, in the bubblewrap sandbox)
   checks, smoke-tests and trains the reward program with ``cand_XX/train/`` as its only
   writable folder; it leaves policy weights (``train/checkpoints/*.safetensors``) and a
   *reported* result (training statistics);
2. the *trusted* evaluator (``rewardgen.worker.evaluate:evaluate_candidate``, a separate process
   that never loads reward code) rebuilds the policy from the job, loads the weights, runs the
   native env from secret seeds drawn here once the training ended (``eval_seeds`` in
   ``cand_XX/evaluation/job.json`` only; a following evaluator draws its own per checkpoint)
   and measures fitness, success and the curve; it writes ``policy.zip`` and
   ``trajectories.npz``, which are moved into ``cand_XX/``;
3. the merged result takes every measured field from (2) and only the bounded, validated
   reported statistics from (1); it is written to ``cand_XX/result.json``.

Executors call :func:`run_job` for every job, so the search, the final phase, ``rewardgen-eval``,
``rewardgen-replay`` and the vision methods share this path.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardgen.config import SandboxConfig, as_sandbox_config
from rewardgen.executors.follow import Prune, train_following
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import (
    MPC_KIND,
    NO_CODE_KINDS,
    TRAIN_DIR,
    CandidateJob,
    CandidateResult,
    WorkerJob,
)
from rewardgen.runs.seeds import draw_seeds
from rewardgen.sandbox.contract import MAX_COMPONENT_NAME, MAX_COMPONENTS
from rewardgen.sandbox.program import source_sha256
from rewardgen.sandbox.worker import CANCELLED, DEFAULT_TARGET, STOPPED, run_isolated
from rewardgen.train.checkpoints import CHECKPOINT_DIR

log = logging.getLogger(__name__)

EVALUATOR_TARGET = "rewardgen.worker.evaluate:evaluate_candidate"
JUDGE_TARGET = "rewardgen.search.judge:judge_candidate"  # renders the evaluator's policy.zip
COLLECT_TARGET = "rewardgen.worker.collect:collect_episodes"  # method=motif's episodes
MPC_TARGET = "rewardgen.worker.mpc:run_mpc"  # untrusted: plans with the reward program
MPC_REPLAY_TARGET = "rewardgen.worker.mpc_replay:replay_actions"  # trusted: replays the actions
TRUSTED_TARGETS = (EVALUATOR_TARGET, JUDGE_TARGET, COLLECT_TARGET,
                   MPC_REPLAY_TARGET)  # never load reward code
EVAL_DIR = "evaluation"  # cand_XX/evaluation/: the trusted evaluator's job, result and log
TRUSTED_ARTIFACTS = ("policy.zip", "policy.safetensors", "trajectories.npz", "video.mp4",
                     "video.gif")  # policy.safetensors: rl=brax_ppo's policy
MAX_REPORTED_EPISODES = 100_000  # training episodes kept per reported list
MAX_REPORTED_POINTS = 10_000  # points per reported component series
UNTRUSTED_STATUSES = ("ok", "rejected", "failed", "timeout")


def _floats(values: Any, limit: int) -> list[float]:
    if not isinstance(values, list):
        return []
    out = []
    for value in values[:limit]:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def reported_view(raw: CandidateResult, job: CandidateJob) -> CandidateResult:
    """What the untrusted worker reported, bounded and validated; nothing in it is measured.

    Fitness, success rate and evaluations are dropped whatever they say; lists are cut, numbers
    must be finite, component names are limited in count and length, the status must be one a
    training worker may give, and env steps are clipped to the job's budget (plus one rollout of
    slack) since they only feed the cost columns.
    """
    status = raw.status if raw.status in UNTRUSTED_STATUSES else "failed"
    stats = raw.component_stats if isinstance(raw.component_stats, dict) else {}
    components = {
        str(name)[:MAX_COMPONENT_NAME]: _floats(series, MAX_REPORTED_POINTS)
        for name, series in list(stats.items())[:MAX_COMPONENTS]
    }
    corr = raw.reward_fitness_correlation
    try:
        corr = float(corr) if corr is not None and -1.0 <= float(corr) <= 1.0 else None
    except (TypeError, ValueError):
        corr = None
    try:
        steps = max(0, min(int(raw.env_steps), 2 * int(job.timesteps) + 1_000_000))
    except (TypeError, ValueError, OverflowError):
        steps = 0
    return CandidateResult(
        status=status,
        reason=str(raw.reason or "")[:1000],
        traceback=str(raw.traceback or "")[:8000],
        component_stats=components,
        episode_returns=_floats(raw.episode_returns, MAX_REPORTED_EPISODES),
        native_returns=_floats(raw.native_returns, MAX_REPORTED_EPISODES),
        episode_lengths=[int(x) for x in _floats(raw.episode_lengths, MAX_REPORTED_EPISODES)],
        episode_fitness=_floats(raw.episode_fitness, MAX_REPORTED_EPISODES),
        reward_fitness_correlation=corr,
        env_steps=steps,
        wall_time_s=(_floats([raw.wall_time_s], 1) or [0.0])[0],
        reward_sha256=source_sha256(job.reward_source) if job.reward_source else None,
        seed=job.seed,
        reported=[
            "component_stats", "episode_returns", "native_returns", "episode_lengths",
            "episode_fitness", "reward_fitness_correlation", "env_steps",
        ],
    )


def merge(measured: CandidateResult, reported: CandidateResult) -> CandidateResult:
    """The candidate's result: measured fields from the evaluator, statistics as reported.

    A measurement without a finite fitness fails the candidate (the evaluator already refuses
    one; this keeps a NaN from ever reaching selection whatever measured it).
    """
    if measured.ok and not measured.selectable:
        measured = dataclasses.replace(
            measured, status="failed",
            reason=f"evaluation: the fitness is {measured.fitness}; only a finite fitness can be "
                   "ranked")
    if not measured.ok:
        return dataclasses.replace(reported, status="failed", reason=measured.reason,
                                   traceback=measured.traceback, fitness=None, success_rate=None,
                                   evaluations=measured.evaluations)
    return dataclasses.replace(
        reported,
        status="ok",
        fitness=measured.fitness,
        success_rate=measured.success_rate,
        evaluations=measured.evaluations,
        wall_time_s=reported.wall_time_s + measured.wall_time_s,
    )


def _move_artifacts(out: Path) -> None:
    for name in TRUSTED_ARTIFACTS:
        source = out / EVAL_DIR / name
        if source.is_file():
            os.replace(source, out / name)


def pruned_result(measured: CandidateResult, reason: str, job: CandidateJob) -> CandidateResult:
    """A candidate the schedule stopped: everything measured up to its last scored checkpoint.

    The training worker was killed, so nothing it reported survives (its progress file, tb/ and
    checkpoints stay in ``train/``).
    """
    if not measured.ok:
        return dataclasses.replace(measured, seed=job.seed, reason=f"{reason}; {measured.reason}")
    return dataclasses.replace(
        measured, status="pruned", reason=reason,
        reward_sha256=source_sha256(job.reward_source) if job.reward_source else None,
    )


def train_and_measure(
    job: CandidateJob,
    cfg: SandboxConfig,
    *,
    gpu: str | None = None,
    target: str = DEFAULT_TARGET,
    extra_env: Mapping[str, str] | None = None,
    prune: Prune | None = None,
) -> CandidateResult:
    """Train ``job`` in the sandbox, measure it in the trusted evaluator, write result.json.

    The evaluation seeds are drawn after the training worker ended (with ``prune``: by the
    evaluator, per checkpoint, after reading it); ``job.eval_seeds`` is ignored, and neither the
    training job nor anything under ``train/`` ever holds them. An MPC job (L2R) is replayed from
    the seed it planned from: an open-loop plan is only defined from its own initial state.

    With ``prune`` (``loop.schedule``) the evaluator follows the training (:func:`train_following`)
    and the candidate may end ``pruned``.
    """
    cfg = as_sandbox_config(cfg)
    out = Path(job.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    train_dir = out / TRAIN_DIR
    for name in ("result.json", *TRUSTED_ARTIFACTS):
        (out / name).unlink(missing_ok=True)
    loads_code = job.reward_kind not in NO_CODE_KINDS
    mpc = job.reward_kind == MPC_KIND  # L2R: an MPC episode, replayed from its actions
    if mpc:
        target, prune = MPC_TARGET, None  # one episode: nothing to follow or prune
    train_job = dataclasses.replace(job, out_dir=str(train_dir), eval_seeds=None)
    eval_job = dataclasses.replace(
        job, out_dir=str(out / EVAL_DIR), reward_source=None, device="cpu",
        checkpoint_dir=str(train_dir if mpc else train_dir / CHECKPOINT_DIR),
        follow=prune is not None, eval_seeds=None,  # following: drawn per checkpoint, after it
    )
    measure_target = MPC_REPLAY_TARGET if mpc else EVALUATOR_TARGET
    eval_cfg = dataclasses.replace(cfg, network=False)
    if prune is not None:
        raw, measured, pruned = train_following(
            lambda cancel: run_isolated(train_job, cfg, gpu=gpu, target=target,
                                        extra_env=extra_env, sandboxed=loads_code, cancel=cancel),
            lambda: run_isolated(eval_job, dataclasses.replace(eval_cfg, timeout_s=2 * cfg.timeout_s),
                                 gpu=None, target=EVALUATOR_TARGET, sandboxed=False),
            out / EVAL_DIR, prune,
        )
        _move_artifacts(out)
        if pruned:
            result = pruned_result(measured, pruned, job)
        elif not measured.ok and CANCELLED in raw.reason:
            # the evaluator refused a checkpoint (NaN action, bad file) while training ran, and
            # the trainer was stopped for it: the refusal is the candidate's reason
            result = merge(measured, reported_view(raw, job))
        elif reported_view(raw, job).status != "ok":
            result = reported_view(raw, job)  # training failed: its reason, not the evaluator's
        else:
            result = merge(measured, reported_view(raw, job))
    else:
        raw = run_isolated(train_job, cfg, gpu=gpu, target=target, extra_env=extra_env,
                           sandboxed=loads_code)
        reported = reported_view(raw, job)
        if reported.status == "ok":
            if not mpc:  # drawn now, the trainer dead: nothing under train/ can know them
                eval_job = dataclasses.replace(eval_job, eval_seeds=draw_seeds(job.eval_episodes))
            measured = run_isolated(eval_job, eval_cfg, gpu=None, target=measure_target,
                                    sandboxed=False)
            _move_artifacts(out)
            result = merge(measured, reported)
        else:
            result = reported
    if STOPPED in (raw.reason, result.reason):
        return result  # Ctrl-C: no result.json, so a resumed run trains it again
    atomic_write_json(out / "result.json", result.to_dict())
    return result


def run_job(
    job: WorkerJob,
    cfg: SandboxConfig,
    *,
    gpu: str | None = None,
    target: str = DEFAULT_TARGET,
    extra_env: Mapping[str, str] | None = None,
    prune: Prune | None = None,
) -> CandidateResult:
    """Run one job the way its target needs: training jobs get trusted measurement (an MPC
    job, ``reward_kind="mpc"``, is planned by the MPC worker and replayed by the trusted replay).

    Other targets (CARD's trajectory scorer, judges, test targets) are single isolated runs;
    every target but the trusted ones (:data:`TRUSTED_TARGETS`, which never load reward code)
    runs sandboxed.
    """
    if target == DEFAULT_TARGET:
        if not isinstance(job, CandidateJob):
            raise TypeError(f"the training target takes a training job, not a {job.kind} job")
        return train_and_measure(job, cfg, gpu=gpu, target=target, extra_env=extra_env,
                                 prune=prune)
    return run_isolated(job, as_sandbox_config(cfg), gpu=gpu, target=target, extra_env=extra_env,
                        sandboxed=target not in TRUSTED_TARGETS)
