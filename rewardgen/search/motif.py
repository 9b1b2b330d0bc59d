"""The runner of ``method=motif`` (Motif, Klissarov et al. 2023): no generated code, one training.

1. **Collect** ``method.episodes`` episodes on the native env in a trusted worker
   (:mod:`rewardgen.worker.collect`): a random policy, or a native-reward PPO trained for
   ``method.collect_timesteps`` steps first (through the executor, as any training).
2. **Caption** each episode's behaviour (:mod:`rewardgen.methods.motif`; never the fitness);
   the captions are written to ``motif/episodes.json``.
3. **Ask** the LLM about ``method.pairs`` random pairs, once each (``method.both_orders``: also
   swapped); ties are labels of 0.5 (``motif/preferences.json``, every answer kept).
   ``llm=offline`` labels by the trusted fitness, recorded as such.
4. **Fit** the Bradley–Terry reward model on the labelled episodes, a validation split stopping
   it (:mod:`rewardgen.rewards.motif_fit`), saved to ``motif/reward_model.*``.
5. **Train** PPO on ``env_coefficient * r_env + coefficient * r_int / N(message)^3``, ``r_env``
   the task's sparse reward by default, through the executor (training worker, then the
   trusted evaluator), in ``gen_000/cand_00``; ``best/`` and ``summary.json`` as for any run.
6. **Final** (``final.enabled``): Motif's reward and the env rewards alone over fresh seeds
   (:mod:`rewardgen.search.motif_final`).

Every step says what it does on the terminal (collecting and fitting take a minute on a small
machine).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rewardgen.config import LLMConfig, as_sandbox_config
from rewardgen.errors import ConfigError, LLMError
from rewardgen.methods.motif import (
    OFFLINE_LABELLER,
    TIE,
    EpisodeRecord,
    PairLabeller,
    caption,
    env_coefficient,
    fitness_label,
)
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.sandbox.contract import markup_safe
from rewardgen.tasks.captions import caption_fields
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

MOTIF_DIR = "motif"


def _labeller(cfg: DictConfig, task: TaskSpec, run_dir: Path) -> tuple[Any, str]:
    """A :class:`PairLabeller` over the configured LLM, or None for the trusted fitness."""
    from rewardgen.llm import make_proposer

    raw = OmegaConf.to_container(cfg.llm, resolve=True)
    llm = LLMConfig(**raw)  # type: ignore[arg-type]
    temperature = cfg.method.temperature
    if temperature is not None:
        llm = dataclasses.replace(llm, temperature=float(temperature))
    proposer = make_proposer(llm, run_dir)
    if not getattr(proposer, "is_llm", False):
        log.warning(
            "method=motif with no language model: preferences come from the task's "
            "trusted fitness (%s)",
            OFFLINE_LABELLER,
        )
        return None, OFFLINE_LABELLER
    labeller = PairLabeller(
        proposer, task, seed=int(cfg.seed), both_orders=bool(cfg.method.both_orders)
    )
    return labeller, str(proposer.name)


def collect(
    cfg: DictConfig, task: TaskSpec, executor: Any, sandbox: Any, root: Path
) -> list[EpisodeRecord]:
    """Step 1: the episodes (States from the trusted collector), via the executor; a resume
    reads those already collected."""
    from rewardgen.executors.pipeline import COLLECT_TARGET
    from rewardgen.jobs import RewardKind, training_job

    method = cfg.method
    checkpoints = None
    done = root / "episodes" / "result.json"
    if done.is_file() and json.loads(done.read_text()).get("status") == "ok":
        log.info("method=motif: episodes already collected in %s (resume)", root / "episodes")
        return _read_episodes(root)
    if int(method.collect_timesteps) > 0:
        policy_dir = root / "policy"
        job = training_job(
            cfg,
            str(policy_dir),
            None,
            RewardKind.NATIVE.value,
            timesteps=int(method.collect_timesteps),
        )
        [result] = executor.run([job], sandbox=sandbox)
        if not result.ok:
            raise ConfigError(
                f"method=motif: the native policy that collects episodes did not "
                f"train ({result.status}: {result.reason})"
            )
        checkpoints = str(policy_dir / "train" / "checkpoints")
    job = dataclasses.replace(
        training_job(cfg, str(root / "episodes"), None, RewardKind.NATIVE.value),
        reward_options={"episodes": int(method.episodes)},
        checkpoint_dir=checkpoints,
    )
    [result] = executor.run([job], target=COLLECT_TARGET, sandbox=sandbox)
    if not result.ok:
        raise ConfigError(
            f"method=motif: collecting episodes failed ({result.status}: {result.reason})"
        )
    return _read_episodes(root)


def _read_episodes(root: Path) -> list[EpisodeRecord]:
    from rewardgen.runs.trajectories import load_episode
    from rewardgen.worker.collect import EPISODES_JSON, EPISODES_NPZ

    meta = json.loads((root / "episodes" / EPISODES_JSON).read_text())["episodes"]
    episodes = []
    for k, m in enumerate(meta):
        states, _ = load_episode(str(root / "episodes" / EPISODES_NPZ), k)
        episodes.append(
            EpisodeRecord(
                states,
                float(m["fitness"]),
                int(m["length"]),
                bool(m["ended_early"]),
                float(m["native_return"]),
            )
        )
    return episodes


def label_pairs(
    cfg: DictConfig,
    task: TaskSpec,
    captions: list[str],
    fitness: list[float],
    run_dir: Path,
    root: Path,
    say: Callable[[str], None] | None = None,
) -> tuple[list[tuple[int, int, float]], dict[str, Any]]:
    """Step 3: random pairs, each asked once (or in both orders); the kept ``(i, j, label)``,
    label the probability that episode ``j`` is preferred (0.5: a tie)."""
    labeller, name = _labeller(cfg, task, run_dir)
    rng = np.random.default_rng(int(cfg.seed))
    n = len(captions)
    every = [(i, j) for i in range(n) for j in range(i + 1, n)]
    picks = rng.permutation(len(every))[: int(cfg.method.pairs)]
    records: list[dict[str, Any]] = []
    kept: list[tuple[int, int, float]] = []
    path = root / "preferences.json"
    for count, p in enumerate(picks, 1):
        i, j = every[int(p)]
        if labeller is None:
            record = fitness_label(fitness[i], fitness[j])
        else:
            record = labeller.label(captions[i], captions[j])
        records.append({"first": i, "second": j, **record})
        if record["label"] is not None:
            kept.append((i, j, float(record["label"])))
        if count % 10 == 0 or count == len(picks):  # answers are cached too; this is the record
            atomic_write_json(path, {"labeller": name, "pairs": records})
            if say is not None and labeller is not None:
                say(f"motif: {count}/{len(picks)} pairs labelled by {name}")
    usage = labeller.proposer.usage.to_dict() if labeller is not None else None
    stats = {
        "labeller": name,
        "labels_from": "llm" if labeller is not None else "fitness",
        "pairs_asked": len(picks),
        "requests": labeller.requests if labeller else 0,
        "pairs_kept": len(kept),
        "pairs_dropped": len(picks) - len(kept),
        "ties": sum(1 for k in kept if k[2] == TIE),
        "identical_captions": sum(1 for r in records if r.get("identical")),
        "both_orders": bool(cfg.method.both_orders),
        "usage": usage,
    }
    atomic_write_json(path, {**stats, "pairs": records})
    return kept, stats


def run_motif(cfg: DictConfig, run_dir: Path, interactive: bool = True) -> dict[str, Any]:
    """Collect, caption, label, fit, train, final; write the run directory; return the summary."""
    from rewardgen.executors import make_executor
    from rewardgen.jobs import RewardKind, training_job
    from rewardgen.reporting.terminal import RunUI
    from rewardgen.rewards.motif import fit_intrinsic, input_index, message_fn
    from rewardgen.runs.store import RunStore
    from rewardgen.search.vision import build_summary, print_run_summary
    from rewardgen.train.sb3 import resolve_device
    from rewardgen.train.vision import flatten_state

    task = load_task(cfg.task)
    method = cfg.method
    offline = str(cfg.llm.provider).lower() == "offline"
    manifest = {
        "task": task.name,
        "method": "motif",
        "seed": int(cfg.seed),
        "llm_provider": cfg.llm.provider,
        "llm_model": None if offline else cfg.llm.model,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    manifest["config"]["llm"].pop("api_key", None)  # type: ignore[call-overload, index, union-attr]
    store = RunStore.create(run_dir, manifest)
    root = store.root / MOTIF_DIR
    ui = RunUI(enabled=interactive)

    def say(text: str) -> None:  # plain text: names and numbers, never markup
        ui.say(markup_safe(text, keep_newlines=False))

    device = resolve_device(str(cfg.device))
    sandbox = as_sandbox_config(cfg.sandbox)
    executor = make_executor(cfg.executor, sandbox, cfg.rl, device)

    say(
        f"motif: collecting {int(method.episodes)} episodes on {task.name} ("
        + (
            f"a native PPO of {int(method.collect_timesteps)} steps first)"
            if int(method.collect_timesteps)
            else "random policy)"
        )
    )
    episodes = collect(cfg, task, executor, sandbox, root)
    dt = float(getattr(episodes[0].states[0], "dt", 0.0) or 0.0) if episodes else 0.0
    cap = cfg.train.max_episode_steps or task.max_episode_steps
    captions = [caption(task, ep, dt, cap) for ep in episodes]
    atomic_write_json(
        root / "episodes.json",
        {
            "episodes": [
                {
                    "index": k,
                    "fitness": ep.fitness,
                    "length": ep.length,
                    "ended_early": ep.ended_early,
                    "native_return": ep.native_return,
                    "caption": text,
                }
                for k, (ep, text) in enumerate(zip(episodes, captions, strict=True))
            ]
        },
    )
    store.event("motif_captioned", episodes=len(episodes))
    say(
        f"motif: {len(episodes)} episodes captioned; asking {int(method.pairs)} pairs "
        f"({'both orders' if method.both_orders else 'one order'})"
    )
    try:
        kept, labels = label_pairs(
            cfg, task, captions, [ep.fitness for ep in episodes], run_dir, root, say=say
        )
    except LLMError as e:
        raise LLMError(f"{e}; the captioned episodes are kept in {root}") from e
    store.event("motif_labelled", **{k: v for k, v in labels.items() if k != "usage"})
    say(
        f"motif: {labels['pairs_kept']} pairs kept ({labels['ties']} ties); fitting the "
        "reward model"
    )
    vectors = [np.stack([flatten_state(s) for s in ep.states]) for ep in episodes]
    settings: dict[str, Any] = OmegaConf.to_container(method, resolve=True)  # type: ignore[assignment]
    index = input_index(episodes[0].states[0], caption_fields(task))  # what the captions read
    message_of = message_fn(task, float(method.message_resolution))
    messages = [message_of(s) for ep in episodes for s in ep.states]
    model = fit_intrinsic(
        vectors,
        kept,
        settings,
        int(cfg.seed),
        root,
        progress=say,
        index=index,
        messages=messages,
    )
    store.event(
        "motif_fitted",
        accuracy=model["episode_pair_accuracy"],
        epochs=model["epochs"],
        best_epoch=model["best_epoch"],
    )

    out_dir = store.cand_dir(0, 0)
    job = dataclasses.replace(
        training_job(cfg, str(out_dir), None, RewardKind.MOTIF.value),
        task=task.name,
        device=device,
        reward_options={
            "reward_model_dir": str(root),
            "coefficient": float(method.coefficient),
            "env_coefficient": env_coefficient(method),
            "env_reward": str(method.env_reward),
            "count_exponent": float(method.count_exponent),
            "message_resolution": float(method.message_resolution),
        },
    )
    record = store.finished_candidate(0, 0)  # a resume never trains a finished run again
    if record is None:
        store.event("candidate_started", generation=0, index=0, method="motif")
        say(
            f"motif: training PPO for {job.timesteps} steps on "
            f"{job.reward_options['env_coefficient']:g} x {method.env_reward} reward + "
            f"{float(method.coefficient):g} x intrinsic / N(message)^"
            f"{float(method.count_exponent):g}"
        )
        ui.start_generation(0, 1, 1, title="motif")
        ui.watch_steps({"motif": (Path(out_dir), job.timesteps)})
        try:  # untrusted training + trusted evaluation
            [result] = executor.run([job], sandbox=sandbox)
        finally:
            ui.end_generation()
        store.write_result(0, 0, result)
        record = store.read_record(0, 0)
    else:
        result = record.result
    if record is not None and result.ok:
        store.save_best(record)
    summary = build_summary(store.root, task, job, result)
    summary["motif"] = {
        "episodes": len(episodes),
        **labels,
        "reward_model": model,
        "collect_timesteps": int(method.collect_timesteps),
        "env_reward": str(method.env_reward),
        "env_coefficient": job.reward_options["env_coefficient"],
    }
    if labels["usage"]:
        summary["llm_usage"] = labels["usage"]
    if result.ok and cfg.final.enabled:
        from rewardgen.search.motif_final import motif_final

        summary["final"] = motif_final(cfg, store, task, job, executor, ui)
    store.write_summary(summary)
    store.event("run_finished", best=summary["best"]["candidate"] if summary["best"] else None)
    print_run_summary(summary, interactive)
    if summary.get("final"):
        from rich.markup import escape

        from rewardgen.reporting.statistics import comparison_lines

        ui.show(ui.final_table(summary["final"]))
        for line in comparison_lines(summary["final"]):
            ui.say(escape(line))
    if cfg.report.enabled:
        from rewardgen.reporting.report import report_at_end

        report_at_end(
            store.root, videos=bool(cfg.report.videos), video_steps=int(cfg.report.video_steps)
        )
    if labels["labels_from"] == "fitness" and interactive:
        log.warning("method=motif: labels came from the trusted fitness (llm=offline), not an LLM")
    return summary


__all__ = ["MOTIF_DIR", "collect", "label_pairs", "run_motif"]
