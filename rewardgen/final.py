""""Short search, long final": retrain the best reward over several seeds with its own budget,
and the native (human-designed) and sparse rewards with the same budget, for comparison."""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rewardgen.executors import Executor
from rewardgen.io import atomic_write_json, read_json
from rewardgen.results import CandidateJob, CandidateResult
from rewardgen.sandbox.contract import clean_text
from rewardgen.store import CandidateRecord, RunStore
from rewardgen.tasks import TaskSpec
from rewardgen.ui import RunUI

log = logging.getLogger(__name__)


def human_normalised(method: float | None, human: float | None, sparse: float | None) -> float | None:
    """(method - sparse) / |human - sparse|, Eureka's human-normalised score."""
    if method is None or human is None or sparse is None or human == sparse:
        return None
    return (method - sparse) / abs(human - sparse)


def _summarise(results: list[CandidateResult]) -> dict[str, Any]:
    ok = [r for r in results if r.ok and r.fitness is not None]
    fits = [float(r.fitness) for r in ok if r.fitness is not None]
    succ = [r.success_rate for r in ok if r.success_rate is not None]
    return {
        "fitness_mean": statistics.fmean(fits) if fits else None,
        "fitness_std": statistics.pstdev(fits) if len(fits) > 1 else 0.0 if fits else None,
        "fitness_per_seed": {str(r.seed): r.fitness for r in ok},
        "success_mean": statistics.fmean(succ) if succ else None,
        "n_ok": len(ok),
        "failures": [f"seed {r.seed}: {r.status}: {clean_text(r.reason, keep_newlines=False)}"
                     for r in results if not r.ok],
    }


def run_final(cfg: DictConfig, store: RunStore, task: TaskSpec, best: CandidateRecord,
              executor: Executor, ui: RunUI) -> dict[str, Any]:
    """Train every (variant, seed) pair not already finished; write final/summary.json."""
    from rewardgen.loop import candidate_job

    variants: dict[str, tuple[str | None, str]] = {"generated": (best.source, "program")}
    baselines = list(cfg.final.baselines)
    if "native" in baselines:
        variants["native"] = (None, "native")
    if "sparse" in baselines and task.sparse_reward:
        variants["sparse"] = (None, "sparse")
    seeds = [int(s) for s in cfg.final.seeds]
    pending: list[tuple[str, CandidateJob]] = []
    results: dict[str, list[CandidateResult]] = {name: [] for name in variants}
    logged = {(e.get("variant"), e.get("seed")) for e in store.events() if e["event"] == "final_done"}
    for name, (source, kind) in variants.items():
        for seed in seeds:
            out = store.final_dir / f"{name}_seed{seed}"
            if (out / "result.json").is_file():
                done = CandidateResult.from_dict(read_json(out / "result.json"))
                if (name, seed) not in logged:  # killed between the worker's write and the event
                    store.event("final_done", variant=name, seed=seed, status=done.status,
                                fitness=done.fitness, recovered=True)
                results[name].append(done)
                continue
            store.clear_interrupted(out)
            job = candidate_job(cfg, str(out), source, kind, timesteps=int(cfg.final.timesteps), seed=seed)
            pending.append((name, job))
    ui.say(f"final: retraining {best.label} and baselines {', '.join(n for n in variants if n != 'generated')} "
           f"over seeds {seeds} for {int(cfg.final.timesteps)} steps each ({len(pending)} trainings to go)")
    ui.start_generation(0, 1, len(pending), title="final")
    ui.watch_steps([Path(job.out_dir) for _, job in pending], sum(job.timesteps for _, job in pending))

    def on_done(i: int, result: CandidateResult) -> None:
        name, job = pending[i]
        atomic_write_json(f"{job.out_dir}/result.json", result.to_dict())
        store.event("final_done", variant=name, seed=job.seed, status=result.status, fitness=result.fitness)
        results[name].append(result)
        ui.candidate_done(CandidateRecord(-1, i, job.reward_source, result), label=f"final/{name}_seed{job.seed}")

    try:
        executor.run([job for _, job in pending], on_done)
    finally:
        ui.end_generation()
    summary: dict[str, Any] = {
        "best": best.label,
        "timesteps": int(cfg.final.timesteps),
        "seeds": seeds,
        "variants": {name: _summarise(rs) for name, rs in results.items()},
    }
    v = summary["variants"]
    summary["human_normalised_score"] = human_normalised(
        v["generated"]["fitness_mean"],
        v.get("native", {}).get("fitness_mean"),
        v.get("sparse", {}).get("fitness_mean"),
    )
    atomic_write_json(store.final_dir / "summary.json", summary)
    store.event("final_summary", **{k: summary[k] for k in ("best", "human_normalised_score")})
    return summary
