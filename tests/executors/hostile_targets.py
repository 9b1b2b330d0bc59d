"""Training-worker targets that act as a reward program with full code execution would.

Each first trains for real (so there are genuine checkpoints), then rewrites everything the
untrusted process can reach: its result, its folder, fake artifacts. The trusted path must not
be moved by any of it.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.worker.train import run_candidate


def forge_everything(job: CandidateJob) -> CandidateResult:
    result = run_candidate(job)
    out = Path(job.out_dir)
    # A pickle where the trusted side writes policy.zip, forged curves and trajectories.
    (out / "policy.zip").write_bytes(pickle.dumps({"forged": True}))
    (out / "trajectories.npz").write_bytes(b"not an npz")
    (out / "checkpoints" / "evil.pkl").write_bytes(pickle.dumps(os.system))
    (out / "checkpoints" / "notes.safetensors.txt").write_text("ignored")
    result.fitness = 4242.0
    result.success_rate = 1.0
    result.evaluations = [{"timesteps": 1, "fitness": 4242.0, "success_rate": 1.0, "length": 1}]
    result.episode_fitness = [4242.0] * 3
    result.reward_sha256 = "0" * 64
    result.component_stats = {f"c{i}": [float("nan"), 1.0] for i in range(60)}
    result.env_steps = 10**15
    return result


def forge_result_file(job: CandidateJob) -> CandidateResult:
    """Write result.json itself, then die before the child can (as an escaped program would)."""
    run_candidate(job)
    out = Path(job.out_dir)
    (out / "result.json").write_text(json.dumps({
        "status": "ok", "fitness": 4242.0, "success_rate": 1.0,
        "component_stats": {f"c{i}": [1.0] for i in range(500)}}))
    os._exit(0)


def corrupt_checkpoints(job: CandidateJob) -> CandidateResult:
    """Leave a pickle named like a checkpoint (and a link to a file outside)."""
    result = run_candidate(job)
    folder = Path(job.out_dir) / "checkpoints"
    names = sorted(folder.iterdir())
    names[0].write_bytes(pickle.dumps({"weights": os.system}))
    names[-1].unlink()
    os.symlink("/etc/passwd", names[-1])
    return result


def fifo_result(job: CandidateJob) -> CandidateResult:
    """A FIFO as result.json and progress.json would hang a naive reader forever."""
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.mkfifo(out / "progress.json")
    os.mkfifo(out / "result.json")
    os._exit(0)
