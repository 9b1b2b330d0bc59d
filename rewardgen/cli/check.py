"""Fail before spending: the whole composed config is checked before any LLM request, training
or run directory.

Hydra's schemas (``rewardgen/config/``) check keys and types; this module checks what types cannot say:
enumerations (``loop.selection``, ``rl.algo``, ...), ranges (``train.timesteps >= 1``), the device
actually present, paths that must exist, and keys that do not exist (a mistyped override gets
the closest real key, never Hydra's ``+key`` hint, which would run with the default). Every error
is one :class:`ConfigError` line naming the bad value and the fix; :func:`validate` returns
warnings (settings that run but learn nothing) for the caller to log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rewardgen.cli.keys import (
    check_override_keys,
    compose_error,
    config_method,
    key_error,
    unknown_keys,
)
from rewardgen.cli.memory import VISION_KINDS, check_memory
from rewardgen.cli.secret_args import check_no_secret_in_config
from rewardgen.cli.values import (
    at_least,
    existing_dir,
    one_of,
    optional_at_least,
    positive,
    seeds,
)
from rewardgen.config import EvalConfig, RewardGenConfig
from rewardgen.errors import ConfigError
from rewardgen.runs.store import CONTEXTS

# Enumerations owned by modules that import torch (slow to load in the CLI process); the test
# suite checks them against rewardgen.train.stats.SELECTIONS, rewardgen.train.sb3.VEC_ENVS /
# ALGORITHMS, rewardgen.rewards.preference_model.REWARD_MODELS and SB3's policy aliases.
SELECTIONS = ("final", "last_k", "max")
ALGOS = ("ppo", "sac")
VEC_ENVS = ("dummy", "subproc")
POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")  # SB3's policy_aliases of PPO and SAC
REWARD_MODELS = ("cnn", "mlp")
CLIP_MODES = ("step", "deferred")
BASELINES = ("native", "sparse")

# A worker loads torch, stable-baselines3 and MuJoCo under ``sandbox.memory_mb`` of address space;
# torch alone maps about 3.2 GB of it (measured: 3200 MB fails to import, 3350 MB trains).
MIN_MEMORY_MB = 3500
SB3_LEARNING_STARTS = 100  # SAC's default when no layer of rl hyperparameters sets it


def _check_device(device: str, executor: Any | None) -> None:
    if device in ("auto", "cpu"):
        return
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N; device=auto "
                          "uses a GPU when there is one")
    if executor is not None and executor.name == "ray":
        if float(executor.gpus_per_candidate) <= 0:
            raise ConfigError(f"device={device} with executor=ray needs GPUs for each candidate: "
                              "set executor.gpus_per_candidate (e.g. 1 or 0.25), or device=auto")
        return  # the GPUs are the cluster's, not this machine's
    from rewardgen.executors.local import visible_gpus

    if not visible_gpus(device):
        raise ConfigError(f"device={device} but this machine shows no GPU to rewardgen (CUDA "
                          "unavailable or CUDA_VISIBLE_DEVICES empty); use device=cpu, or "
                          "device=auto to use a GPU only when there is one")


def _check_rl(rl: Any) -> None:
    one_of("rl.algo", str(rl.algo).lower(), ALGOS)
    at_least("rl.n_envs", rl.n_envs, 1)
    one_of("rl.vec_env", rl.vec_env, VEC_ENVS)
    one_of("rl.policy", rl.policy, POLICIES)


def _check_train(train: Any, prefix: str = "train") -> None:
    at_least(f"{prefix}.timesteps", train.timesteps, 1, "the env steps each training runs, "
              f"e.g. {prefix}.timesteps=100_000")
    at_least(f"{prefix}.eval_freq", train.eval_freq, 1)
    at_least(f"{prefix}.eval_episodes", train.eval_episodes, 1)
    optional_at_least(f"{prefix}.max_episode_steps", train.max_episode_steps, 1)


def _check_sandbox(sandbox: Any) -> None:
    if "backend" in sandbox:
        from rewardgen.sandbox.bwrap import check_backend

        check_backend(str(sandbox.backend))  # bubblewrap present and able to start a sandbox
    positive("sandbox.timeout_s", sandbox.timeout_s, "the wall-clock seconds of one training")
    if sandbox.memory_mb is None or sandbox.memory_mb < MIN_MEMORY_MB:
        raise ConfigError(
            f"sandbox.memory_mb={sandbox.memory_mb} is below the {MIN_MEMORY_MB} MB a worker "
            f"needs to load torch, stable-baselines3 and MuJoCo; use at least "
            f"sandbox.memory_mb={MIN_MEMORY_MB} (default 4096)")
    optional_at_least("sandbox.cpu_time_s", sandbox.cpu_time_s, 1)
    optional_at_least("sandbox.max_processes", sandbox.max_processes, 1)
    at_least("sandbox.max_open_files", sandbox.max_open_files, 64)
    at_least("sandbox.max_file_size_mb", sandbox.max_file_size_mb, 1)
    at_least("sandbox.smoke_states", sandbox.smoke_states, 1)
    positive("sandbox.smoke_call_timeout_s", sandbox.smoke_call_timeout_s)
    optional_at_least("sandbox.call_budget_s", sandbox.get("call_budget_s"), 1e-4)
    at_least("sandbox.output_limit_kb", sandbox.output_limit_kb, 1)
    for key, least in (("tmp_mb", 16), ("shm_mb", 1), ("output_mb", 16), ("output_files", 64)):
        if key in sandbox:
            at_least(f"sandbox.{key}", sandbox[key], least)
    fraction = sandbox.get("gpu_memory_fraction")
    if fraction is not None and not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"sandbox.gpu_memory_fraction={fraction} must be in (0, 1] or null")


def _check_llm(llm: Any) -> None:
    from rewardgen.llm import PROVIDERS

    one_of("llm.provider", str(llm.provider or "auto").lower(), PROVIDERS)
    if llm.temperature < 0:
        raise ConfigError(f"llm.temperature={llm.temperature} must be at least 0")
    optional_at_least("llm.max_tokens", llm.max_tokens, 1)
    positive("llm.timeout_s", llm.timeout_s)
    at_least("llm.max_retries", llm.max_retries, 0)
    at_least("llm.backoff_initial_s", llm.backoff_initial_s, 0)
    at_least("llm.backoff_max_s", llm.backoff_max_s, 0)
    at_least("llm.max_parallel", llm.max_parallel, 1)
    at_least("llm.context_tokens", llm.context_tokens, 1)
    at_least("llm.price_input_per_mtok", llm.price_input_per_mtok, 0)
    at_least("llm.price_output_per_mtok", llm.price_output_per_mtok, 0)
    at_least("llm.replay_wait_s", llm.replay_wait_s, 0)
    if str(llm.provider).lower() == "replay" and not llm.replay_dir:
        raise ConfigError("llm=replay needs llm.replay_dir=DIR: a folder for prompt/answer "
                          "files, or a run directory to replay")
    if str(llm.provider).lower() == "openai":
        from rewardgen.llm.client import resolve_endpoint

        if resolve_endpoint(llm) == (None, None):
            raise ConfigError(
                "llm=openai needs an API key or a server: set OPENAI_API_KEY (or llm.api_key), "
                "or llm.base_url / OPENAI_BASE_URL for a local OpenAI-compatible server")


def _check_method(method: Any) -> None:
    from rewardgen.methods import METHODS
    from rewardgen.methods.text2reward import MODES, SIMILARITIES
    from rewardgen.rewards.progress import BONUSES
    from rewardgen.search.vision import VISION_METHODS

    one_of("method.name", method.name, (*METHODS, *VISION_METHODS, "motif"))
    at_least("method.max_feedback_chars", method.max_feedback_chars, 0)
    if method.name == "text2reward":
        one_of("method.mode", method.mode, MODES)
        at_least("method.few_shot_k", method.few_shot_k, 1)
        one_of("method.similarity", method.similarity, SIMILARITIES)
        if method.mode == "few_shot":
            existing_dir("method.library_dir", method.library_dir, "a folder of exported rewards")
    if method.name == "progress":
        at_least("method.bins", method.bins, 1)
        one_of("method.bonus", method.bonus, BONUSES)
        at_least("method.beta", method.beta, 0)
        positive("method.hash_resolution", method.hash_resolution)
    if method.name in VISION_METHODS:
        at_least("method.render.width", method.render.width, 1)
        at_least("method.render.height", method.render.height, 1)
        at_least("method.render.frame_skip", method.render.frame_skip, 1)
    if method.name == "clip":
        clip = method.clip
        if not 0.0 <= clip.alpha <= 1.0:
            raise ConfigError(f"method.clip.alpha={clip.alpha} must lie in [0, 1] (0: similarity "
                              "to the goal, 1: only the goal-baseline direction)")
        one_of("method.clip.mode", clip.mode, CLIP_MODES)
        at_least("method.clip.batch_size", clip.batch_size, 1)
    if method.name == "motif":
        from rewardgen.methods.motif import check_motif_config

        check_motif_config(method)
    if method.name == "vlm_preference":
        p = method.preference
        one_of("method.preference.reward_model", p.reward_model, REWARD_MODELS)
        for name in ("ensemble", "image_size", "pairs_per_round", "max_epochs", "capacity"):
            at_least(f"method.preference.{name}", p[name], 1)
        for name in ("steps_between_rounds", "first_round_after", "budget"):
            at_least(f"method.preference.{name}", p[name], 0)
        positive("method.preference.lr", p.lr)
        if not 0.0 < p.accuracy_threshold <= 1.0:
            raise ConfigError(f"method.preference.accuracy_threshold={p.accuracy_threshold} must "
                              "lie in (0, 1]")


def _check_offline(cfg: Any, task: Any) -> None:
    """Each method runs without a language model (seed-term baseline, CLIP) or is refused here."""
    from rewardgen.llm import offline_terms, uses_offline
    from rewardgen.methods import METHODS, method_class
    from rewardgen.search.vision import VISION_METHODS, vision_settings

    if cfg.method.name in VISION_METHODS:
        vision_settings(cfg, task)  # CLIP weights on this machine; a VLM endpoint
    elif cfg.method.name == "motif":
        from rewardgen.methods.motif import check_motif_run

        check_motif_run(cfg, task)  # loop.*, the env reward, a caption without the score
    elif cfg.method.name in METHODS and uses_offline(cfg.llm):
        offline_terms(task, method_class(str(cfg.method.name)).entry)
        if cfg.method.get("similarity") == "embeddings" and cfg.method.mode == "few_shot":
            raise ConfigError("method.similarity=embeddings needs an OpenAI-compatible server and "
                              "this run has none (llm=offline); use method.similarity=tokens")


def _check_loop(cfg: Any, task: Any) -> None:
    from rewardgen.search.judge import check_judge_config
    from rewardgen.search.screening import SCREENING_TESTS, SCREENINGS

    loop = cfg.loop
    at_least("loop.generations", loop.generations, 1, "the rounds of propose, train, select")
    at_least("loop.samples", loop.samples, 1, "the reward programs asked of the LLM per "
              "generation, e.g. loop.samples=16")
    one_of("loop.selection", loop.selection, SELECTIONS)
    at_least("loop.last_k", loop.last_k, 1)
    one_of("loop.context", loop.context, CONTEXTS)
    one_of("loop.screening", loop.screening, SCREENINGS)
    one_of("loop.screening_test", loop.screening_test, SCREENING_TESTS)
    if not 0.0 <= loop.screening_threshold <= 1.0:
        raise ConfigError(f"loop.screening_threshold={loop.screening_threshold} must lie in [0, 1]")
    at_least("loop.screening_episodes", loop.screening_episodes, 1,
             "stored episodes each trained candidate adds to CARD's pool, e.g. 100")
    at_least("loop.screening_pool", loop.screening_pool, 2,
             "episodes one CARD screening scores at most, e.g. 200")
    if loop.screening == "mpc":
        at_least("loop.screening_mpc_margin", loop.screening_mpc_margin, 0)
    if cfg.method.name == "l2r":
        at_least("method.max_reasks", cfg.method.max_reasks, 0,
                 "how often an unfilled motion template is asked again, e.g. 5")
    if cfg.method.name == "l2r" and (str(loop.judge) != "none"
                                     or cfg.feedback.get("preference") == "vlm"):
        raise ConfigError("method=l2r trains no policy for a vision judge to render; use "
                          "loop.judge=none (its MPC episodes have videos: feedback.mode=interactive)")
    optional_at_least("loop.judge_steps", loop.judge_steps, 1)
    from rewardgen.search.schedule import check_schedule, pruner_params

    check_schedule(str(loop.schedule), pruner_params(loop.pruner), int(cfg.train.eval_freq))
    check_judge_config(cfg, task)  # kind, episodes, frames, prompts, the VLM's endpoint


def _check_final(cfg: Any) -> None:
    final = cfg.final
    if not final.enabled:
        return
    at_least("final.timesteps", final.timesteps, 1, "or final.enabled=false")
    seeds("final.seeds", final.get("seeds"), "[1000,2000,3000]")
    if final.get("seeds") is None and final.get("n_seeds") is not None:
        at_least("final.n_seeds", final.n_seeds, 1, "or final.enabled=false")
    for name in final.baselines or []:
        one_of("final.baselines", name, BASELINES)
    from rewardgen.search import final as final_phase

    seeds_of = getattr(final_phase, "final_seeds", None)
    if seeds_of is not None:
        seeds_of(cfg)  # the final phase's own rules (fresh seeds, no repeats)


def _check_executor(executor: Any) -> None:
    from rewardgen.executors import EXECUTORS

    one_of("executor.name", executor.name, EXECUTORS)
    optional_at_least("executor.workers", executor.workers, 1)
    positive("executor.cpus_per_candidate", executor.cpus_per_candidate)
    at_least("executor.gpus_per_candidate", executor.gpus_per_candidate, 0)
    at_least("executor.max_retries", executor.max_retries, 0)


def _check_task(cfg: Any) -> Any:
    from rewardgen.tasks.spec import load_task, use_task_dirs

    use_task_dirs(cfg.get("task_dirs"))
    return load_task(str(cfg.task))


def _sac_warnings(cfg: Any, task_name: str, budgets: dict[str, int]) -> list[str]:
    """SAC does not update its policy before ``learning_starts`` steps: a shorter budget trains
    nothing, and every candidate scores as an untrained policy."""
    if str(cfg.rl.algo).lower() != "sac":
        return []
    from rewardgen.train.sb3 import hyperparams_for

    rl = OmegaConf.to_container(cfg.rl, resolve=True)
    starts = int(hyperparams_for(rl, task_name).get("learning_starts",  # type: ignore[arg-type]
                                                    SB3_LEARNING_STARTS))
    return [f"{name}={steps} is not above SAC's learning_starts={starts} (rl.common / "
            f"rl.per_task.{task_name} / rl.hyperparams): the policy is never updated; raise "
            f"{name} or set rl.hyperparams.learning_starts below it"
            for name, steps in budgets.items() if steps <= starts]


def validate(cfg: DictConfig) -> list[str]:
    """Check a composed ``rewardgen`` or ``rewardgen-eval`` config; return warnings.

    Called by every entry point right after composing, before anything is spent or written.

    Raises:
        ConfigError: one line naming the bad value and the fix.
        TaskError: the task is unknown, or its file is missing or malformed.
    """
    is_eval = "reward_file" in cfg
    schema: type = EvalConfig if is_eval else RewardGenConfig
    extra = unknown_keys(cfg, schema)
    if extra:
        raise ConfigError(key_error(extra[0], schema, method=config_method(cfg))
                          or f"{extra[0]} is not a config key")
    task = _check_task(cfg)
    if str(cfg.rl.algo).lower() == "brax_ppo":  # its own checks: task, packages, batch sizes
        from rewardgen.train.brax_config import check_config

        check_config(cfg, task)
    else:
        _check_rl(cfg.rl)
    _check_train(cfg.train)
    _check_sandbox(cfg.sandbox)
    budgets = {"train.timesteps": int(cfg.train.timesteps)}
    if is_eval:
        one_of("fitness_aggregate", cfg.fitness_aggregate, SELECTIONS)
        at_least("last_k", cfg.last_k, 1)
        seeds("seeds", cfg.seeds, "[0,1,2]")
        if cfg.reward_file and not Path(str(cfg.reward_file)).expanduser().is_file():
            raise ConfigError(f"reward_file={cfg.reward_file} does not exist; give the path of a "
                              "Python file with compute_reward(state, action, prev_state), or "
                              "reward_file=null for the native reward")
        _check_device(str(cfg.device), None)
    else:
        _check_llm(cfg.llm)
        _check_method(cfg.method)
        _check_offline(cfg, task)
        _check_loop(cfg, task)
        _check_final(cfg)
        _check_executor(cfg.executor)
        from rewardgen.search.ranking import check_feedback_config

        check_feedback_config(cfg.feedback)
        at_least("report.video_steps", cfg.report.video_steps, 1)
        _check_device(str(cfg.device), cfg.executor)
        if cfg.final.enabled and cfg.method.name not in VISION_KINDS:
            budgets["final.timesteps"] = int(cfg.final.timesteps)
    if is_eval or cfg.method.name != "l2r":  # L2R plans with MPC: no policy, no buffer
        check_memory(cfg, task.name, budgets)
    return _sac_warnings(cfg, task.name, budgets)


MAX_SWEEP_CHECKS = 64  # a larger --multirun sweep is checked job by job as it runs


def check_command_line(argv: list[str], config_dir: str, config_name: str, schema: type) -> None:
    """Compose the config the way ``@hydra.main`` is about to and :func:`validate` it, so a bad
    command line fails before Hydra creates the run directory.

    With ``--multirun``, every combination of the command line's sweeps is checked (up to
    :data:`MAX_SWEEP_CHECKS`). ``--help``, ``--cfg``, ``--info`` and the like are left to Hydra.

    Raises:
        ConfigError: a key that is not ours, a value that does not fit, or a :func:`validate`
            error; TaskError for a missing task.
    """
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit:
        return  # Hydra reports its own usage errors
    if (args.help or args.hydra_help or args.cfg or args.info or args.shell_completion
            or args.config_path or args.config_dir or args.experimental_rerun):
        return
    overrides = list(args.overrides)
    groups = {p.name for p in Path(config_dir).iterdir() if p.is_dir()}
    check_override_keys(overrides, schema, groups)
    jobs = [overrides]
    if args.multirun:
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
            jobs = BasicSweeper.split_arguments(parsed, None)[0]
        except HydraException:
            return  # a sweep the basic sweeper cannot expand: each job checks itself
        if len(jobs) > MAX_SWEEP_CHECKS:
            jobs = jobs[:1]
    for job in jobs:
        try:
            with initialize_config_dir(config_dir, version_base="1.3"):
                cfg = compose(args.config_name or config_name, overrides=list(job))
        except (HydraException, OmegaConfBaseException) as e:
            raise compose_error(e) from e
        check_no_secret_in_config(cfg)  # Hydra would save it in the run directory
        validate(cfg)


__all__ = ["MIN_MEMORY_MB", "check_command_line", "validate"]
