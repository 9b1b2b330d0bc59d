"""``rewardgen-eval``: train and score any reward file (or the native reward) on a task."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from rewardgen.errors import ConfigError, RewardCodeError
from rewardgen.io import atomic_write_json
from rewardgen.results import CandidateJob
from rewardgen.sandbox.contract import markup_safe
from rewardgen.sandbox.validate import check_source
from rewardgen.tasks import load_task

log = logging.getLogger(__name__)


def eval_job(cfg: DictConfig, source: str | None, kind: str, out_dir: Path, seed: int) -> CandidateJob:
    """A worker job for one reward under an ``rewardgen-eval`` config (conf/eval.yaml)."""
    return CandidateJob(
        task=str(cfg.task), out_dir=str(out_dir), reward_source=source,
        reward_kind=kind, seed=seed, device=cfg.device,
        timesteps=int(cfg.train.timesteps), eval_freq=int(cfg.train.eval_freq),
        eval_episodes=int(cfg.train.eval_episodes), max_episode_steps=cfg.train.max_episode_steps,
        rl=OmegaConf.to_container(cfg.rl, resolve=True),  # type: ignore[arg-type]
        selection=cfg.fitness_aggregate, last_k=int(cfg.last_k),
        save_policy=bool(cfg.train.save_policy), tensorboard=bool(cfg.train.tensorboard),
        smoke_states=int(cfg.sandbox.smoke_states),
        smoke_call_timeout_s=float(cfg.sandbox.smoke_call_timeout_s),
    )


def eval_gpu(device: str) -> str | None:
    """The GPU an eval training may see: the first visible one, None with ``device=cpu`` or
    without GPUs. A worker given none hides every GPU, and SB3 would quietly train on the CPU."""
    from rewardgen.executors.local import visible_gpus

    gpus = visible_gpus(device)
    return gpus[0] if gpus else None


def evaluate_reward_file(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train ``cfg.reward_file`` (None: native reward) over ``cfg.seeds``; write summary.json."""
    from rewardgen.executors.local import pinned_device
    from rewardgen.executors.pipeline import run_job
    from rewardgen.sandbox.bwrap import check_backend

    check_backend(str(cfg.sandbox.backend))

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
            check_source(source)
        except RewardCodeError as e:
            raise RewardCodeError(f"{path}: {e}") from e
    results = []
    gpu = eval_gpu(str(cfg.device))
    for seed in cfg.seeds:
        job = eval_job(cfg, source, kind, run_dir / f"seed{seed}", int(seed))
        result = run_job(pinned_device(job, gpu), cfg.sandbox, gpu=gpu)  # sandboxed training, trusted evaluation
        results.append(result)
    summary = {
        "task": task.name,
        "reward_file": cfg.reward_file,
        "seeds": list(cfg.seeds),
        "results": [r.to_dict() for r in results],
        "fitness": [r.fitness for r in results],
    }
    atomic_write_json(run_dir / "summary.json", summary)
    table = Table(title=markup_safe(f"{task.name}: {cfg.reward_file or 'native reward'}"))
    for col in ("seed", "status", "fitness", "success", "reason"):
        table.add_column(col)
    for seed, r in zip(cfg.seeds, results, strict=True):
        table.add_row(str(seed), r.status, "-" if r.fitness is None else f"{r.fitness:.3f}",
                      "-" if r.success_rate is None else f"{r.success_rate:.2f}",
                      markup_safe(r.reason, keep_newlines=False, max_chars=80))
    console = Console(stderr=True)
    console.print(table)
    console.print(f"results: {markup_safe(str(run_dir / 'summary.json'))}")
    return summary
