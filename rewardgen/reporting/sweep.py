"""One table and one plot for a whole Hydra sweep (``rewardgen-report --sweep DIR``).

A sweep (``rewardgen --multirun ...``) leaves one run directory per job. This module finds
them, groups them by task and by every swept knob except the seed, and reports per group the
mean and spread over seeds of: the best fitness of the search, the final retraining of the best
reward, the native (human) and sparse baselines, and Eureka's human-normalised score. The seed is
what a sweep repeats to measure spread, so it is never a grouping key.

The table reports the final comparison as RL papers now do (:mod:`rewardgen.reporting.statistics`): per
group the interquartile mean of the generated, native and sparse rewards with 95% bootstrap
intervals, and P(generated > native). These pool every final training of the group (each run's
fresh final seeds, over the group's runs), so the search's spread from run to run is in them.
The human-normalised score of a run is undefined (and left out of the mean, with its reason)
where its native and sparse rewards are within their spread over seeds.

Outputs, next to the runs: ``sweep_summary.json`` (every run and every group),
``sweep_summary.csv`` (one row per group) and ``sweep_report.png``. With a final phase (the Eureka
suite, conf/experiment/eureka_suite.yaml) the table also says per task whether the generated
reward beat the human one and what each run cost (LLM tokens and dollars, env steps, wall time).
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rewardgen.errors import RunDirError
from rewardgen.reporting import statistics as stats_summary
from rewardgen.runs.atomic import read_json
from rewardgen.runs.records import WORKER_DIRS
from rewardgen.runs.untrusted import Entry, UnsafeFileError, list_dir

log = logging.getLogger(__name__)

METRICS = ("search_fitness", "final_fitness", "native_fitness", "sparse_fitness", "human_normalised")
LABELS = {
    "search_fitness": "search peak, 1 seed",  # the search's best: one training, biased upwards
    "final_fitness": "final (generated)",
    "native_fitness": "native (human)",
    "sparse_fitness": "sparse",
    "human_normalised": "human-normalised",
}
# What a run cost (Eureka's table reports it next to the fitness): LLM tokens and dollars, env
# steps of the search plus the final phase, and the run's wall time (first to last event).
COSTS = ("llm_tokens", "llm_cost_usd", "env_steps", "wall_time_s")
COST_LABELS = {"llm_tokens": "LLM tokens", "llm_cost_usd": "LLM cost $",
               "env_steps": "env steps", "wall_time_s": "wall time s"}
IGNORED_OVERRIDES = ("seed", "task", "hydra.")
SWEEP_DEPTH = 4  # folders below the sweep folder searched for runs (Hydra puts them 1 deep)
MAX_FOLDERS = 10_000  # folders listed while searching
MANIFEST = "manifest.json"
VARIANTS = ("generated", "native", "sparse")


@dataclass
class SweepRun:
    """What one job of the sweep produced (None where it produced nothing)."""

    run_dir: str
    task: str
    seed: int | None
    knobs: dict[str, str] = field(default_factory=dict)  # swept overrides other than task/seed
    finished: bool = False
    search_fitness: float | None = None
    final_fitness: float | None = None
    native_fitness: float | None = None
    sparse_fitness: float | None = None
    human_normalised: float | None = None
    human_normalised_reason: str | None = None  # why the score is undefined (None: defined)
    final_per_seed: dict[str, list[float]] = field(default_factory=dict)  # variant -> fitnesses
    final_seeds: list[int] = field(default_factory=list)
    final_timesteps: int | None = None
    llm_tokens: float | None = None
    llm_cost_usd: float | None = None
    env_steps: float | None = None  # search + final phase
    wall_time_s: float | None = None

    @property
    def group(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in sorted(self.knobs.items()))
        return f"{self.task} {knobs}".strip()


@dataclass
class SweepGroup:
    """Runs that differ only in their seed: mean, population std and values of each metric."""

    name: str
    task: str
    seeds: list[int | None]
    finished: int
    mean: dict[str, float | None]
    std: dict[str, float | None]
    values: dict[str, list[float]]
    # Eureka's "success over human": the mean final fitness of the generated reward above the
    # native reward's (None without a final phase or native baseline).
    beats_human: bool | None = None
    # Over every final training of the group: variant -> IQM with its 95% bootstrap interval,
    # and P(generated > native); the budget and seeds they rest on.
    final_iqm: dict[str, dict[str, Any]] = field(default_factory=dict)
    p_improvement: dict[str, Any] | None = None
    final_timesteps: list[int] = field(default_factory=list)
    final_seeds: list[int] = field(default_factory=list)
    human_normalised_undefined: list[str] = field(default_factory=list)  # "run: reason"


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    out = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, sep, value = str(item).partition("=")
        if sep:
            out[key.lstrip("+~")] = value
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_run(run_dir: Path) -> SweepRun:
    """One run directory of the sweep, read from manifest.json, summary.json, final/summary.json."""
    manifest = read_json(run_dir / "manifest.json")
    seed = manifest.get("seed")
    run = SweepRun(run_dir=str(run_dir), task=str(manifest.get("task", "?")),
                   seed=int(seed) if seed is not None else None)
    run.knobs = {k: v for k, v in _overrides(run_dir).items() if not k.startswith(IGNORED_OVERRIDES)}
    if (run_dir / "summary.json").is_file():
        summary = read_json(run_dir / "summary.json")
        run.finished = True
        run.search_fitness = _number((summary.get("best") or {}).get("fitness"))
        usage = summary.get("llm_usage") or {}
        run.llm_tokens = _number(usage.get("total_tokens"))
        run.llm_cost_usd = _number(usage.get("cost_usd"))
        run.env_steps = _number(summary.get("env_steps"))
        run.wall_time_s = _wall_time(run_dir) or _number(summary.get("train_wall_time_s"))
    final_path = run_dir / "final" / "summary.json"
    if final_path.is_file():
        final = read_json(final_path)
        variants = final.get("variants") or {}
        run.final_fitness = _number((variants.get("generated") or {}).get("fitness_mean"))
        run.native_fitness = _number((variants.get("native") or {}).get("fitness_mean"))
        run.sparse_fitness = _number((variants.get("sparse") or {}).get("fitness_mean"))
        run.final_per_seed = {k: _per_seed(variants[k]) for k in VARIANTS if variants.get(k)}
        run.final_seeds = [int(s) for s in final.get("seeds") or []]
        run.final_timesteps = int(final["timesteps"]) if final.get("timesteps") else None
        # One rule for old and new summaries alike (see stats_summary.human_normalised).
        native, sparse = variants.get("native") or {}, variants.get("sparse") or {}
        run.human_normalised, run.human_normalised_reason = stats_summary.human_normalised(
            run.final_fitness, run.native_fitness, run.sparse_fitness,
            native_std=_number(native.get("fitness_std")) or 0.0,
            sparse_std=_number(sparse.get("fitness_std")) or 0.0)
        final_steps = sum(int(read_json(p).get("env_steps") or 0)
                          for p in (run_dir / "final").glob("*/result.json"))
        run.env_steps = (run.env_steps or 0.0) + final_steps if run.finished else run.env_steps
    return run


def _per_seed(variant: dict[str, Any]) -> list[float]:
    """A variant's fitness on each final seed (older summaries: its mean, as one value)."""
    per_seed = variant.get("fitness_per_seed")
    if isinstance(per_seed, dict):
        return [v for x in per_seed.values() if (v := _number(x)) is not None]
    mean = _number(variant.get("fitness_mean"))
    return [] if mean is None else [mean]


def _wall_time(run_dir: Path) -> float | None:
    """Seconds from the run's first to its last event (resumes included), None without events."""
    path = run_dir / "events.jsonl"
    if not path.is_file():
        return None
    stamps = []
    for line in path.read_text().splitlines():
        try:
            stamps.append(float(json.loads(line)["t"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
    return max(stamps) - min(stamps) if len(stamps) > 1 else None


def run_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a sweep: folders holding a regular ``manifest.json``.

    Searched breadth first, at most :data:`SWEEP_DEPTH` folders down, without following links,
    and never inside a run directory (runs do not nest; a worker's ``train/`` folder can hold
    a planted ``manifest.json``, a FIFO of that name or a folder chain thousands deep) nor
    inside any worker folder (:data:`WORKER_DIRS`).
    """
    runs: list[Path] = []
    frontier, listed = [sweep_dir.resolve()], 0
    for depth in range(SWEEP_DEPTH + 1):
        below = []
        for folder in frontier[:max(0, MAX_FOLDERS - listed)]:
            listed += 1
            try:
                entries = list_dir(folder)
            except UnsafeFileError as e:
                log.warning("sweep: not searched for runs: %s", e)
                continue
            if Entry(MANIFEST, "file") in entries:
                runs.append(folder)
            elif depth < SWEEP_DEPTH:
                below += [folder / e.name for e in entries
                          if e.kind == "dir" and e.name not in WORKER_DIRS]
        frontier = below
    return sorted(runs)


def find_runs(sweep_dir: Path) -> list[SweepRun]:
    """Every run directory (a folder with manifest.json) under ``sweep_dir``, in name order."""
    if not sweep_dir.is_dir():
        raise RunDirError(f"sweep directory {sweep_dir} does not exist; pass the folder that "
                          f"`rewardgen --multirun` printed (multirun/<date>_<time> by default)")
    dirs = run_dirs(sweep_dir)
    if not dirs:
        raise RunDirError(f"{sweep_dir} holds no run directories (no */manifest.json); is it the "
                          f"output of `rewardgen --multirun`? For one run use rewardgen-report RUN_DIR")
    runs = [read_run(d) for d in dirs]
    # Knobs equal in every run are the sweep's fixed settings, not what it varies.
    varying = {k for k in {k for r in runs for k in r.knobs}
               if len({r.knobs.get(k) for r in runs}) > 1}
    for r in runs:
        r.knobs = {k: v for k, v in r.knobs.items() if k in varying}
    return runs


def group_runs(runs: list[SweepRun]) -> list[SweepGroup]:
    """Runs grouped by task and swept knobs, in first-appearance order."""
    by_name: dict[str, list[SweepRun]] = {}
    for r in runs:
        by_name.setdefault(r.group, []).append(r)
    groups = []
    for name, members in by_name.items():
        values = {m: [v for r in members if (v := getattr(r, m)) is not None]
                  for m in (*METRICS, *COSTS)}
        mean = {m: statistics.fmean(v) if v else None for m, v in values.items()}
        final, native = mean["final_fitness"], mean["native_fitness"]
        pooled = {k: [v for r in members for v in r.final_per_seed.get(k, [])] for k in VARIANTS}
        groups.append(SweepGroup(
            name=name,
            task=members[0].task,
            seeds=sorted((r.seed for r in members), key=lambda s: -1 if s is None else s),
            finished=sum(r.finished for r in members),
            mean=mean,
            std={m: statistics.pstdev(v) if v else None for m, v in values.items()},
            values=values,
            beats_human=None if final is None or native is None else final > native,
            final_iqm={k: stats_summary.iqm_interval(v) for k, v in pooled.items() if v},
            p_improvement=(stats_summary.probability_of_improvement(pooled["generated"],
                                                                    pooled["native"])
                           if pooled["generated"] and pooled["native"] else None),
            final_timesteps=sorted({r.final_timesteps for r in members if r.final_timesteps}),
            final_seeds=sorted({s for r in members for s in r.final_seeds}),
            human_normalised_undefined=[f"{Path(r.run_dir).name}: {r.human_normalised_reason}"
                                        for r in members if r.final_per_seed
                                        and r.human_normalised_reason is not None],
        ))
    return groups


def suite_totals(groups: list[SweepGroup]) -> dict[str, Any]:
    """The suite's bottom line: how often the generated reward beat the human one, and the cost.

    ``fraction_beats_human`` counts groups (tasks) with both a final and a native fitness;
    ``mean_human_normalised`` averages the groups' mean scores; costs are summed over all runs.
    """
    judged = [g for g in groups if g.beats_human is not None]
    scores = [s for g in groups if (s := g.mean["human_normalised"]) is not None]
    return {
        "tasks": len(groups),
        "tasks_judged": len(judged),
        "tasks_beating_human": sum(bool(g.beats_human) for g in judged),
        "fraction_beats_human": (sum(bool(g.beats_human) for g in judged) / len(judged)
                                 if judged else None),
        "mean_human_normalised": statistics.fmean(scores) if scores else None,
        **{f"total_{m}": sum(sum(g.values[m]) for g in groups) for m in COSTS},
    }
