"""``rewardgen-report``: one self-contained HTML page per run, with PNG plots beside it.

``RUN_DIR/report.html`` shows what a run did: fitness per generation, every candidate (status,
reason, fitness, success, tokens, wall time), each reward program highlighted with its diff from
the parent it was evolved from, reward-component curves read from the TensorBoard logs, rollout videos of
each generation's best, the final retraining against the baselines, and LLM usage and cost.
Nothing is fetched from the network: styles are inline, plots are embedded as base64 PNG (and
written to ``RUN_DIR/plots/`` for papers), videos are files next to the report.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from rewardgen import __version__
from rewardgen.errors import RewardGenError
from rewardgen.reporting import plots
from rewardgen.runs.atomic import atomic_write_text, read_json
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.sandbox.contract import CleanFormatter, clean_text
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
PLOTS_DIR = "plots"
COMPONENT_TAG = "rewardgen/component/"
_FORMATTER = HtmlFormatter(cssclass="hl", nowrap=False)


@dataclass
class CandidateRow:
    """One candidate as the report shows it."""

    record: CandidateRecord
    parent: str | None = None
    code_html: str = ""
    diff_html: str = ""
    is_generation_best: bool = False
    is_best: bool = False
    video_mp4: str | None = None
    video_gif: str | None = None
    components_png: str | None = None  # data URI

    @property
    def label(self) -> str:
        return self.record.label

    @property
    def anchor(self) -> str:
        return self.record.label.replace("/", "-")


@dataclass
class Plot:
    """A figure: its file beside the report and the same bytes as a data URI."""

    title: str
    file: str
    data_uri: str


@dataclass
class ReportData:
    """Everything the template renders."""

    manifest: dict[str, Any]
    task: TaskSpec | None
    generations: list[list[CandidateRow]] = field(default_factory=list)
    best: str | None = None
    summary: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    tokens_per_generation: list[dict[str, int]] = field(default_factory=list)
    plots: dict[str, Plot] = field(default_factory=dict)


# ---------------------------------------------------------------- reading the run
def read_generations(store: RunStore) -> list[list[CandidateRecord]]:
    """Every finished candidate, grouped by generation, in order."""
    out = []
    for gen_dir in sorted(store.root.glob("gen_[0-9][0-9][0-9]")):
        generation = int(gen_dir.name[4:])
        records = [store.read_record(generation, int(c.name[5:]))
                   for c in sorted(gen_dir.glob("cand_[0-9][0-9]"))]
        out.append([r for r in records if r is not None])
    return out


def tensorboard_components(cand_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """``rewardgen/component/<name>`` scalars from a candidate's TensorBoard logs.

    The logs are written by the training worker, so these curves are reported by the candidate
    and read as hostile input (:mod:`rewardgen.reporting.tb_events`, never TensorBoard's reader).
    """
    from rewardgen.reporting.tb_events import read_scalars

    return read_scalars(cand_dir, COMPONENT_TAG)


def _usage(store: RunStore, summary: dict[str, Any] | None) -> dict[str, Any]:
    if summary and summary.get("llm_usage"):
        return dict(summary["llm_usage"])
    for event in reversed(store.events()):
        if event.get("event") == "search_done" and isinstance(event.get("usage"), dict):
            return dict(event["usage"])
    return {}


def _tokens(store: RunStore, generation: int) -> dict[str, int]:
    answers = store.read_responses(generation) or []
    return {
        "answers": len(answers),
        "prompt_tokens": sum(int(a.get("prompt_tokens") or 0) for a in answers),
        "completion_tokens": sum(int(a.get("completion_tokens") or 0) for a in answers),
        "cached": sum(bool(a.get("cached")) for a in answers),
    }


def _code_html(source: str | None) -> str:
    return highlight(clean_text(source), PythonLexer(), _FORMATTER) if source else ""


def _diff_html(parent: CandidateRecord | None, record: CandidateRecord) -> str:
    if parent is None or not parent.source or not record.source:
        return ""
    diff = "\n".join(difflib.unified_diff(parent.source.splitlines(), record.source.splitlines(),
                                          fromfile=parent.label, tofile=record.label,
                                          lineterm=""))
    return highlight(clean_text(diff) or "(identical to its parent)", DiffLexer(), _FORMATTER)


def _best_trained(records: list[CandidateRecord]) -> CandidateRecord | None:
    trained = [r for r in records if r.result.ok and r.result.fitness is not None]
    return max(trained, key=lambda r: float(r.result.fitness or 0.0), default=None)


def collect(store: RunStore) -> ReportData:
    """Read a run directory into what the report shows (no plots, no videos yet)."""
    manifest = store.manifest
    try:
        task: TaskSpec | None = load_task(str(manifest.get("task")))
    except RewardGenError as e:
        log.warning("report: task %r cannot be loaded (%s); units and camera unknown",
                    manifest.get("task"), e)
        task = None
    summary_path = store.root / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else None
    final_path = store.final_dir / "summary.json"
    origin = store.best_dir / "origin.json"
    data = ReportData(
        manifest=manifest, task=task, summary=summary,
        final=read_json(final_path) if final_path.is_file() else None,
        best=str(read_json(origin)["candidate"]) if origin.is_file() else None,
        usage=_usage(store, summary),
    )
    # Generation g's prompt is built around best_record(generations < g) under the run's
    # loop.context (ICPL: the preferred candidate), as the loop chose it.
    from rewardgen.runs.store import best_record

    context = str(((manifest.get("config") or {}).get("loop") or {}).get("context", "all_time"))
    history: list[list[CandidateRecord]] = []
    for generation, records in enumerate(read_generations(store)):
        parent = best_record(history, context) if history else None
        gen_best = _best_trained(records)
        rows = []
        for record in records:
            cand = store.cand_dir(record.generation, record.index)
            row = CandidateRow(record=record, parent=parent.label if parent else None,
                               code_html=_code_html(record.source),
                               diff_html=_diff_html(parent, record),
                               is_generation_best=gen_best is not None
                               and record.label == gen_best.label,
                               is_best=record.label == data.best)
            for fmt in ("mp4", "gif"):
                if (cand / f"video.{fmt}").is_file():
                    setattr(row, f"video_{fmt}", f"{record.label}/video.{fmt}")
            rows.append(row)
        data.generations.append(rows)
        data.tokens_per_generation.append(_tokens(store, generation))
        history.append(list(records))
    return data


# ---------------------------------------------------------------- plots
def _plot(path: Path, root: Path, title: str) -> Plot:
    uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    return Plot(title=title, file=str(path.relative_to(root)), data_uri=uri)


def make_plots(data: ReportData, store: RunStore) -> None:
    """Write the PNGs under ``RUN_DIR/plots/`` and attach them to ``data``."""
    root = store.root
    out = root / PLOTS_DIR
    unit = data.task.fitness.unit if data.task else ""
    per_gen = [[r.record.result.fitness if r.record.result.ok else None for r in rows]
               for rows in data.generations]
    if any(v is not None for gen in per_gen for v in gen):
        path = plots.fitness_curve(per_gen, out / "fitness.png", unit=unit,
                                   title=f"{data.manifest.get('task')}: fitness per generation")
        data.plots["fitness"] = _plot(path, root, "Fitness per generation")
    for rows in data.generations:
        for row in rows:
            if not (row.is_generation_best or row.is_best):
                continue
            curves = tensorboard_components(store.cand_dir(row.record.generation,
                                                           row.record.index))
            if not curves:  # no TensorBoard log: the evaluation points of result.json
                stats = row.record.result.component_stats
                steps = [e.get("timesteps", i) for i, e in
                         enumerate(row.record.result.evaluations)]
                curves = {k: list(zip(steps, v, strict=False)) for k, v in stats.items()}
            if curves:  # "$...$" in a component name would be parsed as mathtext
                curves = {k.replace("$", r"\$"): v for k, v in curves.items()}
                path = plots.component_curves(curves, out / f"components_{row.anchor}.png",
                                              title=f"{row.label}: reward components")
                row.components_png = _plot(path, root, "components").data_uri
    if data.final:
        variants = data.final.get("variants", {})
        means = {k: v.get("fitness_mean") for k, v in variants.items()}
        stds = {k: float(v.get("fitness_std") or 0.0) for k, v in variants.items()}
        # Only where the score is defined (native and sparse apart by more than their spread).
        defined = data.final.get("human_normalised_score") is not None
        scores = plots.normalise(means) if defined else None
        if scores is not None:
            scale = abs(float(means["native"] or 0.0) - float(means["sparse"] or 0.0))
            path = plots.human_normalised_scores(
                scores, out / "human_normalised.png",
                errors={k: s / scale for k, s in stds.items()})
            data.plots["final"] = _plot(path, root, "Human-normalised score")
        elif any(m is not None for m in means.values()):
            title = ("Final MPC episodes" if data.final.get("planner") == "mpc"
                     else "Final retraining")
            path = plots.variant_fitness({k: m for k, m in means.items() if m is not None},
                                         out / "final_fitness.png", errors=stds, unit=unit,
                                         title=title)
            data.plots["final"] = _plot(path, root, title)


# ---------------------------------------------------------------- the page
def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _interval(point: Any, ci: Any = None, reason: Any = None) -> str:
    from rewardgen.reporting.statistics import format_interval

    return format_interval(point, ci, reason)


def _headline(final: Any, search_fitness: Any) -> dict[str, Any]:
    from rewardgen.reporting.statistics import headline

    return headline(final, search_fitness)


def render(data: ReportData) -> str:
    """The HTML page (pure: no file access besides the packaged template)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("rewardgen", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["interval"] = _interval
    env.filters["headline"] = _headline
    template = env.get_template("report.html.j2")
    return template.render(d=data, pygments_css=_FORMATTER.get_style_defs(".hl"),
                           version=__version__, made=time.strftime("%Y-%m-%d %H:%M:%S"))


def write_report(run_dir: str | Path, *, videos: bool = True, video_steps: int = 300) -> Path:
    """Write ``RUN_DIR/report.html`` and ``RUN_DIR/plots/*.png``; return the report's path.

    Args:
        run_dir: the run directory.
        videos: record a rollout of each generation's best first (skipped when already there).
        video_steps: cap on the steps of each recorded rollout.
    """
    store = RunStore.open(run_dir)
    if videos:
        from rewardgen.reporting.video import record_generation_bests

        try:
            record_generation_bests(store.root, max_steps=video_steps)
        except (RewardGenError, RuntimeError, OSError) as e:
            log.warning("report: no videos (%s); the report is made without them", e)
    data = collect(store)
    make_plots(data, store)
    path = atomic_write_text(store.root / REPORT_NAME, render(data))
    path.chmod(0o644)  # a page meant to be shared or served, unlike the run's private files
    log.info("report: %s", path)
    return path


def report_at_end(run_dir: str | Path, **kwargs: Any) -> Path | None:
    """:func:`write_report` for the end of a run: a failure is logged, never raised.

    A finished search must not be lost to a report problem; ``rewardgen-report RUN_DIR`` can
    always make the page again later.
    """
    try:
        return write_report(run_dir, **kwargs)
    except Exception as e:  # noqa: BLE001 - the run's results are already saved
        log.warning("report: could not write %s/%s (%s: %s); run rewardgen-report %s",
                    run_dir, REPORT_NAME, type(e).__name__, e, run_dir)
        return None


def main(argv: list[str] | None = None) -> None:
    """``rewardgen-report RUN_DIR [--no-videos] [--video-steps N]`` or ``--sweep DIR``."""
    parser = argparse.ArgumentParser(prog="rewardgen-report",
                                     description="Write RUN_DIR/report.html and RUN_DIR/plots/.")
    parser.add_argument("run_dir", type=Path, nargs="?")
    parser.add_argument("--no-videos", action="store_true", help="do not record rollouts")
    parser.add_argument("--video-steps", type=int, default=300, help="steps per rollout video")
    parser.add_argument("--sweep", type=Path, metavar="DIR",
                        help="aggregate a `rewardgen --multirun` sweep folder into one table + plot")
    args = parser.parse_args(argv)
    if args.sweep is None and args.run_dir is None:
        parser.error("give a RUN_DIR, or --sweep DIR for a sweep")
    if args.sweep is not None:
        from rewardgen.reporting.sweep_report import main_sweep

        try:
            main_sweep(args.sweep)
        except RewardGenError as e:
            print(f"rewardgen-report: error: {clean_text(str(e))}", file=sys.stderr)
            sys.exit(1)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(CleanFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        path = write_report(args.run_dir, videos=not args.no_videos, video_steps=args.video_steps)
    except RewardGenError as e:
        print(f"rewardgen-report: error: {clean_text(str(e))}", file=sys.stderr)
        sys.exit(1)
    print(path)
