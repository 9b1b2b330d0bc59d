"""Replay ``loop.schedule`` on a recorded run's trusted curves: what it saves, what it changes.

Every trained candidate of a run directory left its evaluation curve in ``result.json``. The
replay feeds those curves to the same :class:`~rewardgen.search.schedule.GenerationPruner` a
live run uses, in the order a pool of ``workers`` would have reached each point (env steps as
the clock, candidates started in index order as workers free up, evaluation taken as instant),
and reports per generation the env steps the schedule would have trained, whether the
candidate selected by ``loop.selection`` over the full curves survives (the same best) and, when
it does not, the regret: the fitness lost, as a share of the spread of the generation's scores.

``rewardgen-replay --schedule halving RUN_DIR`` and ``bench/halving.py`` print it.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rewardgen.errors import ConfigError
from rewardgen.search.schedule import Curve, GenerationPruner, pruner_params


def simulate(curves: Mapping[str, Curve], pruner: GenerationPruner, workers: int) -> dict[str, int]:
    """Env steps each candidate trains under ``pruner`` with ``workers`` running at once.

    Returns:
        Candidate key -> steps: its last reported point (pruned) or its curve's end.
    """
    queue = [key for key, curve in curves.items() if curve]
    events: list[tuple[int, int, str, int, int]] = []  # (clock, order, key, point, start)
    order = 0
    used: dict[str, int] = {}

    def start(key: str, now: int) -> None:
        nonlocal order
        heapq.heappush(events, (now + int(curves[key][0]["timesteps"]), order, key, 0, now))
        order += 1

    for _ in range(min(max(1, workers), len(queue))):
        start(queue.pop(0), 0)
    while events:
        clock, _, key, k, began = heapq.heappop(events)
        curve = curves[key]
        reason = pruner.report(key, curve[: k + 1])
        last = k == len(curve) - 1
        if reason and not last:
            used[key] = int(curve[k]["timesteps"])
            pruner.finish(key, "pruned", curve[: k + 1])
        elif last:
            used[key] = int(curve[k]["timesteps"])
            pruner.finish(key, "ok", curve)
        else:
            heapq.heappush(events, (began + int(curve[k + 1]["timesteps"]), order, key, k + 1, began))
            order += 1
            continue
        if queue:
            start(queue.pop(0), clock)
    return used


def _best(curves: Mapping[str, Curve], keys: Sequence[str], pruner: GenerationPruner) -> str | None:
    scored = [(pruner.value(curves[k]), -i, k) for i, k in enumerate(keys) if curves[k]]
    return max(scored)[2] if scored else None


def recorded_curves(run_dir: Path) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Generation -> candidate folder -> trusted curve, of every candidate that trained."""
    out: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for path in sorted(run_dir.glob("gen_[0-9][0-9][0-9]/cand_[0-9][0-9]/result.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        curve = [e for e in result.get("evaluations") or [] if isinstance(e, dict)
                 and isinstance(e.get("timesteps"), int) and isinstance(e.get("fitness"), int | float)
                 and math.isfinite(e["fitness"])]  # a NaN point is no rung
        if result.get("status") in ("ok", "pruned") and curve:
            out.setdefault(int(path.parent.parent.name[4:]), {})[path.parent.name] = curve
    return out


def replay_run(run_dir: str | Path, schedule: str, params: Mapping[str, Any] | None = None,
               workers: int | None = None) -> dict[str, Any]:
    """The schedule replayed on every generation of a recorded run.

    Args:
        run_dir: a run directory (its ``.hydra/config.yaml`` gives selection, eval_freq and, by
            default, the pool size and ``loop.pruner``).
        schedule: ``halving`` or ``median``.
        params: ``loop.pruner`` overrides.
        workers: candidates training at once (default: the run's ``executor.workers``, else 1).

    Returns:
        ``steps_saved`` (share of env steps avoided), ``same_best_rate`` (share of generations
        whose selected best survives) and one entry per generation.
    """
    root = Path(run_dir)
    config_path = root / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{root} is not a run directory (no .hydra/config.yaml)")
    cfg: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(config_path))  # type: ignore[assignment]
    loop = cfg.get("loop") or {}
    merged = {**pruner_params(loop.get("pruner")), **dict(params or {})}
    eval_freq = int((cfg.get("train") or {}).get("eval_freq", 0))
    pool = int(workers or (cfg.get("executor") or {}).get("workers") or 1)
    generations: list[dict[str, Any]] = []
    for generation, curves in sorted(recorded_curves(root).items()):
        pruner = GenerationPruner(schedule, merged, eval_freq, str(loop.get("selection", "max")),
                                  int(loop.get("last_k", 3)))
        used = simulate(curves, pruner, pool)
        full = {k: int(c[-1]["timesteps"]) for k, c in curves.items()}
        kept = [k for k in curves if used[k] == full[k]]
        best_full, best_kept = _best(curves, list(curves), pruner), _best(curves, kept, pruner)
        scores = {k: pruner.value(c) for k, c in curves.items()}
        spread = max(scores.values()) - min(scores.values())
        regret = 0.0 if best_full == best_kept or best_full is None or best_kept is None \
            else (scores[best_full] - scores[best_kept]) / spread if spread > 0 else 0.0
        generations.append({
            "generation": generation, "candidates": len(curves),
            "steps_full": sum(full.values()), "steps_schedule": sum(used.values()),
            "pruned": {k: used[k] for k in curves if used[k] < full[k]},
            "best_full": best_full, "best_schedule": best_kept, "same_best": best_full == best_kept,
            "regret": regret,  # the best's fitness lost, as a share of the candidates' spread
        })
    steps_full = sum(g["steps_full"] for g in generations)
    steps_used = sum(g["steps_schedule"] for g in generations)
    return {
        "run_dir": str(root), "task": cfg.get("task"), "schedule": schedule, "workers": pool,
        "pruner": merged, "generations": generations,
        "steps_full": steps_full, "steps_schedule": steps_used,
        "steps_saved": 1 - steps_used / steps_full if steps_full else 0.0,
        "same_best_rate": (sum(g["same_best"] for g in generations) / len(generations)
                           if generations else None),
        "mean_regret": (sum(g["regret"] for g in generations) / len(generations)
                        if generations else None),
    }
