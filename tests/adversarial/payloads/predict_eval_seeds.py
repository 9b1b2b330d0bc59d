"""Forges the trusted fitness from weights (issue 22, "Trusted fitness forged from weights").

With unrestricted Python in the training worker it reads its ``job.json`` and every small file
it can reach (its candidate's folder and the folders above it, ``/tmp``, ``/proc``, its
environment), predicts the evaluation episodes of the OLD scheme (the first reset seeded with
``job.seed + 10_000``, the next ones continuing that env's generator), searches for policy
weights that do best on exactly those episodes, and patches the checkpoint writer so that every
checkpoint the training leaves holds those weights. It records the seed it predicted, the
fitness it expects there and every integer it found, for the test to compare with the seeds the
evaluator really used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from rewardgen.runs.records import CandidateJob
from tests.adversarial.escaped import write_observed

OLD_EVAL_SEED_OFFSET = 10_000  # worker/evaluate.py's EVAL_SEED_OFFSET before the fix
TRIALS = 48
MAX_FILES = 2000
MAX_NUMBERS = 20_000
_NUMBER = re.compile(rb"\d{4,10}")


def _numbers_readable(job: CandidateJob) -> tuple[set[int], int]:
    """Every 4- to 10-digit integer in the small files and environment this process can read."""
    found: set[int] = set()
    texts = [os.environb.get(k, b"") for k in os.environb]
    out = Path(job.out_dir)
    roots = [out, out.parent, out.parent.parent, Path("/tmp"), Path.cwd()]
    files = 0
    for root in roots:
        for folder, _, names in os.walk(root, followlinks=False):
            for name in names:
                if files >= MAX_FILES:
                    break
                path = os.path.join(folder, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) > 1 << 20:
                        continue
                    with open(path, "rb") as f:
                        texts.append(f.read())
                    files += 1
                except OSError:
                    continue
    for proc in ("/proc/self/cmdline", "/proc/self/environ", "/proc/1/cmdline"):
        with contextlib.suppress(OSError):
            texts.append(Path(proc).read_bytes())
    for text in texts:
        found.update(int(m) for m in _NUMBER.findall(text))
    return set(sorted(found)[:MAX_NUMBERS]), files


def payload(job: CandidateJob) -> None:
    import numpy as np
    import torch

    import rewardgen.train.checkpoints as checkpoints
    from rewardgen.tasks.spec import load_task
    from rewardgen.worker.evaluate import build_policy_model, deterministic, run_episode

    numbers, files = _numbers_readable(job)
    own = json.loads(Path(sys.argv[1]).read_text())  # the job file it was started with
    predicted = int(own["seed"]) + OLD_EVAL_SEED_OFFSET

    task = load_task(job.task)
    forger = build_policy_model(task, job)
    overrides: dict[str, Any] = {}
    if job.max_episode_steps is not None:
        overrides["max_episode_steps"] = job.max_episode_steps
    env = task.make_env(**overrides)

    def old_scheme() -> list[float]:
        act = deterministic(forger)
        return [
            run_episode(task, env, act, predicted if i == 0 else None)["fitness"]
            for i in range(job.eval_episodes)
        ]

    rng = np.random.default_rng(0)
    best: tuple[float, list[float], dict[str, Any]] | None = None
    with torch.no_grad():
        for _ in range(TRIALS):
            for p in forger.policy.parameters():
                p.copy_(torch.as_tensor(rng.normal(0.0, 1.0, tuple(p.shape)), dtype=p.dtype))
            fits = old_scheme()
            if best is None or float(np.mean(fits)) > best[0]:
                best = (
                    float(np.mean(fits)),
                    fits,
                    {k: v.clone() for k, v in forger.policy.state_dict().items()},
                )
    assert best is not None
    forger.policy.load_state_dict(best[2])
    env.close()

    original = checkpoints.save_weights

    def save_forged(policy: Any, folder: Any, timesteps: int) -> Any:
        return original(forger.policy, folder, timesteps)  # the forged weights, at every point

    checkpoints.save_weights = save_forged  # type: ignore[assignment]
    write_observed(
        job,
        predicted_seed=predicted,
        predicted_fitness=best[1],
        numbers=sorted(numbers),
        files_read=files,
    )
