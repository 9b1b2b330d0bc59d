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
        assert not (out / TRAIN_DIR / "result.json").exists()  # killed; the parent writes none there
    # Both trials were closed as pruned in the generation's study.
    assert [(k, s) for k, _, s in pruner.history] == [
        ("cand_09", "ok"), ("cand_00", "pruned"), ("cand_01", "pruned")]


def test_a_following_evaluator_draws_fresh_seeds_for_each_point_after_reading_it(
    tmp_path: Path,
) -> None:
    """loop.schedule's evaluator runs while the trainer lives, so no seed can be drawn in
    advance: each point's are drawn once its checkpoint is in memory, recorded in the curve the
    parent reads and in the result, and held by no file under train/."""
    from rewardgen.config import SandboxConfig
    from rewardgen.executors.pipeline import EVAL_DIR, train_and_measure
    from rewardgen.runs.records import CURVE_FILE, CandidateJob
    from tests.train.helpers import TINY_PPO

    job = CandidateJob(task="inverted_pendulum", out_dir=str(tmp_path / "cand"), reward_kind="native",
                       rl=TINY_PPO, timesteps=256, eval_freq=128, eval_episodes=2,
                       max_episode_steps=50, tensorboard=False, seed=5)
    asked: list[list[int]] = []
    result = train_and_measure(job, SandboxConfig(timeout_s=300),
                               prune=lambda curve: asked.append(curve[-1]["seeds"]) or None)
    assert result.ok, result.reason
    out = Path(job.out_dir)
    seeds = [e["seeds"] for e in result.evaluations]
    assert len(seeds) >= 2 and asked == seeds  # the pruner saw each point with its seeds
    assert all(len(set(s)) == 2 for s in seeds)
    assert len({x for s in seeds for x in s}) == 2 * len(seeds)  # fresh at every point
    assert json.loads((out / EVAL_DIR / CURVE_FILE).read_text()) == result.evaluations
    eval_job = json.loads((out / EVAL_DIR / "job.json").read_text())
    assert eval_job["follow"] is True and eval_job["eval_seeds"] is None
    drawn = {str(x).encode() for s in seeds for x in s}
    for path in (p for p in (out / TRAIN_DIR).rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(d in data for d in drawn), path.name
