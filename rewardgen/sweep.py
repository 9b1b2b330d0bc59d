"""One table and one plot for a whole Hydra sweep (``rewardgen-report --sweep DIR``).

A sweep (``rewardgen --multirun ...``) leaves one run directory per job. This module finds
them, groups them by task and by every swept knob except the seed, and reports per group the
mean and spread over seeds of: the best fitness of the search, the final retraining of the best
reward, the native (human) and sparse baselines, and Eureka's human-normalised score. The seed is
what a sweep repeats to measure spread, so it is never a grouping key.

Outputs, next to the runs: ``sweep_summary.json`` (every run and every group),
``sweep_summary.csv`` (one row per group) and ``sweep_report.png``.
"""

from __future__ import annotations

import csv
import io
import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rewardgen.errors import RunDirError
from rewardgen.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

log = logging.getLogger(__name__)

METRICS = ("search_fitness", "final_fitness", "native_fitness", "sparse_fitness", "human_normalised")
LABELS = {
    "search_fitness": "search best",
    "final_fitness": "final (generated)",
    "native_fitness": "native (human)",
    "sparse_fitness": "sparse",
    "human_normalised": "human-normalised",
}
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
    final_path = run_dir / "final" / "summary.json"
    if final_path.is_file():
        final = read_json(final_path)
        variants = final.get("variants") or {}
        run.final_fitness = _number((variants.get("generated") or {}).get("fitness_mean"))
        run.native_fitness = _number((variants.get("native") or {}).get("fitness_mean"))
        run.sparse_fitness = _number((variants.get("sparse") or {}).get("fitness_mean"))
        run.human_normalised = _number(final.get("human_normalised_score"))
    return run


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
        values = {m: [v for r in members if (v := getattr(r, m)) is not None] for m in METRICS}
        groups.append(SweepGroup(
            name=name,
            task=members[0].task,
            seeds=sorted((r.seed for r in members), key=lambda s: -1 if s is None else s),
            finished=sum(r.finished for r in members),
            mean={m: statistics.fmean(v) if v else None for m, v in values.items()},
            std={m: statistics.pstdev(v) if v else None for m, v in values.items()},
            values=values,
        ))
    return groups


def _cell(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.3f} ± {std or 0.0:.3f}"


def groups_csv(groups: list[SweepGroup]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["group", "task", "runs", "finished", *(f"{m}_{s}" for m in METRICS
                                                            for s in ("mean", "std", "n"))])
    for g in groups:
        row: list[Any] = [g.name, g.task, len(g.seeds), g.finished]
        for m in METRICS:
            row += [g.mean[m], g.std[m], len(g.values[m])]
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

    table = Table(title=title)
    table.add_column("group", no_wrap=True)
    table.add_column("runs (finished)", justify="right")
    for m in METRICS:
        table.add_column(LABELS[m], justify="right")
    for g in groups:
        table.add_row(g.name, f"{len(g.seeds)} ({g.finished})",
                      *(_cell(g.mean[m], g.std[m]) for m in METRICS))
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
    summary = {
        "sweep_dir": str(root),
        "runs": [{**asdict(r), "group": r.group} for r in runs],
        "groups": [asdict(g) for g in groups],
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
        console.print(f"table: {files['csv']}\nplot: {files['plot']}")
    return summary

