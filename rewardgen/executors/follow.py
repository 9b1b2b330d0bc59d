"""Trusted evaluation that follows a training while it runs, so a schedule can stop it early.

For ``loop.schedule=halving|median`` a candidate's two workers run at the same time: the
untrusted trainer writes a checkpoint at every evaluation point, and the trusted evaluator
(``evaluate_candidate`` with ``job.follow``) scores each one as it appears and rewrites the curve
so far (:data:`~rewardgen.runs.records.CURVE_FILE`) in its own folder, which the sandbox cannot
write. This thread reads that curve, asks ``prune`` after every new point and, when it says stop,
cancels the trainer (its process tree is killed) and tells the evaluator where the candidate
ends (:data:`~rewardgen.runs.records.END_FILE`). Nothing the trainer reports reaches the
decision: the curve is the evaluator's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewardgen.runs.atomic import atomic_write_json
from rewardgen.runs.records import CURVE_FILE, END_FILE, CandidateResult

log = logging.getLogger(__name__)

Prune = Callable[[list[dict[str, Any]]], "str | None"]
"""Given the trusted curve so far, the reason to stop the candidate now, or None to go on."""
POLL_S = 0.2


class _Worker(threading.Thread):
    def __init__(self, name: str, fn: Callable[[], CandidateResult]) -> None:
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.result: CandidateResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller's thread
            self.error = e


def read_curve(eval_dir: Path) -> list[dict[str, Any]]:
    """The evaluator's curve so far (written atomically by the trusted evaluator)."""
    try:
        curve = json.loads((eval_dir / CURVE_FILE).read_text())
    except (OSError, ValueError):
        return []
    return curve if isinstance(curve, list) else []


def train_following(
    train: Callable[[threading.Event], CandidateResult],
    evaluate: Callable[[], CandidateResult],
    eval_dir: Path,
    prune: Prune,
) -> tuple[CandidateResult, CandidateResult, str | None]:
    """Run ``train(cancel)`` and ``evaluate()`` together; ask ``prune`` at each trusted point.

    A decision that comes after the training ended is not applied (nothing would be saved);
    the points are still reported, since other candidates are compared against them.

    Returns:
        The trainer's raw result, the evaluator's result, and the prune reason (None: not pruned).
    """
    eval_dir.mkdir(parents=True, exist_ok=True)
    for name in (CURVE_FILE, END_FILE):
        (eval_dir / name).unlink(missing_ok=True)
    cancel = threading.Event()
    trainer = _Worker("rewardgen-train", lambda: train(cancel))
    evaluator = _Worker("rewardgen-evaluate", evaluate)
    trainer.start()
    evaluator.start()
    seen, pruned, ended = 0, None, False
    asking = True
    try:
        while True:
            alive = evaluator.is_alive()  # before reading: the last read sees the whole curve
            curve = read_curve(eval_dir)
            while asking and pruned is None and seen < len(curve):
                seen += 1
                try:
                    reason = prune(curve[:seen])
                except Exception as e:  # noqa: BLE001 - the schedule failing never fails a candidate
                    log.warning("the schedule failed (%s: %s); training goes on", type(e).__name__, e)
                    asking, reason = False, None
                if reason and trainer.is_alive():
                    pruned = reason
                    cancel.set()
                    atomic_write_json(eval_dir / END_FILE, {"until": int(curve[seen - 1]["timesteps"])})
                    ended = True
            if not ended and not trainer.is_alive():
                atomic_write_json(eval_dir / END_FILE, {"until": None})
                ended = True
            if not alive:
                break
            evaluator.join(POLL_S)
    finally:
        if not ended:  # an error here: let both workers end
            cancel.set()
            atomic_write_json(eval_dir / END_FILE, {"until": None})
        trainer.join()
        evaluator.join()
    for worker in (trainer, evaluator):
        if worker.error is not None:
            raise worker.error
    assert trainer.result is not None and evaluator.result is not None
    if pruned:
        log.info("candidate %s: pruned (%s)", eval_dir.parent.name, pruned)
    return trainer.result, evaluator.result, pruned
