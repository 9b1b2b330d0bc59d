"""``rewardgen-replay``: score every reward program in a folder on a task, without any LLM.

A search's result is a set of reward files. Re-training them later (another rewardgen version,
another machine, more seeds) is how a result is reproduced or a regression found, so this module
takes a folder, finds its programs and trains each one over the seeds with the same config as
``rewardgen-eval`` (conf/eval.yaml), each in its own isolated worker like a search candidate::

    rewardgen-replay runs/hopper/<run> task=hopper seeds=[0,1,2] train.timesteps=200_000
    rewardgen-replay my_rewards/ task=hopper --baselines native sparse --out replay/hopper

What counts as a program: if the folder holds ``reward.py`` files below it (a run
directory's ``gen_*/cand_*/reward.py`` and ``best/reward.py``, an exported package's
``<pkg>/reward.py``), those; otherwise every ``*.py`` directly in it (hand-written rewards).
Identical programs (same SHA-256) are trained once, under their first name. The search goes at
most :data:`PROGRAM_DEPTH` folders down, follows no link and never enters a worker's folder
(``train/``: what a sandbox wrote there is not a program of the run); files are read as plain,
bounded files, and one that cannot be read is a ``rejected`` row with its reason.

Outputs in ``--out``: ``replay.json`` (every result), ``replay.csv`` (one row per program) and a
rich table on the terminal; each training's files under ``<out>/<label>/seed<N>/``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import logging
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rewardgen.cli.evaluate import eval_job
from rewardgen.errors import ConfigError, RewardCodeError, RewardGenError
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text
from rewardgen.runs.records import WORKER_DIRS, CandidateJob, CandidateResult
from rewardgen.runs.untrusted import UnsafeFileError, read_regular_file, walk
from rewardgen.sandbox.contract import CleanFormatter, clean_text, markup_safe
from rewardgen.sandbox.validate import check_source

log = logging.getLogger(__name__)
BASELINES = ("native", "sparse")
PROGRAM_DEPTH = 6  # folders searched below the given one (a sweep's run: N/gen_000/cand_00/)
MAX_PROGRAM_MB = 1.0


@dataclass
class Program:
    """One reward to replay: a program file, or a baseline (``source`` None)."""

    label: str
    path: str | None
    source: str | None
    kind: str = "program"  # program | native | sparse
    sha256: str | None = None
    duplicates: list[str] = field(default_factory=list)
    error: str | None = None  # why its file could not be read (it is reported as rejected)


def find_programs(folder: str | Path) -> list[Program]:
    """The reward programs in ``folder`` (see the module docstring for the rule), deduplicated.

    Raises:
        ConfigError: the folder is missing or holds no ``*.py`` file.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"reward folder {folder!s} does not exist; pass a run directory, an "
                          f"exported package or a folder of *.py reward files")
    found = walk(root, max_depth=PROGRAM_DEPTH, skip=(*WORKER_DIRS, "evaluation", "judge"))
    for line in found.skipped:
        log.warning("replay: not searched for programs: %s", clean_text(line, keep_newlines=False))
    # A run's best/ repeats one of its candidates: sort it last so the candidate keeps the name.
    rels = sorted((p for p in found.files if p.name == "reward.py"),
                  key=lambda p: (p.parts[0] == "best", p)) or sorted(
        p for p in found.files if len(p.parts) == 1 and p.suffix == ".py"
        and p.name != "__init__.py")
    if not rels:
        raise ConfigError(f"{root} holds no reward program (no reward.py below it, no *.py in "
                          f"it); write compute_reward(state, action, prev_state) in a .py file")
    by_hash: dict[str, Program] = {}
    for rel in rels:
        path = root / rel
        label = str(rel.parent if rel.name == "reward.py" and rel.parent != Path(".") else rel)
        try:
            source = read_regular_file(path, MAX_PROGRAM_MB, under=root).decode("utf-8")
        except (UnsafeFileError, UnicodeDecodeError) as e:
            reason = f"{rel} cannot be read: {e}"
            log.warning("replay: %s", clean_text(reason, keep_newlines=False))
            by_hash[f"unreadable:{rel}"] = Program(label=label, path=str(path), source=None,
                                                   error=reason)
            continue
        digest = hashlib.sha256(source.encode()).hexdigest()
        if digest in by_hash:
            by_hash[digest].duplicates.append(label)
            continue
        by_hash[digest] = Program(label=label, path=str(path), source=source, sha256=digest)
    return list(by_hash.values())


def _job(cfg: DictConfig, program: Program, out_dir: Path, seed: int) -> CandidateJob:
    return eval_job(cfg, program.source, program.kind, out_dir, seed)


def _row(program: Program, results: list[CandidateResult]) -> dict[str, Any]:
    fits = [float(r.fitness) for r in results if r.ok and r.fitness is not None]
    succ = [r.success_rate for r in results if r.ok and r.success_rate is not None]
    return {
        "label": program.label,
        "kind": program.kind,
        "path": program.path,
        "sha256": program.sha256,
        "duplicates": program.duplicates,
        "fitness_mean": statistics.fmean(fits) if fits else None,
        "fitness_std": statistics.pstdev(fits) if fits else None,
        "fitness_per_seed": {str(r.seed): r.fitness for r in results},
        "success_mean": statistics.fmean(succ) if succ else None,
        "n_ok": len(fits),
        "statuses": [r.status for r in results],
        "reasons": [r.reason for r in results if not r.ok],
        "env_steps": sum(r.env_steps for r in results),
        "wall_time_s": sum(r.wall_time_s for r in results),
    }


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "reward"


def replay(cfg: DictConfig, folder: str | Path, out_dir: str | Path,
           baselines: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train every program of ``folder`` (and the chosen baselines) over ``cfg.seeds``.

    A program that fails the static check is reported as ``rejected`` without a worker, as in a
    search; one that fails in its worker is ``failed``/``timeout`` with the worker's reason.

    Args:
        cfg: a composed ``rewardgen-eval`` config (task, seeds, train, rl, sandbox).
        folder: where the programs are (see :func:`find_programs`).
        out_dir: where results go (created).
        baselines: any of ``native``, ``sparse``: trained with the same budget for comparison.

    Returns:
        The content of ``replay.json``: ``task``, ``seeds``, ``rows`` (one per program) and
        ``files``.

    Raises:
        ConfigError: no programs, or an unknown baseline or task.
    """
    from rewardgen.executors import make_executor
    from rewardgen.tasks.spec import load_task, use_task_dirs

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    use_task_dirs(cfg.get("task_dirs"))
    task = load_task(cfg.task)
    programs = find_programs(folder)
    for name in baselines:
        if name == "sparse" and not task.sparse_reward:
            log.warning("task %s has no sparse reward; skipping the sparse baseline", task.name)
            continue
        programs.append(Program(label=f"[{name}]", path=None, source=None, kind=name))
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in cfg.seeds]
    executor = make_executor(cfg.executor, cfg.sandbox, cfg.rl, str(cfg.device))  # checks bwrap
    # Every (program, seed) that passes the static check trains through the executor, in
    # parallel up to executor.workers; rejected ones get their result here.
    slots: dict[tuple[int, int], CandidateResult] = {}
    pending: list[tuple[int, int, CandidateJob]] = []
    for p, program in enumerate(programs):
        for seed in seeds:
            job_dir = out / _safe(program.label) / f"seed{seed}"
            if program.source is not None or program.error is not None:
                try:
                    if program.error is not None:
                        raise RewardCodeError(program.error)
                    check_source(program.source or "", state_fields=task.state_names)
                except RewardCodeError as e:
                    slots[p, seed] = CandidateResult(status="rejected", reason=str(e), seed=seed,
                                                     reward_sha256=program.sha256)
                    job_dir.mkdir(parents=True, exist_ok=True)
                    atomic_write_json(job_dir / "result.json", slots[p, seed].to_dict())
                    continue
            pending.append((p, seed, _job(cfg, program, job_dir, seed)))

    def done(i: int, result: CandidateResult) -> None:
        p, seed, _ = pending[i]
        slots[p, seed] = result
        log.info("replay %s seed %d: %s %s", programs[p].label, seed, result.status,
                 result.fitness if result.ok else result.reason)

    executor.run([job for _, _, job in pending], done)
    rows = [_row(program, [slots[p, seed] for seed in seeds]) for p, program in enumerate(programs)]
    files = {"json": str(out / "replay.json"), "csv": str(out / "replay.csv")}
    summary = {"task": task.name, "folder": str(Path(folder).resolve()), "seeds": seeds,
               "timesteps": int(cfg.train.timesteps), "rows": rows, "files": files}
    atomic_write_json(files["json"], summary)
    atomic_write_text(files["csv"], rows_csv(rows))
    return summary


CSV_COLUMNS = ("label", "kind", "fitness_mean", "fitness_std", "success_mean", "n_ok",
               "statuses", "env_steps", "wall_time_s", "sha256", "path")


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """One CSV row per program (statuses joined by ``;``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([";".join(row[c]) if c == "statuses" else row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()


def print_table(summary: dict[str, Any]) -> None:
    """The replay as a rich table on stderr (stdout stays free for pipes)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=markup_safe(f"replay on {summary['task']}: seeds {summary['seeds']}, "
                                    f"{summary['timesteps']} steps each"))
    for col in ("program", "fitness", "success", "ok", "statuses", "reason"):
        table.add_column(col, justify="left" if col in ("program", "reason") else "right")
    for row in summary["rows"]:
        fit = ("-" if row["fitness_mean"] is None
               else f"{row['fitness_mean']:.3f} ± {row['fitness_std']:.3f}")
        succ = "-" if row["success_mean"] is None else f"{row['success_mean']:.2f}"
        table.add_row(markup_safe(row["label"]), fit, succ,
                      f"{row['n_ok']}/{len(summary['seeds'])}", ",".join(row["statuses"]),
                      markup_safe((row["reasons"] or [""])[0], keep_newlines=False, max_chars=60))
    console = Console(stderr=True)
    console.print(table)
    files = summary["files"]
    console.print(markup_safe(f"table: {files['csv']}\nresults: {files['json']}"))


def compose_eval(overrides: list[str]) -> DictConfig:
    """conf/eval.yaml with ``key=value`` overrides, as ``rewardgen-eval`` would compose it.

    Raises:
        ConfigError: an override that does not fit the config.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rewardgen.config import register_configs
    from rewardgen.resources import resource_dir

    register_configs()
    try:
        with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
            return compose("eval", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"overrides {overrides} do not fit conf/eval.yaml: "
                          f"{str(e).splitlines()[0]}") from e


def schedule_main(run_dir: str, schedule: str, overrides: list[str],
                  workers: int | None) -> dict[str, Any]:
    """``rewardgen-replay --schedule halving RUN_DIR``: what the schedule saves on this run."""
    from rich.console import Console
    from rich.table import Table

    from rewardgen.search.schedule_replay import replay_run

    try:
        params = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"{item!r} is not key=value (a loop.pruner key)")
            params[key.removeprefix("loop.pruner.")] = None if value == "null" else int(value)
        summary = replay_run(run_dir, schedule, params, workers)
    except (RewardGenError, ValueError) as e:
        print(f"rewardgen-replay: error: {' '.join(clean_text(str(e)).split())}", file=sys.stderr)
        sys.exit(1)
    table = Table(title=f"loop.schedule={schedule} replayed on {markup_safe(str(run_dir))} "
                        f"({summary['workers']} worker(s))")
    for col in ("generation", "candidates", "env steps (full)", "env steps (schedule)", "pruned",
                "best (full)", "best (schedule)"):
        table.add_column(col)
    for g in summary["generations"]:
        table.add_row(str(g["generation"]), str(g["candidates"]), str(g["steps_full"]),
                      str(g["steps_schedule"]), ", ".join(f"{k}@{v}" for k, v in g["pruned"].items()),
                      str(g["best_full"]), str(g["best_schedule"]))
    console = Console()
    console.print(table)
    rate = summary["same_best_rate"]
    console.print(f"steps_saved {summary['steps_saved']:.3f}  same_best_rate "
                  f"{'n/a' if rate is None else f'{rate:.3f}'}")
    return summary


def main(argv: list[str] | None = None) -> None:
    """``rewardgen-replay``: exit status 0 after a replay (the console script would print a
    returned value and exit 1), 1 on an error, 130 on Ctrl-C."""
    replay_main(argv)


def replay_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``rewardgen-replay REWARD_DIR [key=value ...] [--baselines native sparse] [--out DIR]``;
    returns the content of replay.json."""
    from rewardgen.cli.app import exit_stopped, stop_on_ctrl_c
    from rewardgen.cli.check import validate

    parser = argparse.ArgumentParser(prog="rewardgen-replay", description=__doc__.splitlines()[0])
    parser.add_argument("reward_dir", help="run directory, exported package or folder of *.py")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="conf/eval.yaml overrides: task=hopper seeds=[0,1] train.timesteps=N")
    parser.add_argument("--baselines", nargs="*", default=[], choices=BASELINES,
                        help="also train the native and/or sparse reward with the same budget")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/replay/<task>/<date>_<time>)")
    parser.add_argument("--schedule", default=None, choices=("halving", "median"),
                        help="train nothing: replay loop.schedule on the run's recorded curves "
                             "(overrides are then loop.pruner keys: reduction_factor=3)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--schedule: candidates training at once (default: the run's)")
    args = parser.parse_intermixed_args(argv)
    if args.schedule:
        return schedule_main(args.reward_dir, args.schedule, args.overrides, args.workers)
    os.environ.setdefault("MUJOCO_GL", "egl")
    handler = logging.StreamHandler()
    handler.setFormatter(CleanFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        cfg = compose_eval(list(args.overrides))
        for warning in validate(cfg):
            log.warning(warning)
        out = args.out or Path("runs/replay") / str(cfg.task) / dt.datetime.now().strftime(
            "%Y-%m-%d_%H-%M-%S")
        with stop_on_ctrl_c("rewardgen-replay"):
            summary = replay(cfg, args.reward_dir, out, tuple(args.baselines))
    except KeyboardInterrupt:
        exit_stopped("rewardgen-replay: stopped by the user")
    except RewardGenError as e:
        print(f"rewardgen-replay: error: {' '.join(clean_text(str(e)).split())}", file=sys.stderr)
        sys.exit(1)
    print_table(summary)
    return summary


if __name__ == "__main__":
    main()
