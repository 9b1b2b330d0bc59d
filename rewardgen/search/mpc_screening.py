"""MPC as a cheap screen for evolved rewards (``loop.screening=mpc``; no paper has it).

Before any RL, each candidate of a generation that passed the static check drives one short
MPC episode (``loop.screening_mpc``: by default one round of predictive sampling over 8 control
steps of ``mujoco.rollout``, the planner of ``method=l2r`` at its quick settings). The episodes run as ordinary MPC jobs through the executor: the reward program
plans in the sandboxed MPC worker and the fitness comes from the trusted replay of its actions,
so the decision uses trusted numbers only. A candidate whose MPC fitness lies far below the
generation's best (more than ``loop.screening_mpc_margin`` times the best's magnitude) is
``screened_out`` with its MPC score as the reason, and its RL run is saved. A reward that breaks
during the MPC episode is screened out with that reason (it would break in training too); one
whose episode timed out is let through (slowness is not a verdict on the reward).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from rewardgen.errors import ConfigError
from rewardgen.executors import Executor
from rewardgen.runs.records import SCREENING_DIR, CandidateJob, CandidateResult
from rewardgen.runs.store import RunStore

log = logging.getLogger(__name__)


def below_best(fitness: float, best: float, margin: float) -> bool:
    """Whether ``fitness`` lies more than ``margin`` x |best| below ``best``.

    Example:
        >>> below_best(0.4, 1.0, 0.5), below_best(0.6, 1.0, 0.5), below_best(-3.0, -1.0, 0.5)
        (True, False, True)
        >>> below_best(0.0, 0.0, 0.5)  # a best of zero screens nothing out
        False
    """
    return best - fitness > margin * abs(best)


class MPCScreener:
    """The loop's MPC screen: one MPC episode per candidate, judged per generation.

    Args:
        store: the run directory (episodes go to ``<candidate>/screening/``).
        cfg: the run's config (task, seed, sandbox, ``loop.screening_mpc*``).
        executor: the run's executor (the only way to start the workers).
    """

    per_generation = True  # the loop hands it a whole generation (the best is the yardstick)

    def __init__(self, store: RunStore, cfg: Any, executor: Executor) -> None:
        from rewardgen.methods.l2r import check_mpc_task, mpc_settings
        from rewardgen.tasks.spec import load_task

        self.store = store
        self.cfg = cfg
        self.executor = executor
        self.settings = mpc_settings(cfg.loop.screening_mpc)
        self.margin = float(cfg.loop.screening_mpc_margin)
        if self.margin < 0.0:
            raise ConfigError(f"loop.screening_mpc_margin={self.margin} must be at least 0")
        check_mpc_task(load_task(str(cfg.task)), "loop.screening=mpc")
        self.saved = 0

    def job(self, generation: int, index: int, source: str) -> CandidateJob:
        """The MPC episode of one candidate: an ordinary MPC job in its screening folder."""
        from rewardgen.jobs import MPC_KIND, candidate_job

        base = candidate_job(self.cfg, str(self.store.cand_dir(generation, index) / SCREENING_DIR),
                             source, kind="native")
        return dataclasses.replace(base, reward_kind=MPC_KIND,
                                   timesteps=int(self.settings["episode_steps"]),
                                   reward_options={"mpc": self.settings, "video": False})

    def screen_generation(self, generation: int,
                          candidates: Sequence[tuple[int, str]]) -> dict[int, CandidateResult]:
        """``screened_out`` results by candidate index; the rest go on to RL."""
        if not candidates:
            return {}
        jobs = [self.job(generation, i, source) for i, source in candidates]
        results = self.executor.run(jobs)
        scores = {i: float(r.fitness) for (i, _), r in zip(candidates, results, strict=True)
                  if r.selectable and r.fitness is not None}
        best = max(scores.values(), default=None)
        out: dict[int, CandidateResult] = {}
        for (i, _), result in zip(candidates, results, strict=True):
            fitness = scores.get(i)
            self.store.event("screening", generation=generation, candidate=i, test="mpc",
                             mpc_fitness=fitness, mpc_best=best, status=result.status)
            reason = ""
            if result.status in ("failed", "rejected"):
                reason = f"MPC screen: the reward broke during its MPC episode ({result.reason})"
            elif fitness is not None and best is not None and below_best(fitness, best,
                                                                          self.margin):
                reason = (f"MPC screen: fitness {fitness:.3g} of a {self.settings['episode_steps']}"
                          f"-step MPC episode is below the generation's best {best:.3g} by more "
                          f"than loop.screening_mpc_margin={self.margin:g} x |best|")
            if not reason:
                continue
            self.saved += 1
            self.store.event("screened_out", generation=generation, candidate=i, reason=reason,
                             rl_runs_saved=self.saved)
            out[i] = CandidateResult(status="screened_out", reason=reason)
        log.info("MPC screen, generation %d: %d of %d screened out (best MPC fitness %s)",
                 generation, len(out), len(candidates), best)
        return out
