"""Structured configs: one dataclass schema per config group, registered in Hydra's ConfigStore.

YAML files in conf/ supply the values; these schemas type-check them, so a misspelt key or a
wrong type fails at composition time with Hydra's own message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from rewardgen.config.methods import (
    METHOD_SCHEMAS,
    ClipConfig,
    ClipMethodConfig,
    CodeMethodConfig,
    EurekaMethodConfig,
    L2RMethodConfig,
    MethodConfig,
    MotifMethodConfig,
    MPCConfig,
    PreferenceConfig,
    ProgressMethodConfig,
    RenderConfig,
    Text2RewardMethodConfig,
    VlmPreferenceMethodConfig,
    method_schema,
)


@dataclass
class LLMConfig:
    """The proposer of reward code (``llm=auto|openai|offline|replay``)."""

    provider: str = "auto"  # auto: openai when a key or base URL is configured, else offline
    model: str = "gpt-4o"
    base_url: str | None = None  # else $OPENAI_BASE_URL, else api.openai.com
    api_key: str | None = None  # else $OPENAI_API_KEY; never written to the run directory
    temperature: float = 1.0
    max_tokens: int | None = None
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    max_parallel: int = 8  # parallel single requests when a server ignores n
    cache: bool = True
    cache_dir: str | None = None  # default: the user's cache directory
    price_input_per_mtok: float = 0.0  # USD per million prompt tokens, for cost accounting
    price_output_per_mtok: float = 0.0
    context_tokens: int = 128_000
    replay_dir: str | None = None  # llm=replay: folder of prompt/answer files, or a run directory
    replay_wait_s: float = 0.0  # llm=replay: how long to wait for an answer file (0: fail at once)


@dataclass
class RLConfig:
    """The RL algorithm and its hyperparameters (``rl=ppo|sac``), rl-zoo3 style."""

    algo: str = "ppo"
    n_envs: int = 4
    vec_env: str = "dummy"  # dummy | subproc
    policy: str = "MlpPolicy"
    common: dict[str, Any] = field(default_factory=dict)  # defaults for every task
    per_task: dict[str, Any] = field(default_factory=dict)  # task name -> tuned values
    hyperparams: dict[str, Any] = field(default_factory=dict)  # user overrides, applied last


@dataclass
class TrainConfig:
    """Training budget and evaluation of one candidate."""

    timesteps: int = 100_000
    eval_freq: int = 10_000  # env steps between evaluations of the trusted fitness
    eval_episodes: int = 5
    save_policy: bool = True
    tensorboard: bool = True
    max_episode_steps: int | None = None  # override the task's episode cap (short CPU budgets)


@dataclass
class PrunerConfig:
    """How ``loop.schedule`` stops a generation's candidates early (Optuna's pruners).

    Each candidate's trusted fitness at every evaluation point (its selection score so far,
    ``loop.selection``) is reported to one in-memory Optuna study per generation.
    """

    min_steps: int | None = None  # halving: env steps of the first rung (None: train.eval_freq)
    reduction_factor: int = 2  # halving: only the top 1/reduction_factor at a rung go on
    min_early_stopping_rate: int = 0  # halving: rung k is at min_steps * factor**(rate + k)
    startup_candidates: int = 2  # median: candidates that finish before any is pruned
    warmup_steps: int = 0  # median: no pruning before this many env steps


@dataclass
class LoopConfig:
    """The evolutionary loop."""

    generations: int = 5
    samples: int = 16
    schedule: str = "full"  # full: every candidate trains its budget | halving | median (early stops)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)  # loop.schedule's settings
    selection: str = "max"  # max (Eureka's peak) | last_k (mean of the last k) | final
    last_k: int = 3
    context: str = "iteration"  # the reward in the next prompt: iteration (Eureka) | all_time
    screening: str = "none"  # none | trajectory_preference (CARD) | mpc (one MPC episode first)
    # card: share of successes above the BEST failure per step (CARD) | card_pairs | pairwise
    screening_test: str = "card"
    screening_threshold: float = 0.8  # least accuracy to be trained (CARD: 0.8)
    screening_episodes: int = 100  # stored episodes each trained candidate adds (CARD: 100)
    screening_pool: int = 200  # episodes per screening at most (the scorer has 2 minutes)
    screening_mpc: MPCConfig = field(default_factory=lambda: MPCConfig(episode_steps=100))
    screening_mpc_margin: float = 0.5  # screened out below best - margin * |best| (MPC fitness)
    judge: str = "none"  # none | clip | vlm: a vision judge's score replaces the task fitness
    judge_episodes: int = 2  # rollouts rendered per trained candidate for the judge
    judge_steps: int | None = None  # steps per judged rollout (None: the episode cap)
    judge_frames: int = 1  # frames per rollout shown to the VLM, evenly spaced, ending last


@dataclass
class FinalConfig:
    """"Short search, long final": retrain the best reward with its own budget and seeds.

    The generated, native and sparse rewards all train on the same final seeds, none of which the
    search trained with (reusing the winning seed would repeat the winning training).
    """

    enabled: bool = True
    timesteps: int = 300_000
    seeds: list[int] | None = None  # None: n_seeds fresh seeds seed+1000*k; a search seed is refused
    n_seeds: int = 3
    baselines: list[str] = field(default_factory=lambda: ["native", "sparse"])


@dataclass
class SandboxConfig:
    """Isolation of each candidate's worker process."""

    backend: str = "bwrap"  # bwrap: reward code runs in bubblewrap | process: rlimits + netns only
    timeout_s: float = 3600.0  # wall clock per candidate (kills the whole process group)
    memory_mb: int = 4096  # address-space limit on CPU (RSS watch on GPU)
    cpu_time_s: int | None = None
    max_processes: int | None = None
    max_open_files: int = 1024
    max_file_size_mb: int = 512
    network: bool = False  # False: a new network namespace where the OS allows
    smoke_states: int = 64
    smoke_call_timeout_s: float = 1.0
    # mean seconds per reward-program call during training, measured as it trains; a candidate
    # above it (after CALL_BUDGET_GRACE_S of reward time) ends early as failed. null: no budget
    call_budget_s: float | None = 0.01
    output_limit_kb: int = 256
    # what a bubblewrap worker may hold in host RAM and disk (no rlimit counts either)
    tmp_mb: int = 512  # its private /tmp (tmpfs)
    shm_mb: int = 64  # its private /dev/shm (tmpfs)
    output_mb: int = 2048  # its output folder (cand_XX/train/), measured while it runs
    output_files: int = 10_000  # ... and the entries in it
    # share of a GPU's memory a CUDA worker may take (JAX/XLA and torch allocators; null: 0.9
    # divided by the workers that share the GPU)
    gpu_memory_fraction: float | None = None


@dataclass
class ExecutorConfig:
    """Where candidates train (``executor=local|ray``)."""

    name: str = "local"
    workers: int | None = None  # default: cores / envs per candidate
    address: str | None = None  # ray: auto | ray://host:port | local (None: Ray's own default)
    cpus_per_candidate: float = 1.0  # ray: CPUs each candidate's task reserves
    gpus_per_candidate: float = 0.0  # ray: GPUs each candidate's task reserves (may be fractional)
    max_retries: int = 0  # ray: re-run a candidate whose node or worker died (0: a failed result)


@dataclass
class FeedbackConfig:
    """Extra feedback in the next prompt."""

    human: str | None = None  # free text, added to every feedback prompt
    human_file: str | None = None  # a file read afresh at every generation
    mode: str = "auto"  # auto (metrics) | interactive (ask in the terminal) | file (human_file)
    # CARD process feedback (components along the best reward's episodes); null: on exactly
    # when CARD screens (loop.screening=trajectory_preference), as CARD's code does
    process: bool | None = None
    preference: str | None = None  # ICPL ranking: human | file | fitness | vlm
    preference_file: str | None = None  # preference=file: labels best first, one per line
    preference_chars: int = 12_000  # ICPL text's own bound: drops old trace diffs, never cuts code
    preference_samples: int | None = 6  # samples per generation with a preference (ICPL: 6)
    preference_best: str = "fitness"  # the run's best: fitness (ICPL's code) | preferred (latest)


@dataclass
class ReportConfig:
    """The HTML report written at the end of every run (``rewardgen-report`` remakes it)."""

    enabled: bool = True
    videos: bool = True  # rollout videos of each generation's best (a few seconds each)
    video_steps: int = 300


@dataclass
class RewardGenConfig:
    """The root config of ``rewardgen``."""

    task: str = "hopper"
    task_dirs: list[str] = field(default_factory=list)  # folders of <task>.yaml, before envs/
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    llm: LLMConfig = field(default_factory=LLMConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


@dataclass
class EvalConfig:
    """The root config of ``rewardgen-eval``: train and score one reward file."""

    task: str = "hopper"
    task_dirs: list[str] = field(default_factory=list)  # folders of <task>.yaml, before envs/
    reward_file: str | None = None  # None: the native reward
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    rl: RLConfig = field(default_factory=RLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # seeds train in parallel
    fitness_aggregate: str = "last_k"
    last_k: int = 3


def as_plain(node: Any) -> Any:
    """A composed config node as plain Python (dicts, lists), resolved; anything else as it is."""
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def as_sandbox_config(cfg: Any) -> SandboxConfig:
    """A SandboxConfig from a schema instance or a composed ``sandbox`` node."""
    if isinstance(cfg, SandboxConfig):
        return cfg
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return SandboxConfig(**raw)  # type: ignore[arg-type]


def register_configs() -> None:
    """Register the schemas so conf/*.yaml is validated against them."""
    cs = ConfigStore.instance()
    cs.store(name="rewardgen_schema", node=RewardGenConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="method", name=f"{name}_schema", node=schema)


__all__ = [
    "METHOD_SCHEMAS", "MISSING", "ClipConfig", "ClipMethodConfig", "CodeMethodConfig",
    "EurekaMethodConfig", "EvalConfig", "L2RMethodConfig", "MPCConfig", "MethodConfig",
    "MotifMethodConfig", "PreferenceConfig", "ProgressMethodConfig", "RenderConfig",
    "RewardGenConfig", "Text2RewardMethodConfig", "VlmPreferenceMethodConfig", "method_schema",
    "as_plain", "register_configs",
]
