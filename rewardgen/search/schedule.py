"""Spend RL compute where it pays: stop a generation's trailing candidates early (``loop.schedule``).

``full`` trains every candidate for its whole budget. ``halving`` (asynchronous successive
halving) and ``median`` hand each candidate's *trusted* curve, point by point, to an Optuna pruner
(:class:`optuna.pruners.SuccessiveHalvingPruner`, :class:`optuna.pruners.MedianPruner`) on one
in-memory study per generation: a candidate is a trial, the value it reports at an evaluation
point is its selection score so far (``loop.selection`` over the curve up to that point), the step
is the checkpoint's env steps. The executor's pipeline (:mod:`rewardgen.executors.follow`) asks
:meth:`GenerationPruner.report` after every trusted point and stops the training when it answers
with a reason; the candidate ends ``pruned``.

The same object replays a schedule over a recorded run's curves (:mod:`.schedule_replay`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rewardgen.errors import ConfigError
from rewardgen.train.stats import SELECTIONS, aggregate_fitness

log = logging.getLogger(__name__)

SCHEDULES = ("full", "halving", "median")
PRUNER_KEYS = ("min_steps", "reduction_factor", "min_early_stopping_rate", "startup_candidates",
               "warmup_steps")
Curve = Sequence[Mapping[str, Any]]


def pruner_params(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """``loop.pruner`` as a plain dict with every key (defaults of :class:`PrunerConfig`)."""
    from rewardgen.config import PrunerConfig

    defaults = PrunerConfig()
    given = dict(raw or {})
    unknown = sorted(set(given) - set(PRUNER_KEYS))
    if unknown:
        raise ConfigError(f"loop.pruner has unknown keys {unknown}; valid: {', '.join(PRUNER_KEYS)}")
    return {key: given.get(key, getattr(defaults, key)) for key in PRUNER_KEYS}


def check_schedule(schedule: str, params: Mapping[str, Any], eval_freq: int) -> None:
    """One clear line for a schedule that cannot work, before anything is spent."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"loop.schedule={schedule!r} is not one of {', '.join(SCHEDULES)}")
    if schedule == "full":
        return
    if int(eval_freq) <= 0:
        raise ConfigError(f"loop.schedule={schedule} needs evaluation points during training; "
                          f"set train.eval_freq > 0 (now {eval_freq})")
    if int(params["reduction_factor"]) < 2:
        raise ConfigError(f"loop.pruner.reduction_factor={params['reduction_factor']} must be >= 2")
    if params["min_steps"] is not None and int(params["min_steps"]) < 1:
        raise ConfigError(f"loop.pruner.min_steps={params['min_steps']} must be >= 1 (or null)")
    if int(params["min_early_stopping_rate"]) < 0 or int(params["startup_candidates"]) < 0 \
            or int(params["warmup_steps"]) < 0:
        raise ConfigError("loop.pruner.min_early_stopping_rate, startup_candidates and "
                          "warmup_steps must be >= 0")


class GenerationPruner:
    """One generation's candidates as trials of an in-memory Optuna study; thread-safe.

    Args:
        schedule: ``halving`` or ``median``.
        params: ``loop.pruner`` (see :func:`pruner_params`).
        eval_freq: the first rung's budget when ``min_steps`` is null.
        selection, last_k: how a curve so far becomes the reported value (``loop.selection``).
        history: finished candidates to replay first, ``(key, curve, status)``: a resumed
            generation's pruned and trained candidates keep their place in the rungs.
    """

    def __init__(self, schedule: str, params: Mapping[str, Any], eval_freq: int,
                 selection: str = "max", last_k: int = 3,
                 history: Sequence[tuple[str, Curve, str]] = ()) -> None:
        params = pruner_params(params)
        check_schedule(schedule, params, eval_freq)
        if schedule == "full":
            raise ConfigError("loop.schedule=full prunes nothing; build no pruner for it")
        if selection not in SELECTIONS:
            raise ConfigError(f"loop.selection={selection!r} is not one of {SELECTIONS}")
        self.schedule, self.params, self.eval_freq = schedule, params, int(eval_freq)
        self.selection, self.last_k = selection, int(last_k)
        self.min_steps = int(params["min_steps"] or eval_freq)
        self.history: list[tuple[str, list[dict[str, Any]], str]] = []
        self._lock = threading.Lock()
        self._study = self._new_study()
        self._trials: dict[str, Any] = {}
        self._steps: dict[str, set[int]] = {}
        for key, curve, status in history:
            for n in range(1, len(curve) + 1):
                self.report(key, curve[:n])
            self.finish(key, status, curve)

    def spec(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this pruner elsewhere (a Ray actor)."""
        return {"schedule": self.schedule, "params": dict(self.params), "eval_freq": self.eval_freq,
                "selection": self.selection, "last_k": self.last_k, "history": list(self.history)}

    def _new_study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        p = self.params
        if self.schedule == "halving":
            pruner: Any = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=self.min_steps, reduction_factor=int(p["reduction_factor"]),
                min_early_stopping_rate=int(p["min_early_stopping_rate"]))
        else:
            pruner = optuna.pruners.MedianPruner(
                n_startup_trials=int(p["startup_candidates"]),
                n_warmup_steps=int(p["warmup_steps"]), interval_steps=1)
        return optuna.create_study(direction="maximize", pruner=pruner,
                                   storage=optuna.storages.InMemoryStorage())

    def rung(self, steps: int) -> int:
        """The successive-halving rung a candidate at ``steps`` env steps has reached."""
        factor, rate = int(self.params["reduction_factor"]), int(self.params["min_early_stopping_rate"])
        k = 0
        while self.min_steps * factor ** (rate + k + 1) <= steps:
            k += 1
        return k

    def value(self, curve: Curve) -> float:
        """The candidate's selection score over its curve so far (what selection would use)."""
        fitness, _ = aggregate_fitness([dict(e) for e in curve], self.selection, self.last_k)
        return float("nan") if fitness is None else float(fitness)

    def report(self, key: str, curve: Curve) -> str | None:
        """Report the last point of ``curve``; the reason to stop the candidate, or None."""
        if not curve:
            return None
        steps, value = int(curve[-1]["timesteps"]), self.value(curve)
        with self._lock:
            trial = self._trials.get(key)
            if trial is None:
                trial = self._trials[key] = self._study.ask()
            if steps in self._steps.setdefault(key, set()):
                return None  # reported already
            self._steps[key].add(steps)
            trial.report(value, steps)
            if not trial.should_prune():
                return None
        if self.schedule == "halving":
            return (f"stopped early by successive halving at rung {self.rung(steps)} ({steps} env "
                    f"steps): fitness {value:.4g} was not in the top "
                    f"1/{self.params['reduction_factor']} of the candidates there")
        return (f"stopped early by the median rule at {steps} env steps: fitness {value:.4g} was "
                f"below the median of the finished candidates there")

    def finish(self, key: str, status: str, curve: Curve) -> None:
        """Close the candidate's trial: ``pruned``, trained (``ok``) or anything else (failed)."""
        import optuna

        with self._lock:
            self.history.append((key, [dict(e) for e in curve], status))
            trial = self._trials.get(key)
            if trial is None:
                return
            value = self.value(curve) if curve else float("nan")
            if status == "pruned":
                self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif status == "ok" and math.isfinite(value):
                self._study.tell(trial, value)
            else:
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)


def make_pruner(loop: Any, eval_freq: int, history: Sequence[tuple[str, Curve, str]] = ()
                ) -> GenerationPruner | None:
    """The generation's pruner from ``loop`` (None for ``loop.schedule=full``)."""
    schedule = str(loop.get("schedule", "full"))
    params = pruner_params(loop.get("pruner"))
    check_schedule(schedule, params, eval_freq)
    if schedule == "full":
        return None
    return GenerationPruner(schedule, params, eval_freq, str(loop.get("selection", "max")),
                            int(loop.get("last_k", 3)), history)
