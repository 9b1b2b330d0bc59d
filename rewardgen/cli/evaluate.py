"""``rewardgen-eval``: train and score any reward file (or the native reward) on a task."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.jobs import training_job
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateJob
from rewardgen.sandbox.contract import markup_safe
from rewardgen.sandbox.validate import check_source
from rewardgen.tasks.spec import load_task

log = logging.getLogger(__name__)


def eval_job(cfg: DictConfig, source: str | None, kind: str, out_dir: Path, seed: int) -> CandidateJob:
    """A worker job for one reward under an ``rewardgen-eval`` config (the one job builder)."""
    return training_job(cfg, str(out_dir), source, kind, seed=seed)


def evaluate_reward_file(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg.reward_file`` (None: native reward) over ``cfg.seeds``; write summary.json."""
    from rewardgen.executors import make_executor

    executor = make_executor(cfg.executor, cfg.sandbox, cfg.rl, str(cfg.device))  # checks bwrap
    task = load_task(cfg.task)
    source: str | None = None
    kind = "native"
    if cfg.reward_file:
        path = Path(cfg.reward_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"reward_file={cfg.reward_file!r} does not exist")
        source = path.read_text()
        kind = "program"
        try:
            check_source(source, state_fields=task.state_names)
        except RewardCodeError as e:
            raise RewardCodeError(f"{path}: {e}") from e
    jobs = [eval_job(cfg, source, kind, run_dir / f"seed{seed}", int(seed)) for seed in cfg.seeds]
    results = executor.run(jobs)  # the seeds in parallel (executor.workers); trusted evaluation
    summary = {
        "task": task.name,
        "reward_file": cfg.reward_file,
        "seeds": list(cfg.seeds),
        "results": [r.to_dict() for r in results],
        "fitness": [r.fitness for r in results],
    }
    atomic_write_json(run_dir / "summary.json", summary)
    table = Table(title=markup_safe(f"{task.name}: {cfg.reward_file or 'native reward'}"))
    for col in ("seed", "status", "fitness", "success"):
        table.add_column(col, no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)  # wrapped, never cut
    for seed, r in zip(cfg.seeds, results, strict=True):
        table.add_row(str(seed), r.status, "-" if r.fitness is None else f"{r.fitness:.3f}",
                      "-" if r.success_rate is None else f"{r.success_rate:.2f}",
                      markup_safe(r.reason, keep_newlines=False))
    console = Console(stderr=True)
    console.print(table)
    console.print(f"results: {markup_safe(str(run_dir / 'summary.json'))}")
    return summary
