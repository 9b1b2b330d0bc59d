"""Motif's final comparison: its reward retrained over fresh seeds beside the env reward alone.

Motif reports its agent against one trained on the environment's reward only (the paper's
"extrinsic only" baseline). The final phase here trains, on the final seeds of
:func:`rewardgen.search.final.final_seeds` and for ``final.timesteps`` each:

* ``generated``: PPO on Motif's reward (the reward model fit once, during the run, is reused);
* the ``final.baselines``: ``native`` (the task's dense, human-designed reward alone) and
  ``sparse`` (the task's sparse reward alone, which is Motif's own env reward by default).

The result is ``final/summary.json`` in the format of every other method's final phase
(:func:`rewardgen.search.final.final_summary`), so the report and the terminal table are the same.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)


def motif_final(
    cfg: DictConfig,
    store: RunStore,
    task: TaskSpec,
    motif_job: CandidateJob,
    executor: Any,
    ui: Any,
) -> dict[str, Any]:
    """Train every (variant, seed) not already finished; write and return final/summary.json."""
    from rewardgen.jobs import training_job
    from rewardgen.search.final import final_seeds, final_summary, search_seeds

    seeds = final_seeds(cfg)
    steps = int(cfg.final.timesteps)
    env_reward = str(motif_job.reward_options.get("env_reward", "native"))
    variants = ["generated"] + [
        b for b in cfg.final.baselines if b != "sparse" or task.sparse_reward
    ]
    if env_reward not in variants:
        log.warning(
            "final: Motif's env reward (%s) alone is not among final.baselines %s, so "
            "the table cannot show what the intrinsic reward adds",
            env_reward,
            list(cfg.final.baselines),
        )
    results: dict[str, list[CandidateResult]] = {name: [] for name in variants}
    pending: list[tuple[str, CandidateJob]] = []
    for name in variants:
        for seed in seeds:
            out = store.final_dir / f"{name}_seed{seed}"
            done = store.finished_final(name, seed)
            if done is not None:
                results[name].append(done)
                continue
            store.clear_interrupted(out)
            if name == "generated":
                job = dataclasses.replace(motif_job, out_dir=str(out), seed=seed, timesteps=steps)
            else:
                job = dataclasses.replace(
                    training_job(cfg, str(out), None, name, timesteps=steps, seed=seed),
                    device=motif_job.device,
                )
            pending.append((name, job))
    ui.say(
        f"final: Motif's reward and the baselines {', '.join(variants[1:]) or 'none'} over "
        f"fresh seeds {seeds} for {steps} steps each ({len(pending)} trainings to go; "
        f"Motif's env reward: {env_reward})"
    )
    ui.start_generation(0, 1, len(pending), title="final")
    ui.watch_steps({f"final/{name}": (Path(job.out_dir), job.timesteps) for name, job in pending})

    def on_done(i: int, result: CandidateResult) -> None:
        name, job = pending[i]
        atomic_write_json(f"{job.out_dir}/result.json", result.to_dict())
        store.event(
            "final_done", variant=name, seed=job.seed, status=result.status, fitness=result.fitness
        )
        results[name].append(result)
        ui.candidate_done(
            CandidateRecord(-1, i, None, result), label=f"final/{name}_seed{job.seed}"
        )

    try:
        executor.run([job for _, job in pending], on_done)
    finally:
        ui.end_generation()
    summary = final_summary("gen_000/cand_00", steps, seeds, search_seeds(cfg), results)
    summary["motif_env_reward"] = env_reward
    atomic_write_json(store.final_dir / "summary.json", summary)
    store.event(
        "final_summary",
        **{k: summary[k] for k in ("best", "human_normalised_score", "human_normalised_reason")},
    )
    return summary


__all__ = ["motif_final"]
