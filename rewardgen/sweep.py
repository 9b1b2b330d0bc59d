"""One table and one plot for a whole Hydra sweep (``rewardgen-report --sweep DIR``).

A sweep (``rewardgen --multirun ...``) leaves one run directory per job. This module finds
them, groups them by task and by every swept knob except the seed, and reports per group the
mean and spread over seeds of: the best fitness of the search, the final retraining of the best
reward, the native (human) and sparse baselines, and Eureka's human-normalised score. The seed is
what a sweep repeats to measure spread, so it is never a grouping key.

Outputs, next to the runs: ``sweep_summary.json`` (every run and every group),
``sweep_summary.csv`` (one row per group) and ``sweep_report.png``. With a final phase (the Eureka
suite, conf/experiment/eureka_suite.yaml) the table also says per task whether the generated
reward beat the human one and what each run cost (LLM tokens and dollars, env steps, wall time).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rewardgen.errors import RunDirError
from rewardgen.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from rewardgen.sandbox.contract import markup_safe

log = logging.getLogger(__name__)

METRICS = ("search_fitness", "final_fitness", "native_fitness", "sparse_fitness", "human_normalised")
LABELS = {
    "search_fitness": "search best",
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
        run.human_normalised = _number(final.get("human_normalised_score"))
        final_steps = sum(int(read_json(p).get("env_steps") or 0)
                          for p in (run_dir / "final").glob("*/result.json"))
        run.env_steps = (run.env_steps or 0.0) + final_steps if run.finished else run.env_steps
    return run


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


def find_runs(sweep_dir: Path) -> list[SweepRun]:
    """Every run directory (a folder with manifest.json) under ``sweep_dir``, in name order."""
    if not sweep_dir.is_dir():
        raise RunDirError(f"sweep directory {sweep_dir} does not exist; pass the folder that "
                          f"`rewardgen --multirun` printed (multirun/<date>_<time> by default)")
    dirs = sorted({p.parent for p in sweep_dir.rglob("manifest.json")})
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
        groups.append(SweepGroup(
            name=name,
            task=members[0].task,
            seeds=sorted((r.seed for r in members), key=lambda s: -1 if s is None else s),
            finished=sum(r.finished for r in members),
            mean=mean,
            std={m: statistics.pstdev(v) if v else None for m, v in values.items()},
            values=values,
            beats_human=None if final is None or native is None else final > native,
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


def _cell(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.3f} ± {std or 0.0:.3f}"


def groups_csv(groups: list[SweepGroup]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["group", "task", "runs", "finished", *(f"{m}_{s}" for m in METRICS
                                                            for s in ("mean", "std", "n")),
                     "beats_human", *(f"{m}_mean" for m in COSTS)])
    for g in groups:
        row: list[Any] = [g.name, g.task, len(g.seeds), g.finished]
        for m in METRICS:
            row += [g.mean[m], g.std[m], len(g.values[m])]
        row += [g.beats_human, *(g.mean[m] for m in COSTS)]
        writer.writerow(row)
    return buffer.getvalue()


def plot_groups(groups: list[SweepGroup], sweep_name: str) -> bytes:
    """PNG: one panel per group (fitness of search, final and baselines), one for the score.

    Tasks measure fitness in their own units, so each group gets its own axis; the
    human-normalised score is comparable across tasks and shares one panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(groups) + 1
    cols = min(4, panels)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    flat = list(axes.flat)
    fitness = METRICS[:4]
    for ax, g in zip(flat, groups, strict=False):
        for x, m in enumerate(fitness):
            if g.mean[m] is None:
                continue
            ax.bar(x, g.mean[m], yerr=g.std[m], color=f"C{x}", alpha=0.6, capsize=3)
            ax.scatter([x] * len(g.values[m]), g.values[m], color="k", s=8, zorder=3)
        ax.set_xticks(range(len(fitness)), [LABELS[m] for m in fitness], rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(f"{g.name}\n({len(g.seeds)} seeds)", fontsize=8)
        ax.set_ylabel("fitness", fontsize=8)
    ax = flat[len(groups)]
    for x, g in enumerate(groups):
        m = "human_normalised"
        if g.mean[m] is None:  # no final retraining, or native == sparse
            ax.text(x, 0.5, "n/a", ha="center", fontsize=8, color="gray")
            continue
        ax.bar(x, g.mean[m], yerr=g.std[m], color="C4", alpha=0.6, capsize=3)
        ax.scatter([x] * len(g.values[m]), g.values[m], color="k", s=8, zorder=3)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")  # the native reward's level
    ax.set_xticks(range(len(groups)), [g.name for g in groups], rotation=30, ha="right", fontsize=7)
    ax.set_title("human-normalised score\n(generated - sparse) / |native - sparse|", fontsize=8)
    for extra in flat[panels:]:
        extra.axis("off")
    fig.suptitle(f"sweep {sweep_name}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _table(groups: list[SweepGroup], title: str) -> Any:
    from rich.table import Table

    table = Table(title=markup_safe(title))
    table.add_column("group", no_wrap=True)
    table.add_column("runs (finished)", justify="right")
    for m in METRICS:
        table.add_column(LABELS[m], justify="right")
    table.add_column("beats human", justify="center")
    for m in COSTS:
        table.add_column(COST_LABELS[m] + " (mean)", justify="right")
    for g in groups:
        beats = "-" if g.beats_human is None else "yes" if g.beats_human else "no"
        costs = ["-" if g.mean[m] is None else f"{g.mean[m]:,.{4 if m == 'llm_cost_usd' else 0}f}"
                 for m in COSTS]
        table.add_row(markup_safe(g.name), f"{len(g.seeds)} ({g.finished})",
                      *(_cell(g.mean[m], g.std[m]) for m in METRICS), beats, *costs)
    return table


def main_sweep(sweep_dir: str | Path, *, show: bool = True) -> dict[str, Any]:
    """Aggregate a sweep directory: write its summary files and plot, print its table.

    Args:
        sweep_dir: the folder of a ``rewardgen --multirun`` sweep (holding one run per job).
        show: print the table on the terminal.

    Returns:
        The content of ``sweep_summary.json``: ``runs``, ``groups`` and the output ``files``.

    Raises:
        RunDirError: the folder is missing or holds no run directories.
    """
    root = Path(sweep_dir).resolve()
    runs = find_runs(root)
    groups = group_runs(runs)
    files = {
        "json": str(root / "sweep_summary.json"),
        "csv": str(root / "sweep_summary.csv"),
        "plot": str(root / "sweep_report.png"),
    }
    summary: dict[str, Any] = {
        "sweep_dir": str(root),
        "runs": [{**asdict(r), "group": r.group} for r in runs],
        "groups": [asdict(g) for g in groups],
        "suite": suite_totals(groups),
        "files": files,
    }
    atomic_write_text(files["csv"], groups_csv(groups))
    atomic_write_bytes(files["plot"], plot_groups(groups, root.name))
    atomic_write_json(files["json"], summary)
    unfinished = [r.run_dir for r in runs if not r.finished]
    if unfinished:
        log.warning("%d run(s) of the sweep have no summary.json yet (unfinished or failed): %s",
                    len(unfinished), ", ".join(Path(u).name for u in unfinished))
    if show:
        from rich.console import Console

        console = Console(stderr=True)
        console.print(_table(groups, f"sweep {root} ({len(runs)} runs)"))
        suite = summary["suite"]
        if suite["fraction_beats_human"] is not None:
            console.print(f"generated beats human on {suite['tasks_beating_human']}/"
                          f"{suite['tasks_judged']} tasks ({suite['fraction_beats_human']:.0%}); "
                          f"LLM tokens {suite['total_llm_tokens']:,.0f}, cost "
                          f"${suite['total_llm_cost_usd']:.4f}, env steps "
                          f"{suite['total_env_steps']:,.0f}")
        console.print(markup_safe(f"table: {files['csv']}\nplot: {files['plot']}"))
    return summary

