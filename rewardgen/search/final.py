""""Short search, long final": retrain the best reward over several seeds with its own budget,
and the native (human-designed) and sparse rewards with the same budget and the same seeds.

The final seeds are fresh: none of them trained anything during the search. Retraining the winner
on the seed it won with would repeat that very training (the same fitness to the last digit),
a winner's-curse bias the baselines, trained afresh, would not share. Statistics over the seeds
(IQM, bootstrap intervals, probability of improvement) come from :mod:`rewardgen.reporting.statistics`.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rewardgen.errors import ConfigError
from rewardgen.executors import Executor
from rewardgen.reporting import statistics as stats_summary
from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.sandbox.contract import clean_text
from rewardgen.tasks.spec import TaskSpec

log = logging.getLogger(__name__)

# Derived final seeds are seed + 1000, seed + 2000, ...: never the search's seed, and for the
# seeds of a sweep (seed=0,1,2,... below 1000) never another run's final seeds either.
FINAL_SEED_STRIDE = 1000


def search_seeds(cfg: DictConfig) -> list[int]:
    """The training seeds the search used: every candidate trains with ``seed``.

    (Judge rollouts reset their env with ``seed + k`` and the proposer samples with
    ``seed + generation``; neither trains a policy, so neither is a training seed.)
    """
    return [int(cfg.seed)]


def final_seeds(cfg: DictConfig) -> list[int]:
    """The seeds of the final phase, the same for the generated, native and sparse rewards.

    ``final.seeds`` when given (it must not repeat a seed nor use one of the search's); else
    ``final.n_seeds`` fresh seeds ``seed + 1000 * k`` for k = 1..n_seeds. ``rewardgen``
    calls it before anything is spent (:func:`rewardgen.cli.check.validate`), so a bad list
    fails in one line, not after the search was paid for.

    Raises:
        ConfigError: an explicit list overlaps the search's seeds, repeats a seed or is empty,
            or ``final.n_seeds`` is below 1.
    """
    used = search_seeds(cfg)
    explicit = cfg.final.get("seeds")
    if explicit is None:
        n = int(cfg.final.get("n_seeds", 5))
        if n < 1:
            raise ConfigError(f"final.n_seeds={n} must be at least 1 (or final.enabled=false)")
        return [used[0] + FINAL_SEED_STRIDE * k for k in range(1, n + 1)]
    seeds = [int(s) for s in explicit]
    if not seeds:
        raise ConfigError("final.seeds=[] names no seed; give seeds, or final.seeds=null for "
                          "final.n_seeds fresh ones")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"final.seeds={seeds} repeats a seed; each seed is one training")
    overlap = sorted(set(seeds) & set(used))
    if overlap:
        raise ConfigError(
            f"final.seeds={seeds} reuses the search's training seed {overlap[0]} (seed={cfg.seed}), "
            f"so the final phase would repeat the training that won the search; use other seeds, "
            f"or final.seeds=null for {cfg.final.get('n_seeds', 5)} fresh ones")
    return seeds


def _summarise(results: list[CandidateResult]) -> dict[str, Any]:
    ok = [r for r in results if r.selectable]
    ok.sort(key=lambda r: -1 if r.seed is None else r.seed)
    fits = [float(r.fitness) for r in ok if r.fitness is not None]
    succ = [r.success_rate for r in ok if r.success_rate is not None]
    iqm = stats_summary.iqm_interval(fits)
    return {
        "fitness_mean": statistics.fmean(fits) if fits else None,
        "fitness_std": statistics.pstdev(fits) if len(fits) > 1 else 0.0 if fits else None,
        "fitness_iqm": iqm["iqm"],
        "fitness_iqm_ci": iqm["ci"],
        "fitness_iqm_ci_reason": iqm["ci_reason"],
        "fitness_per_seed": {str(r.seed): r.fitness for r in ok},
        "success_mean": statistics.fmean(succ) if succ else None,
        "n_ok": len(ok),
        "failures": [f"seed {r.seed}: {r.status}: "
                     f"{clean_text(r.reason or f'fitness {r.fitness}', keep_newlines=False)}"
                     for r in results if not r.selectable],
    }


def final_summary(best: str, timesteps: int, seeds: list[int], used: list[int],
                  results: dict[str, list[CandidateResult]]) -> dict[str, Any]:
    """The content of final/summary.json (also the run summary's ``final``).

    Args:
        best: the retrained candidate's label.
        timesteps: the budget of each final training.
        seeds: the final seeds; ``used``: the search's training seeds (disjoint from ``seeds``).
        results: variant (``generated``, ``native``, ``sparse``) -> its trainings' results.
    """
    summary: dict[str, Any] = {
        "best": best, "timesteps": timesteps, "seeds": seeds, "search_seeds": used,
        "variants": {name: _summarise(rs) for name, rs in results.items()},
        "statistics": stats_summary.describe(),
    }
    summary.update(_compare(summary["variants"]))
    return summary


def _compare(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The human-normalised score (or why it is undefined) and P(generated > native)."""
    gen, native, sparse = (variants.get(k) or {} for k in ("generated", "native", "sparse"))
    score, reason = stats_summary.human_normalised(
        gen.get("fitness_mean"), native.get("fitness_mean"), sparse.get("fitness_mean"),
        native_std=float(native.get("fitness_std") or 0.0),
        sparse_std=float(sparse.get("fitness_std") or 0.0))
    out: dict[str, Any] = {"human_normalised_score": score, "human_normalised_reason": reason}
    if native:
        out["probability_of_improvement"] = {"generated_over_native": (
            stats_summary.probability_of_improvement(
                [float(v) for v in (gen.get("fitness_per_seed") or {}).values() if v is not None],
                [float(v) for v in native["fitness_per_seed"].values() if v is not None]))}
    return out


def run_final(cfg: DictConfig, store: RunStore, task: TaskSpec, best: CandidateRecord,
              executor: Executor, ui: RunUI) -> dict[str, Any]:
    """Train every (variant, seed) pair not already finished; write final/summary.json."""
    from rewardgen.jobs import MPC_KIND, candidate_job, method_reward

    variants: dict[str, tuple[str | None, str]] = {"generated": (best.source, "program")}
    baselines = list(cfg.final.baselines)
    mpc = method_reward(cfg)[0] == MPC_KIND
    if baselines and mpc:
        # an MPC method's final phase is its best reward's MPC episode from fresh initial
        # states; the native and sparse baselines would need RL, which it never runs
        log.info("final: no baselines for an MPC method (%s need RL)", ", ".join(baselines))
        baselines = []
    if "native" in baselines:
        variants["native"] = (None, "native")
    if "sparse" in baselines and task.sparse_reward:
        variants["sparse"] = (None, "sparse")
    seeds = final_seeds(cfg)
    pending: list[tuple[str, CandidateJob]] = []
    results: dict[str, list[CandidateResult]] = {name: [] for name in variants}
    for name, (source, kind) in variants.items():
        for seed in seeds:
            out = store.final_dir / f"{name}_seed{seed}"
            done = store.finished_final(name, seed)
            if done is not None:
                results[name].append(done)
                continue
            store.clear_interrupted(out)
            job = candidate_job(cfg, str(out), source, kind, timesteps=int(cfg.final.timesteps), seed=seed)
            pending.append((name, job))
    if mpc:
        ui.say(f"final: {best.label}'s MPC episode from fresh seeds {seeds} (the search planned "
               f"from seed {int(cfg.seed)}; {len(pending)} episodes to go)")
    else:
        ui.say(f"final: retraining {best.label} and baselines "
               f"{', '.join(n for n in variants if n != 'generated')} over fresh seeds {seeds} "
               f"(the search trained with seed {int(cfg.seed)}) for {int(cfg.final.timesteps)} "
               f"steps each ({len(pending)} trainings to go)")
    ui.start_generation(0, 1, len(pending), title="final")
    ui.watch_steps({f"final/{name}_seed{job.seed}": (Path(job.out_dir), job.timesteps)
                    for name, job in pending})

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
    summary = final_summary(best.label, int(cfg.final.timesteps), seeds, search_seeds(cfg), results)
    if mpc:  # no policy is trained: the table shows MPC episodes, not retrainings
        summary.update(planner="mpc", human_normalised_reason=(
            "an MPC method runs no RL baselines (native, sparse) to normalise by"))
    atomic_write_json(store.final_dir / "summary.json", summary)
    store.event("final_summary", **{k: summary[k] for k in ("best", "human_normalised_score",
                                                           "human_normalised_reason")})
    return summary
