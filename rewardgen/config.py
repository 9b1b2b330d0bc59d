"""Structured configs: one dataclass schema per config group, registered in Hydra's ConfigStore.

YAML files in conf/ supply the values; these schemas type-check them, so a misspelt key or a
wrong type fails at composition time with Hydra's own message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
class MethodConfig:
    """How prompts are built from (task, history) (``method=eureka``)."""

    name: str = "eureka"
    prompt_dir: str = "eureka"
    max_feedback_chars: int = 6000  # bound on feedback text carried into the next prompt


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
class LoopConfig:
    """The evolutionary loop."""

    generations: int = 5
    samples: int = 16
    selection: str = "last_k"  # final | last_k | max over the evaluations of one training
    last_k: int = 3


@dataclass
class FinalConfig:
    """"Short search, long final": retrain the best reward with its own budget and seeds."""

    enabled: bool = True
    timesteps: int = 300_000
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    baselines: list[str] = field(default_factory=lambda: ["native", "sparse"])


@dataclass
class SandboxConfig:
    """Isolation of each candidate's worker process."""

    timeout_s: float = 3600.0  # wall clock per candidate (kills the whole process group)
    memory_mb: int = 4096  # address-space limit on CPU (RSS watch on GPU)
    cpu_time_s: int | None = None
    max_processes: int | None = None
    max_open_files: int = 1024
    max_file_size_mb: int = 512
    network: bool = False  # False: a new network namespace where the OS allows
    smoke_states: int = 64
    smoke_call_timeout_s: float = 1.0
    output_limit_kb: int = 256


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


@dataclass
class RewardGenConfig:
    """The root config of ``rewardgen``."""

    task: str = "hopper"
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


@dataclass
class EvalConfig:
    """The root config of ``rewardgen-eval``: train and score one reward file."""

    task: str = "hopper"
    reward_file: str | None = None  # None: the native reward
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    rl: RLConfig = field(default_factory=RLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    fitness_aggregate: str = "last_k"
    last_k: int = 3


def register_configs() -> None:
    """Register the schemas so conf/*.yaml is validated against them."""
    cs = ConfigStore.instance()
    cs.store(name="rewardgen_schema", node=RewardGenConfig)
    cs.store(name="eval_schema", node=EvalConfig)


__all__ = ["MISSING", "RewardGenConfig", "EvalConfig", "register_configs"]
