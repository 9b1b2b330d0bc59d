"""Console entry points. Each Hydra app is a thin shell around a pure function."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rewardgen.config import RewardGenConfig, register_configs
from rewardgen.errors import RewardGenError, RunDirError
from rewardgen.resources import resource_dir

log = logging.getLogger("rewardgen")
CONF_DIR = str(resource_dir("conf"))
register_configs()
os.environ.setdefault("MUJOCO_GL", "egl")


def _fail(error: BaseException) -> None:
    """One clear line on stderr, exit status 1; finished work stays in the run directory."""
    print(f"rewardgen: error: {error}", file=sys.stderr)
    sys.exit(1)


def run(cfg: DictConfig, run_dir: Path, interactive: bool = True) -> dict[str, Any]:
    """Run the loop in ``run_dir`` and return the summary (the pure function behind ``rewardgen``)."""
    if cfg.method.name in ("clip", "vlm_preference"):  # no code to evolve: one vision training
        from rewardgen.vision_run import run_vision

        return run_vision(cfg, run_dir, interactive)
    from rewardgen.loop import Loop
    from rewardgen.store import RunStore
    from rewardgen.summary import finish_run
    from rewardgen.ui import RunUI

    manifest = {
        "task": cfg.task,
        "method": cfg.method.name,
        "llm_provider": cfg.llm.provider,
        "llm_model": cfg.llm.model,
        "seed": int(cfg.seed),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    manifest["config"]["llm"].pop("api_key", None)  # type: ignore[index, union-attr]
    store = RunStore.create(run_dir, manifest)
    ui = RunUI(enabled=interactive)
    outcome = Loop(cfg, store, ui).run()
    return finish_run(outcome, ui)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _rewardgen_app(cfg: DictConfig) -> None:
    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except RewardGenError as e:
        _fail(e)


def main() -> None:
    """``rewardgen``: the evolutionary reward search (Hydra command line)."""
    _rewardgen_app()


def _log_to(path: Path) -> None:
    """Outside Hydra: the same logging as a Hydra run (file: INFO, terminal: warnings)."""
    fmt = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter(fmt))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[file_handler, console], force=True)


def resume_main(argv: list[str] | None = None) -> None:
    """``rewardgen-resume RUN_DIR``: continue a run where it stopped.

    Finished candidates are not trained again and saved LLM answers are not asked for again; the
    run's own composed config (``RUN_DIR/.hydra/config.yaml``) is reused as it was.
    """
    from rewardgen.store import RunStore

    parser = argparse.ArgumentParser(prog="rewardgen-resume", description=resume_main.__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        store = RunStore.open(args.run_dir)
        config_path = store.root / ".hydra" / "config.yaml"
        if not config_path.is_file():
            raise RunDirError(f"{config_path} is missing; cannot resume without the run's config")
        cfg = OmegaConf.load(config_path)
        schema = OmegaConf.structured(RewardGenConfig)
        cfg = OmegaConf.merge(schema, cfg)
        _log_to(store.root / "rewardgen.log")
        store.event("run_resumed")
        run(cfg, store.root)  # type: ignore[arg-type]
    except RewardGenError as e:
        _fail(e)


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train and score one reward file (or the native reward) over ``cfg.seeds``."""
    from rewardgen.evaluate import evaluate_reward_file

    return evaluate_reward_file(cfg, run_dir)


@hydra.main(config_path=CONF_DIR, config_name="eval", version_base="1.3")
def _eval_app(cfg: DictConfig) -> None:
    try:
        evaluate(cfg, Path(HydraConfig.get().runtime.output_dir))
    except RewardGenError as e:
        _fail(e)


def eval_main() -> None:
    """``rewardgen-eval task=... reward_file=...``."""
    _eval_app()


def tasks_main(argv: list[str] | None = None) -> None:
    """``rewardgen-tasks``: list the tasks with their fitness and description."""
    from rich.console import Console
    from rich.table import Table

    from rewardgen.tasks import load_task, task_names

    parser = argparse.ArgumentParser(prog="rewardgen-tasks", description=tasks_main.__doc__)
    parser.add_argument("name", nargs="?", help="show one task's State view in full")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.name:
            from rewardgen.methods.base import TaskPromptInfo

            task = load_task(args.name)
            console.print(f"[bold]{task.name}[/] ({task.env_id})\n{task.description}\n")
            console.print(f"fitness: {task.fitness.aggregate} of {task.fitness.expr} [{task.fitness.unit}] - {task.fitness.doc}")
            console.print(TaskPromptInfo.from_task(task).state_source, markup=False, highlight=False)
            return
        rows = []
        for name in task_names():
            task = load_task(name)
            fitness = f"{task.fitness.aggregate}({task.fitness.expr}) {task.fitness.unit}".strip()
            threshold = "-" if task.success_threshold is None else f"{task.success_threshold:g}"
            rows.append((name, task.env_id, fitness, threshold, task.description))
        if not console.is_terminal:  # piped: one tab-separated line per task
            for row in rows:
                print("\t".join(row))
            return
        table = Table(title=f"rewardgen tasks ({resource_dir('envs')})")
        for col in ("task", "env", "fitness", "success at"):
            table.add_column(col, no_wrap=True)
        table.add_column("description", overflow="fold", ratio=1)
        for row in rows:
            table.add_row(*row[:4], row[4][:160])
        console.print(table)
    except RewardGenError as e:
        _fail(e)
