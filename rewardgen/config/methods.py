"""The ``method`` group's schemas: one dataclass per method (``method=NAME`` composes
``conf/method/NAME.yaml`` over ``method/NAME_schema``), and the vision settings they share."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewardgen.errors import ConfigError


@dataclass
class RenderConfig:
    """Headless frames for vision rewards (``method=clip|vlm_preference``)."""

    width: int = 224
    height: int = 224
    frame_skip: int = 1  # render (and score) every k-th step; the last score is repeated between


@dataclass
class ClipConfig:
    """The CLIP zero-shot reward of VLM-RM (``method=clip``); see docs/vision.md.

    Defaults are the paper's (its official config): ViT-bigG-14 laion2b weights, the textured
    humanoid and camera, and (in conf/method/clip.yaml) SAC. Weights are never downloaded.
    """

    model: str = "ViT-bigG-14"  # an open_clip model name, or a path to a model-config JSON file
    pretrained: str | None = "laion2b_s39b_b160k"  # cached tag or checkpoint path; None: random
    goal_prompts: list[str] | None = None  # None: the task's vision.goal_prompts
    baseline_prompts: list[str] | None = None  # None: the task's vision.baseline_prompts
    alpha: float = 0.5  # 0: cosine similarity to the goal; 1: only the goal-baseline direction
    mode: str = "step"  # step: a VecEnv wrapper scores each step | deferred: whole rollouts
    batch_size: int = 64
    normalize: bool = False  # running mean/std normalisation of the reward
    cache_dir: str | None = None  # where tagged weights are cached (None: the Hugging Face cache)
    textured: bool = True  # render the task's vision.textured variant (VLM-RM's humanoid, camera)


@dataclass
class PreferenceConfig:
    """The VLM preference reward of RL-VLM-F (``method=vlm_preference``); the VLM is ``llm``.

    Defaults are the paper's (its official code and MetaWorld schedule); see docs/methods.md.
    """

    question: str | None = None  # the goal ("to kneel"); None: the task's vision.question
    reward_model: str = "cnn"  # cnn: RL-VLM-F's conv stack on frames | mlp: on the State view
    ensemble: int = 3
    image_size: int = 224  # frames are resized to this square for the CNN reward model (>= 47)
    pairs_per_round: int = 40  # RL-VLM-F's reward_batch
    steps_between_rounds: int = 4000  # env steps between query rounds (num_interact)
    first_round_after: int = 10_000  # env steps before the first round (seed + unsup steps)
    budget: int = 20_000  # total VLM queries (pairs) over the whole training (max_feedback)
    accuracy_threshold: float = 0.97  # stop fitting once training accuracy exceeds this
    max_epochs: int = 10  # epochs per fit (reward_update)
    lr: float = 3e-4
    capacity: int = 10_000  # most recent stored frames that query pairs are drawn from
    bootstrap: bool = False  # fit each member on a bootstrap sample (ours) instead of all pairs
    temperature: float | None = 0.0  # of the labelling requests; None: llm.temperature
    stage2: str = "text"  # text: a text-only query summarises the analysis | chat: continue it
    summary_model: str | None = None  # model of the text-only stage 2; None: llm.model
    label_parse: str = "strict"  # strict: the first line is the label | lenient: any 0/1/-1


@dataclass
class MethodConfig:
    """What every method has (``method=NAME`` picks its own schema below, registered as
    ``method/NAME_schema``: a key of another method is refused, not silently ignored)."""

    name: str = "eureka"
    prompt_dir: str = "eureka"
    max_feedback_chars: int = 6000  # bound on feedback text carried into the next prompt


@dataclass
class CodeMethodConfig(MethodConfig):
    """A method whose LLM writes reward programs. ``render``, ``clip`` and ``preference.question``
    configure the vision judges of its candidates (``loop.judge=clip|vlm``,
    ``feedback.preference=vlm``)."""

    render: RenderConfig = field(default_factory=RenderConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)


@dataclass
class EurekaMethodConfig(CodeMethodConfig):
    """``method=eureka`` (Eureka; ICPL with ``feedback.preference``; CARD with its options)."""


@dataclass
class Text2RewardMethodConfig(CodeMethodConfig):
    """``method=text2reward``."""

    name: str = "text2reward"
    prompt_dir: str = "text2reward"
    mode: str = "zero_shot"  # zero_shot | few_shot (examples from library_dir)
    library_dir: str | None = None  # folder of exported rewards: <entry>/reward.py + meta.json
    few_shot_k: int = 1  # examples shown in few-shot mode (the paper: 1, never the task's own)
    similarity: str = "auto"  # auto: the LLM server's embeddings, else tokens | embeddings | tokens
    embedding_model: str = "text-embedding-3-small"  # similarity=auto|embeddings


@dataclass
class ProgressMethodConfig(CodeMethodConfig):
    """``method=progress`` (progress functions and count-based exploration)."""

    name: str = "progress"
    prompt_dir: str = "progress"
    bins: int = 10  # cells per progress term
    bonus: str = "count"  # count (beta/sqrt(N(cell))) | hash (raw-State counts) | dense (progress)
    beta: float = 1.0  # scale of the count bonus (or of the dense progress)
    hash_resolution: float = 0.1  # grid of the raw-State hash (bonus=hash)


@dataclass
class MPCConfig:
    """The MPC planner over ``mujoco.rollout``: L2R's optimiser (``method.mpc``) and the MPC
    screen (``loop.screening_mpc``); see docs/methods.md and rewardgen/worker/planner.py."""

    horizon: int | None = 8  # control steps each rollout looks ahead; null: horizon_s
    horizon_s: float | None = None  # look-ahead in seconds, in each task's control steps
    planner: str = "sampling"  # sampling (MJPC's predictive sampling) | cem | gradient
    iterations: int = 1  # refinement rounds per control step (L2R runs 5 planner steps)
    samples: int = 8  # rollouts per round: the nominal and samples - 1 perturbations
    noise: float = 0.2  # std of the knot perturbation, as a share of half the action range
    knots: int = 3  # spline knots over the horizon
    spline: str = "linear"  # linear | zero (held between knots)
    # always-on regularisers of the planner's objective, under every reward program (L2R's
    # Posture 0.01 and act_dot 2e-5, default_task_parameters.py): squared actuated-joint
    # distance from the model's qpos0, squared action change per second
    posture_weight: float = 0.0
    action_rate_weight: float = 0.0
    episode_steps: int = 200  # control steps of one MPC episode (the env's own cap still applies)
    threads: int = 2  # mujoco.rollout threads


@dataclass
class L2RMethodConfig(CodeMethodConfig):
    """``method=l2r`` (Language to Rewards): a motion description, then a reward program that
    sampling-based MPC turns into motion; no RL."""

    name: str = "l2r"
    prompt_dir: str = "l2r"
    mpc: MPCConfig = field(default_factory=MPCConfig)
    video: bool = True  # render each MPC episode's trusted replay to video.mp4/gif
    max_description_chars: int = 4000  # bound on the motion description carried into prompts
    coder_history: bool = False  # the coder sees the previous program and failures (L2R: no)
    max_reasks: int = 5  # an unfilled template is asked again up to this often (L2R: forever)


@dataclass
class ClipMethodConfig(MethodConfig):
    """``method=clip`` (VLM-RM): no generated code."""

    name: str = "clip"
    render: RenderConfig = field(default_factory=RenderConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)


@dataclass
class VlmPreferenceMethodConfig(MethodConfig):
    """``method=vlm_preference`` (RL-VLM-F): no generated code."""

    name: str = "vlm_preference"
    render: RenderConfig = field(default_factory=RenderConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)


@dataclass
class MotifMethodConfig(MethodConfig):
    """``method=motif`` (Motif): LLM preferences over episode captions -> intrinsic reward."""

    name: str = "motif"
    prompt_dir: str = "motif"
    episodes: int = 64  # episodes collected and captioned before any preference is asked
    collect_timesteps: int = 0  # 0: a random policy collects | N: a native-reward PPO of N steps
    pairs: int = 100  # caption pairs sent to the LLM, each asked in both orders
    states_per_pair: int = 32  # State pairs drawn from each labelled episode pair for the fit
    ensemble: int = 3  # reward-model members (rewards/preference_model.py, its mlp)
    max_epochs: int = 50
    lr: float = 3e-4
    accuracy_threshold: float = 0.97
    coefficient: float = 0.1  # weight of the normalised intrinsic reward beside the env's
    env_coefficient: float = 1.0  # weight of the task's env reward
    threshold_percentile: float = 50.0  # intrinsic reward below this dataset percentile -> 0
    temperature: float | None = 0.0  # of the preference requests; None: llm.temperature


METHOD_SCHEMAS: dict[str, type[MethodConfig]] = {
    "eureka": EurekaMethodConfig,
    "text2reward": Text2RewardMethodConfig,
    "progress": ProgressMethodConfig,
    "l2r": L2RMethodConfig,
    "clip": ClipMethodConfig,
    "vlm_preference": VlmPreferenceMethodConfig,
    "motif": MotifMethodConfig,
}


def method_schema(name: str) -> type[MethodConfig]:
    """The schema of ``method=name`` (conf/method/<name>.yaml is validated against it)."""
    if name not in METHOD_SCHEMAS:
        raise ConfigError(f"method={name!r} is not one of {', '.join(METHOD_SCHEMAS)}")
    return METHOD_SCHEMAS[name]
