"""The trajectory scorer: an untrusted worker target that runs a reward program over stored
episodes (CARD's screening, process feedback). It reports; it decides nothing: the parent
(:mod:`rewardgen.search.scoring`) validates what it wrote and judges it against the trusted
fitness of the episodes.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardgen.errors import RewardCodeError
from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CandidateResult, ScoreJob
from rewardgen.runs.trajectories import INPUT_FILE, OUTPUT_FILE, load_episode


def score_trajectories(job: ScoreJob) -> CandidateResult:
    """Worker target: the candidate's reward along the stored trajectories. It decides nothing.

    Reads ``<out_dir>/screening_input.json`` and writes ``<out_dir>/screening.json`` (returns,
    per-step rewards, and per-step components when asked); the result carries the returns as
    ``episode_returns``. The parent judges them against the trusted fitness.
    """
    from rewardgen.rewards.wrappers import _checked
    from rewardgen.sandbox.program import load_program

    out_dir = Path(job.out_dir)
    spec = json.loads((out_dir / INPUT_FILE).read_text())
    try:
        fn = load_program(job.reward_source, job.entry).fn
        returns: list[float] = []
        rewards: list[list[float]] = []
        per_step: list[list[dict[str, float]]] = []
        for ref in spec["trajectories"]:
            states, actions = load_episode(ref["path"], int(ref["episode"]))
            values: list[float] = []
            steps: list[dict[str, float]] = []
            for t in range(len(actions)):
                try:
                    value, parts = _checked(fn(states[t + 1], actions[t], states[t]))
                except RewardCodeError:
                    raise
                except Exception as e:  # noqa: BLE001 - generated code may raise anything
                    raise RewardCodeError(f"compute_reward raised {type(e).__name__}: {e}") from e
                values.append(value)
                if spec.get("components"):
                    steps.append(parts)
            returns.append(float(sum(values)))
            rewards.append(values)
            per_step.append(steps)
    except RewardCodeError as e:
        return CandidateResult(status="failed", reason=f"on stored trajectories: {e}")
    atomic_write_json(out_dir / OUTPUT_FILE, {"returns": returns, "rewards": rewards,
                                              "components": per_step})
    return CandidateResult(status="ok", episode_returns=returns)
