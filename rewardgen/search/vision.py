"""The runner of ``method=clip`` and ``method=vlm_preference``: one training, no generated code.

A vision method has nothing to evolve: the reward is CLIP's projected similarity (VLM-RM) or a
reward model fit to a VLM's preferences (RL-VLM-F). So a run is a single candidate: train (in an
isolated worker with limits but with network, since the labeller must reach the VLM server),
evaluate the task's trusted fitness, and write the run directory as a loop run does
(manifest.json, events.jsonl, gen_000/cand_00/, best/, summary.json), so export, report and
resume read it the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rewardgen.config import LLMConfig, as_plain, as_sandbox_config
from rewardgen.errors import ConfigError
from rewardgen.llm.client import resolve_endpoint
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.sandbox.contract import markup_safe
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

VISION_METHODS = ("clip", "vlm_preference")
MIN_IMAGE_SIZE = 47  # RL-VLM-F's conv stack (rewards.preference_model.conv_output_size) needs this
VISION_MEMORY_MB = 8192  # address space: mesa's EGL maps ~2 GB beyond torch (4096 fails to render)



def vlm_endpoint(llm: Any) -> tuple[str | None, str | None]:
    """The VLM's ``(base_url, api_key)`` for ``method=vlm_preference`` (the ``llm`` config group).

    Raises:
        ConfigError: neither is configured (no offline labeller exists for this method).
    """
    base_url, api_key = resolve_endpoint(llm)
    if not base_url and not api_key:
        raise ConfigError(
            "method=vlm_preference needs a vision chat model and has no offline mode: set "
            "llm.base_url (or OPENAI_BASE_URL) to an OpenAI-compatible server, or OPENAI_API_KEY "
            "for api.openai.com, and llm.model to a model that accepts images"
        )
    return base_url, api_key


def vision_settings(cfg: DictConfig, task: TaskSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The job's ``vision`` mapping and the worker's extra environment (the VLM key, if any).

    For ``method=clip`` the CLIP weights must already be on this machine (checked here, before
    any run directory or training), and ``method.clip.textured`` renders the task's
    ``vision.textured`` variant (VLM-RM's textured humanoid and camera).

    Raises:
        ConfigError: an unknown method, CLIP weights that are not on this machine, or
            ``vlm_preference`` without a VLM endpoint.
    """
    method = str(cfg.method.name)
    if method not in VISION_METHODS:
        raise ConfigError(f"method={method!r} is not a vision method {VISION_METHODS}")
    vision: dict[str, Any] = {"render": as_plain(cfg.method.render)}
    extra_env: dict[str, str] = {}
    if method == "clip":
        clip = as_plain(cfg.method.clip)
        if not (clip.get("goal_prompts") or task.vision.get("goal_prompts")):
            raise ConfigError(
                f"task {task.name!r} has no vision.goal_prompts; set "
                "method.clip.goal_prompts='[a humanoid robot kneeling]' or pick a task with them "
                "(humanoid_kneel, humanoid_lotus, humanoid_splits, humanoid_arms_raised)"
            )
        from rewardgen.rewards.clip import clip_weights

        clip_weights(str(clip["model"]), clip.get("pretrained"), clip.get("cache_dir"))
        textured = task.vision.get("textured")
        if clip.get("textured") and textured:
            vision["env_kwargs"] = dict(textured)  # VLM-RM's textured model and camera
        elif clip.get("textured"):
            log.info("task %s has no vision.textured variant; its own scene is rendered",
                     task.name)
        vision["clip"] = clip
    else:
        llm = LLMConfig(**as_plain(cfg.llm))
        base_url, api_key = vlm_endpoint(llm)
        plain = dataclasses.asdict(llm)
        plain.update(provider="openai", base_url=base_url, api_key=None)
        vision["llm"] = plain
        vision["preference"] = pref = as_plain(cfg.method.preference)
        from rewardgen.llm.vision import LABEL_PARSES, STAGE2_MODES

        for key, valid in (("stage2", STAGE2_MODES), ("label_parse", LABEL_PARSES)):
            if pref.get(key) not in valid:
                raise ConfigError(f"method.preference.{key}={pref.get(key)!r} is not one of "
                                  f"{', '.join(valid)}")
        if pref.get("reward_model") == "cnn" and int(pref.get("image_size", 0)) < MIN_IMAGE_SIZE:
            raise ConfigError(f"method.preference.image_size={pref.get('image_size')} is below "
                              f"{MIN_IMAGE_SIZE}, the smallest input of RL-VLM-F's conv stack")
        if api_key:
            extra_env["OPENAI_API_KEY"] = api_key  # never written to job.json
    return vision, extra_env


def run_vision(cfg: DictConfig, run_dir: Path, interactive: bool = True) -> dict[str, Any]:
    """Train one policy on the configured vision reward and write the run directory.

    Returns the summary (also written to ``summary.json``).
    """
    from rewardgen.executors import make_executor
    from rewardgen.jobs import training_job
    from rewardgen.runs.store import RunStore
    from rewardgen.train.sb3 import resolve_device

    task = load_task(cfg.task)
    vision, extra_env = vision_settings(cfg, task)
    manifest = {
        "task": task.name,
        "method": str(cfg.method.name),
        "llm_provider": cfg.llm.provider if cfg.method.name == "vlm_preference" else None,
        "llm_model": cfg.llm.model if cfg.method.name == "vlm_preference" else None,
        "seed": int(cfg.seed),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    manifest["config"]["llm"].pop("api_key", None)  # type: ignore[call-overload, index, union-attr]
    store = RunStore.create(run_dir, manifest)
    out_dir = store.cand_dir(0, 0)
    device = resolve_device(str(cfg.device))
    job = dataclasses.replace(training_job(cfg, str(out_dir), None, str(cfg.method.name)),
                              task=task.name, device=device, vision=vision)
    atomic_write_json(out_dir / "vision.json", {
        "method": job.reward_kind, "task_vision": task.vision, **vision})
    sandbox = dataclasses.replace(as_sandbox_config(cfg.sandbox), network=True)
    if sandbox.memory_mb < VISION_MEMORY_MB:
        log.info("sandbox.memory_mb raised from %d to %d MB for headless GL rendering",
                 sandbox.memory_mb, VISION_MEMORY_MB)
        sandbox = dataclasses.replace(sandbox, memory_mb=VISION_MEMORY_MB)
    store.event("candidate_started", generation=0, index=0, method=job.reward_kind)
    executor = make_executor(cfg.executor, sandbox, cfg.rl, device)  # GPUs, limits, bwrap check
    [result] = executor.run([job], sandbox=sandbox, extra_env=extra_env)  # + trusted evaluation
    store.write_result(0, 0, result)
    record = store.read_record(0, 0)
    if record is not None and result.ok:
        store.save_best(record)
    summary = build_summary(store.root, task, job, result)
    store.write_summary(summary)
    store.event("run_finished", best=summary["best"]["candidate"] if summary["best"] else None)
    print_run_summary(summary, interactive)
    return summary


def build_summary(root: Path, task: TaskSpec, job: CandidateJob,
                  result: CandidateResult) -> dict[str, Any]:
    best = None
    if result.ok:
        best = {"candidate": "gen_000/cand_00", "fitness": result.fitness,
                "success_rate": result.success_rate, "policy": str(root / "best" / "policy.zip"),
                "reward_fitness_correlation": result.reward_fitness_correlation}
    return {
        "run_dir": str(root), "task": task.name, "method": job.reward_kind,
        "generations": 1, "candidates": 1, "statuses": {result.status: 1},
        "reason": result.reason, "best": best,
        "best_fitness_per_generation": [result.fitness if result.ok else None],
        "env_steps": result.env_steps, "train_wall_time_s": result.wall_time_s,
    }


def print_run_summary(summary: dict[str, Any], interactive: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True, quiet=not interactive)
    best = summary["best"]
    if best is None:
        console.print(f"[bold red]{summary['method']} training failed[/]: "
                      f"{markup_safe(summary['reason'], keep_newlines=False)}")
    else:
        fitness = "-" if best["fitness"] is None else f"{best['fitness']:.3f}"
        console.print(f"{summary['method']} on {summary['task']}: fitness {fitness}")
    console.print(f"run directory: {markup_safe(summary['run_dir'])}")


__all__ = ["VISION_METHODS", "build_summary", "run_vision", "vision_settings", "vlm_endpoint"]
