"""Running the trajectory scorer (the parent side) and CARD's process feedback.

The scorer (:mod:`rewardgen.worker.score`) runs a reward program over stored, trusted episodes in
a sandboxed worker started by the executor. Everything it reports is hostile input: the returns
must be one finite number per episode, per-step rewards and components are read from a plain,
bounded file and kept only when they have the trusted episode lengths.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.config import ExecutorConfig, RLConfig, SandboxConfig
from rewardgen.executors import Executor
from rewardgen.runs.records import PROCESS_DIR, ScoreJob
from rewardgen.runs.trajectories import (
    OUTPUT_FILE,
    TRAJECTORY_FILE,
    Trajectory,
    read_trajectories,
    stage_inputs,
)
from rewardgen.sandbox.contract import component_name

log = logging.getLogger(__name__)

SCORER = "rewardgen.worker.score:score_trajectories"
_OUTPUT_LIMIT_MB = 64  # the scorer's output file, read back as hostile input


@dataclass(frozen=True)
class Scored:
    """What a scorer reported: returns (validated), per-step rewards and components (or None)."""

    returns: list[float]
    rewards: list[list[float]] | None
    components: list[list[dict[str, float]]] | None


def _finite(values: Any, length: int) -> list[float] | None:
    if not isinstance(values, list) or len(values) != length:
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def spread_steps(length: int, points: int) -> list[int]:
    """At most ``points`` step indices spread evenly over an episode of ``length`` steps."""
    return sorted(set(np.linspace(0, length - 1, min(points, length)).round().astype(int).tolist()))


def default_executor(sandbox: SandboxConfig) -> Executor:
    """One local worker at a time, for callers outside a run (tests, tools)."""
    from rewardgen.executors.local import LocalExecutor

    return LocalExecutor(ExecutorConfig(workers=1), sandbox, RLConfig(), "cpu")


def run_scorer(source: str, out_dir: Path, trajectories: Sequence[Trajectory],
               sandbox: SandboxConfig, task: str, entry: str,
               components: bool = False, executor: Executor | None = None) -> Scored | str:
    """Run the scorer in a sandboxed worker over ``trajectories``; its report, or why not.

    Everything it reports is hostile input: the returns must be one finite number per episode;
    per-step rewards and components are read from a plain, bounded file and kept only when they
    have the trusted episode lengths.
    """
    from rewardgen.runs.untrusted import load_json

    out_dir.mkdir(parents=True, exist_ok=True)
    stage_inputs(out_dir, trajectories, **({"components": True} if components else {}))
    job = ScoreJob(task=task, out_dir=str(out_dir), reward_source=source, entry=entry)
    quick = dataclasses.replace(sandbox, timeout_s=min(float(sandbox.timeout_s), 120.0))
    runner = executor or default_executor(quick)
    [result] = runner.run([job], target=SCORER, sandbox=quick)
    if not result.ok:
        return result.reason
    returns = _finite(list(result.episode_returns), len(trajectories))
    if returns is None:
        return (f"the scorer returned {len(result.episode_returns)} returns for "
                f"{len(trajectories)} episodes")
    rewards: list[list[float]] | None = None
    steps: list[list[dict[str, float]]] | None = None
    try:
        raw = load_json(out_dir / OUTPUT_FILE, _OUTPUT_LIMIT_MB)
        lengths = [t.length for t in trajectories]
        checked = [_finite(r, n) for r, n in zip(raw["rewards"], lengths, strict=True)]
        rewards = None if any(r is None for r in checked) else checked  # type: ignore[assignment]
        if components:
            steps = [
                [{component_name(n, 64): float(v) for n, v in list(step.items())[:64]
                  if isinstance(v, (int, float)) and math.isfinite(v)} for step in ep]
                for ep in raw["components"]
            ]
            if [len(ep) for ep in steps] != lengths:
                steps = None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        log.info("trajectory scorer: unusable output (%s)", e)
    return Scored(returns, rewards, steps)


# ---------------------------------------------------------------- process feedback
def process_feedback_on(cfg: Any) -> bool:
    """Whether a run gives CARD's process feedback: ``feedback.process``, or, when it is null
    (the default), exactly when CARD screens (``loop.screening=trajectory_preference``): CARD's
    code adds it to every passed candidate's feedback (metaworld_exp_one_step.py:411-419)."""
    chosen = cfg.feedback.get("process")
    if chosen is not None:
        return bool(chosen)
    return str(cfg.loop.get("screening", "none")) == "trajectory_preference"


def _series(steps: Sequence[dict[str, float]]) -> dict[str, list[float]]:
    names = sorted({n for step in steps for n in step})[:64]
    return {name: [float(step.get(name, 0.0)) for step in steps] for name in names}


def component_series(source: str, trajectory: Trajectory, out_dir: Path, sandbox: SandboxConfig,
                     task: str, entry: str = "compute_reward",
                     executor: Executor | None = None) -> dict[str, list[float]]:
    """Per-step reward components of ``source`` along one stored (trusted) episode.

    The program runs in a sandboxed worker; what it reports is read back as hostile input
    (plain file, bounded size, finite numbers, at most 64 names) and used only as prompt text.
    Returns an empty dict when the worker fails.
    """
    if trajectory.length == 0:  # made by hand: read its length from its file
        found = {t.episode: t for t in read_trajectories(Path(trajectory.path))}
        trajectory = found.get(trajectory.episode, trajectory)
    scored = run_scorer(source, out_dir, [trajectory], sandbox, task, entry, components=True,
                        executor=executor)
    if isinstance(scored, str) or scored.components is None:
        log.info("process feedback: %s", scored if isinstance(scored, str) else "no components")
        return {}
    return _series(scored.components[0])


def best_trajectory(path: Path) -> Trajectory | None:
    """The stored episode with the highest trusted fitness, None without any."""
    return max(read_trajectories(path), key=lambda t: t.fitness, default=None)


def process_feedback(trajectory: Trajectory, series: dict[str, list[float]],
                     points: int = 8, heading: str | None = None) -> str:
    """CARD's process feedback: each reward component along one stored episode.

    Shows the per-step value of every component at ``points`` evenly spaced steps, with the
    episode's trusted fitness, so the LLM sees *when* a term pays out (early and then flat, only
    at the end, oscillating) rather than only its sum.
    """
    length = max((len(v) for v in series.values()), default=0)
    if not series or length == 0:
        return ""
    steps = spread_steps(length, points)
    where = heading or "Along one evaluation episode of the best policy"
    lines = [f"{where} ({length} steps, task score {trajectory.fitness:.2f}), per-step reward "
             f"components at steps {steps}:"]
    for name, values in series.items():
        shown = ", ".join(f"{float(values[t]):.3f}" if t < len(values) else "-" for t in steps)
        lines.append(f"{name}: [{shown}] (episode sum {float(np.sum(values)):.2f})")
    return "\n".join(lines)


def candidate_process_feedback(source: str, cand_dir: Path, sandbox: SandboxConfig, task: str,
                               entry: str = "compute_reward", points: int = 8,
                               executor: Executor | None = None) -> str:
    """CARD's process feedback for one trained candidate: its components along both its
    highest- and its lowest-return stored episodes (return under its own reward), so the LLM
    sees what the reward pays for in the episode it likes most and in the one it likes least.

    One sandboxed scorer run over the candidate's stored episodes; empty when it has none or
    the scorer fails.
    """
    episodes = read_trajectories(cand_dir / TRAJECTORY_FILE)
    if not episodes or not source:
        return ""
    scored = run_scorer(source, cand_dir / PROCESS_DIR, episodes, sandbox, task, entry,
                        components=True, executor=executor)
    if isinstance(scored, str) or scored.components is None:
        log.info("process feedback: %s", scored if isinstance(scored, str) else "no components")
        return ""
    order = sorted(range(len(episodes)), key=lambda k: scored.returns[k])
    picks = [("highest", order[-1])] + ([("lowest", order[0])] if len(order) > 1 else [])
    parts = [
        process_feedback(episodes[k], _series(scored.components[k]), points,
                         f"Along the stored episode with the {which} return under this reward "
                         f"(return {scored.returns[k]:.2f})")
        for which, k in picks
    ]
    return "\n\n".join(p for p in parts if p)
