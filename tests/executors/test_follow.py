"""loop.schedule on the local pool: the trusted evaluator follows a real sandboxed training and a
candidate the pruner stops is killed at once, keeps what it produced and ends ``pruned``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rewardgen.executors import make_executor
from rewardgen.jobs import candidate_job
from rewardgen.runs.records import TRAIN_DIR
from rewardgen.search.schedule import GenerationPruner
from rewardgen.train.checkpoints import CHECKPOINT_DIR
from tests.helpers import tiny_config

BUDGET = 40_000  # minutes of training on this CPU: only a prune ends it within the test's time
STRONG = [{"timesteps": 128 * k, "fitness": 1e6} for k in (1, 2, 3)]


def strong_rival() -> GenerationPruner:
    """A halving pruner that already holds a finished candidate no real one can beat (a resumed
    generation's history), so the real candidate is stopped at its first rung."""
    return GenerationPruner("halving", {}, 128, "max", 3, history=[("cand_09", STRONG, "ok")])


def test_a_pruned_candidate_stops_at_its_first_rung_and_keeps_its_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config("device=cpu", f"train.timesteps={BUDGET}", "executor.workers=1")
    jobs = [candidate_job(cfg, str(tmp_path / "gen_000" / f"cand_0{i}"), None, "native")
            for i in range(2)]
    executor = make_executor(cfg.executor, cfg.sandbox, cfg.rl, cfg.device)
    pruner = strong_rival()
    started = time.monotonic()

    results = executor.run(jobs, pruner=pruner)

    assert time.monotonic() - started < 120  # two full trainings would take far longer
    for job, result in zip(jobs, results, strict=True):
        out = Path(job.out_dir)
        assert result.status == "pruned", (result.status, result.reason)
        assert "successive halving at rung 0 (128 env steps)" in result.reason
        assert "top 1/2" in result.reason
        # The trusted curve ends at the decision; the policy of that checkpoint is kept.
        assert [e["timesteps"] for e in result.evaluations] == [128]
        assert result.env_steps == 128 and result.fitness == result.evaluations[0]["fitness"]
        assert (out / "policy.zip").is_file() and (out / "trajectories.npz").is_file()
        on_disk = json.loads((out / "result.json").read_text())
        assert on_disk["status"] == "pruned" and on_disk["reason"] == result.reason
        # The training worker was killed long before its budget.
        progress = json.loads((out / TRAIN_DIR / "progress.json").read_text())
        assert progress["timesteps"] < BUDGET / 4
        assert len(list((out / TRAIN_DIR / CHECKPOINT_DIR).glob("*.safetensors"))) < 40
        assert "cancelled" in json.loads((out / TRAIN_DIR / "result.json").read_text())["reason"]
    # Both trials were closed as pruned in the generation's study.
    assert [(k, s) for k, _, s in pruner.history] == [
        ("cand_09", "ok"), ("cand_00", "pruned"), ("cand_01", "pruned")]
