"""The records that cross the process boundary: the worker jobs (one type per target) and the
result every worker returns, with the reward kinds and the run-directory names they use."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar, TypeVar

from rewardgen.sandbox.contract import MAX_COMPONENT_NAME, clean_text, component_name

STATUSES = ("ok", "rejected", "failed", "timeout", "screened_out", "pruned")
TRAIN_DIR = "train"  # cand_XX/train/: the untrusted training worker's only writable folder
SCREENING_DIR = "screening"  # cand_XX/screening/: CARD's scorer (or MPC screening's candidate)
PROCESS_DIR = "process"  # cand_XX/process/: the scorer of process feedback
# Folders a sandboxed worker writes, holding anything: a walk of a run directory never enters them.
WORKER_DIRS = (TRAIN_DIR, SCREENING_DIR, PROCESS_DIR)
JUDGE_DIR = "judge"  # cand_XX/judge/: job.json, result.json, worker.log, judge.json, frames.npz
PROGRESS_FILE = "progress.json"  # written by the worker while training, read by the progress display
# A following evaluator (job.follow) and its parent talk through its own (trusted) folder:
CURVE_FILE = "curve.json"  # the evaluator: the curve so far, rewritten after every checkpoint
END_FILE = "end.json"  # the parent: training ended; {"until": steps or null} bounds what counts


class RewardKind(str, Enum):
    """What a training worker trains on (``CandidateJob.reward_kind``)."""

    PROGRAM = "program"  # a compute_reward program
    PROGRESS = "progress"  # a progress() program: count bonus over progress cells + sparse reward
    NATIVE = "native"  # the env's own, human-designed reward
    SPARSE = "sparse"  # the task's sparse reward expression
    CLIP = "clip"  # VLM-RM's CLIP reward on rendered frames
    VLM_PREFERENCE = "vlm_preference"  # RL-VLM-F's reward model of VLM preferences
    MPC = "mpc"  # L2R: a compute_reward program turned into motion by MPC, no RL
    MOTIF = "motif"  # Motif: env reward + a reward model of LLM preferences over captions

    def __str__(self) -> str:
        return self.value


REWARD_KINDS = tuple(k.value for k in RewardKind)
VISION_KINDS = (RewardKind.CLIP.value, RewardKind.VLM_PREFERENCE.value)  # no generated code
MPC_KIND = RewardKind.MPC.value
NO_CODE_KINDS = (*VISION_KINDS, RewardKind.MOTIF.value)  # trained without loading reward code


J = TypeVar("J", bound="WorkerJob")


@dataclass
class WorkerJob:
    """What every worker job has; one subclass per kind of worker (see :data:`JOB_TYPES`).

    The job crosses the process boundary as ``job.json``; its ``job`` field names the subclass
    (:func:`job_from_dict`), so a worker target always receives the type it was written for.
    """

    task: str
    out_dir: str
    seed: int = 0
    device: str = "auto"

    kind: ClassVar[str] = "worker"

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls: type[J], raw: dict[str, Any]) -> J:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass
class CandidateJob(WorkerJob):
    """A training job (the untrusted ``worker/train.py``) and its trusted evaluation
    (``worker/evaluate.py``, with ``checkpoint_dir`` set and no reward source).

    ``reward_source=None`` trains on the env's native reward; ``reward_kind="sparse"`` on the
    task's sparse reward expression.
    """

    reward_source: str | None = None
    reward_kind: str = "program"  # program | progress | native | sparse | clip | vlm_preference
    # | motif
    entry: str = "compute_reward"
    timesteps: int = 10_000
    eval_freq: int = 5_000
    eval_episodes: int = 3
    max_episode_steps: int | None = None
    rl: dict[str, Any] = field(default_factory=dict)  # RLConfig as a dict
    selection: str = "last_k"
    last_k: int = 3
    save_policy: bool = True
    stored_episodes: int = 6  # evaluation episodes kept in trajectories.npz (CARD screens: 100)
    tensorboard: bool = True
    smoke_states: int = 64
    smoke_call_timeout_s: float = 1.0
    call_budget_s: float | None = 0.01  # mean seconds per reward call in training (None: none)
    reward_options: dict[str, Any] = field(default_factory=dict)  # progress: bins, bonus, beta
    vision: dict[str, Any] = field(default_factory=dict)  # clip / vlm_preference settings
    checkpoint_dir: str | None = None  # trusted evaluation: the training worker's checkpoints
    follow: bool = False  # trusted evaluation while training goes on (loop.schedule): see evaluate.py
    # trusted evaluation: one reset seed per episode, drawn by the parent after training
    # (runs/seeds.py); None: the evaluator draws fresh ones per checkpoint, after reading it.
    # Never set in a training job.
    eval_seeds: list[int] | None = None

    kind: ClassVar[str] = "training"


TrainingJob = CandidateJob  # the name by what it does; CandidateJob is the run directory's word


@dataclass
class JudgeJob(WorkerJob):
    """A vision judge's rendering (trusted ``search/judge.py:judge_candidate``): roll out the
    evaluator's ``policy`` (policy.zip), keep frames, score them with CLIP when ``judge`` is
    ``clip``."""

    policy: str = ""
    algo: str = "ppo"
    judge: str = "frames"  # clip | frames (the VLM judge scores the frames in the parent)
    episodes: int = 2
    max_steps: int = 1000
    width: int = 224
    height: int = 224
    frame_skip: int = 1
    frames: int = 1  # frames per rollout kept for the VLM
    clip: dict[str, Any] = field(default_factory=dict)  # ClipConfig as a dict
    # one reset seed per rollout, drawn by the parent after the generation trained
    # (runs/seeds.py); empty: the judge draws its own
    episode_seeds: list[int] = field(default_factory=list)

    kind: ClassVar[str] = "judge"


@dataclass
class ScoreJob(WorkerJob):
    """A reward program run over stored episodes (untrusted ``worker/score.py``; CARD)."""

    reward_source: str = ""
    entry: str = "compute_reward"

    kind: ClassVar[str] = "score"


JOB_TYPES: dict[str, type[WorkerJob]] = {
    cls.kind: cls for cls in (CandidateJob, JudgeJob, ScoreJob)
}


def job_from_dict(raw: dict[str, Any]) -> WorkerJob:
    """The job a ``job.json`` holds, as its own type (a job without ``job``: training)."""
    kind = str(raw.get("job", CandidateJob.kind))
    if kind not in JOB_TYPES:
        raise ValueError(f"job.json names an unknown job type {kind!r}")
    return JOB_TYPES[kind].from_dict(raw)


@dataclass
class CandidateResult:
    """What happened to one candidate (see DESIGN.md, "Candidate result").

    Attributes:
        status: ok | rejected | failed | timeout | screened_out | pruned (stopped early by
            ``loop.schedule``; its curve, fitness and policy.zip are those of its last
            evaluated checkpoint).
        reason: one line for anything but ok.
        traceback: trimmed traceback of a failure, shown to the LLM.
        feedback: what a candidate that was not trained teaches the next prompt beyond its
            reason (``screened_out``: CARD's preference feedback, bounded by its maker).
        fitness: aggregated trusted fitness (selection uses this), None when not trained.
        success_rate: share of evaluation episodes that succeeded (None without a threshold).
        evaluations: the trusted evaluator's curve, one entry per checkpoint: ``timesteps``,
            ``fitness``, ``success_rate``, ``native_return``, ``length`` and ``seeds`` (the
            secret reset seed of each episode, :mod:`rewardgen.runs.seeds`; judges add entries).
        component_stats: per component, its mean episode sum over the training episodes
            between two checkpoints (reported by the candidate).
        episode_returns / native_returns / episode_lengths / episode_fitness: training episodes
            (reported by the candidate).
        reward_fitness_correlation: Pearson r between generated return and fitness over training
            episodes (reported); logged, never used for selection.
        reported: the names of the fields above whose values come from the candidate's own
            process (bounded and validated, shown as such, never used for selection).
        env_steps, wall_time_s, llm_tokens: cost.
    """

    status: str
    reason: str = ""
    traceback: str = ""
    feedback: str = ""
    fitness: float | None = None
    success_rate: float | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    component_stats: dict[str, list[float]] = field(default_factory=dict)
    episode_returns: list[float] = field(default_factory=list)
    native_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_fitness: list[float] = field(default_factory=list)
    reward_fitness_correlation: float | None = None
    env_steps: int = 0
    wall_time_s: float = 0.0
    llm_tokens: int = 0
    reward_sha256: str | None = None
    seed: int | None = None
    reported: list[str] = field(default_factory=list)  # fields reported by the candidate's process

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown candidate status {self.status!r}; expected one of {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def selectable(self) -> bool:
        """Whether selection may rank it: trained (``ok``) with a finite fitness.

        Example:
            >>> [CandidateResult("ok", fitness=f).selectable for f in (1.0, float("nan"), None)]
            [True, False, False]
        """
        return self.ok and self.fitness is not None and math.isfinite(self.fitness)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CandidateResult:
        """A worker's (or a saved) result, with the text its reward program controls cleaned."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in raw.items() if k in names}
        for key in ("reason", "traceback", "feedback"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = clean_text(kwargs[key], keep_newlines=key != "reason")
        if isinstance(kwargs.get("component_stats"), dict):
            kwargs["component_stats"] = _clean_keys(kwargs["component_stats"])
        if isinstance(kwargs.get("evaluations"), list):
            kwargs["evaluations"] = [
                {**e, "components": _clean_keys(e["components"])}
                if isinstance(e, dict) and isinstance(e.get("components"), dict) else e
                for e in kwargs["evaluations"]
            ]
        return cls(**kwargs)


def _clean_keys(named: dict[Any, Any]) -> dict[str, Any]:
    """Component names are reward-controlled: each limited to a safe identifier-like set
    (``component_name``), two that become the same told apart by a suffix."""
    out: dict[str, Any] = {}
    for key, value in named.items():
        name = component_name(key)
        while name in out:
            name = component_name(f"{name[:MAX_COMPONENT_NAME - 2]}_{len(out)}")
        out[name] = value
    return out
