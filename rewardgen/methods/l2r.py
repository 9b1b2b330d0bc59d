"""Language to Rewards (Yu et al. 2023): describe the motion, code its reward, let MPC move.

Two-stage prompting, as in the paper: the *motion descriptor* fills a structured template (one
line per State quantity that matters: a target or direction, a value and an importance); the
*reward coder* turns that description into a ``compute_reward`` program over the task's State
view. No policy is trained: each candidate is one episode of sampling-based MPC (predictive
sampling over ``mujoco.rollout``, :mod:`rewardgen.worker.mpc`) that maximises the reward, and
the trusted fitness is measured by replaying the chosen actions on the native env
(:mod:`rewardgen.worker.mpc_replay`), with a video of the episode.

The loop asks for the description first (:meth:`L2RMethod.motion_messages`, one answer per
generation, saved as ``gen_XXX/motion.md``) and hands it back (:attr:`L2RMethod.motion`) before
it asks for the reward programs (:meth:`L2RMethod.messages`). Later generations are the paper's
interactive corrections: the description's conversation carries what the MPC episode did and a
person's words (``feedback.mode=interactive|file``); the coder, as L2R's keeps no history
(prompt_thinker_coder.py:160), sees only the new description (``method.coder_history=true``:
also the previous program and the failures). A description that leaves a template slot
unfilled is asked again (:func:`unfilled_slots`), as L2R re-samples while "CHOICE" or "NUM"
remain (conversation.py:31-44), at most ``method.max_reasks`` times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rewardgen.config import L2RMethodConfig, MPCConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.base import TaskPromptInfo
from rewardgen.methods.eureka import EurekaMethod, _clean, best_record
from rewardgen.methods.feedback import failure_summary
from rewardgen.prompts import render
from rewardgen.runs.store import CandidateRecord
from rewardgen.sandbox.contract import clean_text
from rewardgen.tasks.spec import TaskSpec

_DESCRIPTION = re.compile(r"\[start of description\](.*?)\[end of description\]", re.S | re.I)
_NUM_SLOT = re.compile(r"\[NUM\b:?([^\]]*)\]", re.I)
_UNFILLED = (re.compile(r"\[TEXT\]", re.I), re.compile(r"<quantity>|<unit>", re.I),
             re.compile(r"\[[^\[\]\n]*\s\|\s[^\[\]\n]*\]"))  # an option list left unchosen
MOTION_STAGE = "motion"  # the first stage's name (ProposalContext.stage, gen_XXX/motion.md)


def mpc_settings(cfg: Any) -> dict[str, Any]:
    """The planner settings of ``cfg`` (an ``MPCConfig`` node), checked.

    Raises:
        ConfigError: a value out of range (names the key).
    """
    from rewardgen.worker.planner import settings_from

    raw = cfg if isinstance(cfg, dict) else {k: cfg[k] for k in asdict(MPCConfig())}
    return asdict(settings_from(raw))


def check_mpc_task(task: TaskSpec, what: str) -> None:
    """Refuse, in one line, a task whose actions are not MuJoCo controls.

    Raises:
        ConfigError: the planner cannot roll out this task's env.
    """
    from rewardgen.worker.planner import controls_reason

    env = task.make_env()
    try:
        reason = controls_reason(env)
    finally:
        env.close()
    if reason is not None:
        raise ConfigError(f"{what} plans with MPC over MuJoCo controls and task {task.name!r} "
                          f"cannot be planned ({reason}); use a gymnasium MuJoCo task (hopper, "
                          "walker2d, half_cheetah, ant, humanoid, swimmer, pusher, reacher)")


def description_of(text: str, limit: int) -> str:
    """The filled template of a motion answer (the whole answer without the markers), bounded."""
    match = _DESCRIPTION.search(text or "")
    body = (match.group(1) if match else text or "").strip()
    return clean_text(body)[:limit]


def unfilled_slots(text: str) -> list[str]:
    """The template slots a motion answer left unfilled: a ``[NUM: ...]`` without a number, a
    ``[TEXT]``, a ``<quantity>``, an option list such as ``[low | medium | high]``. Empty when
    the template is filled (then the coder may code it).

    Example:
        >>> unfilled_slots("* x should be above [NUM: 1.5] m/s; importance high")
        []
        >>> unfilled_slots("* x should be [close to | above] [NUM: value] m; importance [low | high]")
        ['[NUM: value]', '[close to | above]', '[low | high]']
    """
    body = _DESCRIPTION.search(text or "")
    body_text = body.group(1) if body else text or ""
    found = [m.group(0) for m in _NUM_SLOT.finditer(body_text) if not re.search(r"\d", m.group(1))]
    for pattern in _UNFILLED:
        found += [m.group(0) for m in pattern.finditer(body_text)]
    return found


def mpc_reflection(record: CandidateRecord, fitness_doc: str) -> str:
    """What one MPC episode did: the trusted score, its length and the reward's components."""
    result = record.result
    lines = [f"task score (the trusted fitness: {fitness_doc}): {result.fitness:.3f}"
             if result.fitness is not None else "task score: n/a"]
    if result.success_rate is not None:
        lines.append(f"success: {'yes' if result.success_rate >= 0.5 else 'no'}")
    if result.episode_lengths:
        lines.append(f"episode length: {result.episode_lengths[-1]} steps")
    for name, values in result.component_stats.items():
        if values:
            lines.append(f"{clean_text(name, keep_newlines=False)}: episode sum {values[-1]:.3f}")
    return "\n".join(lines)


class L2RMethod(EurekaMethod):
    """L2R's two prompts (motion description, reward code) and answer parsing.

    Raises:
        ConfigError: a task the planner cannot roll out, or MPC settings out of range.
    """

    name = "l2r"
    entry = "compute_reward"
    reward_kind = "mpc"  # a compute_reward program, turned into motion by MPC (rewardgen/jobs.py)
    stage = MOTION_STAGE  # the loop asks motion_messages() first, saved as gen_XXX/motion.md

    @classmethod
    def reward_options(cls, cfg: Any) -> dict[str, Any]:
        """The MPC worker's settings and whether the trusted replay renders a video."""
        return {"mpc": mpc_settings(cfg.mpc), "video": bool(cfg.get("video", True))}

    def __init__(self, cfg: L2RMethodConfig, task: TaskSpec, info: TaskPromptInfo) -> None:
        check_mpc_task(task, "method=l2r")
        self.cfg = cfg
        self.task = task
        self.info = info
        self.prompt_dir = cfg.prompt_dir
        self.settings = mpc_settings(cfg.mpc)
        self.motion = ""  # this generation's description, set by the loop before messages()
        self.motions: dict[int, str] = {}  # earlier generations' descriptions, for the dialogue

    def _facts(self) -> dict[str, Any]:
        info = self.info
        return {"state_source": info.state_source, "action_shape": info.action_shape,
                "action_low": f"{info.action_low:g}", "action_high": f"{info.action_high:g}",
                "dt": f"{info.dt:g}", "description": self.task.description}

    def motion_messages(self, history: Sequence[Sequence[CandidateRecord]],
                        human: str | None) -> list[dict[str, Any]]:
        """Stage one: the motion descriptor's conversation, with every earlier round's
        description (as its answer) and what its MPC episode did (as the user's reply)."""
        limit = int(self.cfg.max_feedback_chars)
        steps = self.settings["horizon"]
        seconds = self.settings["horizon_s"] if steps is None else steps * self.info.dt
        horizon_s = f"{seconds:.2g}"
        messages = [
            {"role": "system", "content": render(self.prompt_dir, "motion_system",
                                                 horizon_s=horizon_s)},
            {"role": "user", "content": render(self.prompt_dir, "motion_task", **self._facts())},
        ]
        doc = self.task.fitness.doc or "higher is better"
        for g, generation in enumerate(history):
            said = self.motions.get(g)
            if not said:
                continue
            best = best_record([generation])
            reflection = (mpc_reflection(best, doc) if best is not None
                          else "No reward program written from it ran an MPC episode.")
            words = (human or "")[: limit // 2] if g == len(history) - 1 else ""
            messages += [
                {"role": "assistant",
                 "content": f"[start of description]\n{said}\n[end of description]"},
                {"role": "user", "content": render(
                    self.prompt_dir, "motion_feedback", reflection=reflection, human=words,
                    failures=failure_summary(generation, limit_chars=limit // 2))},
            ]
        return _clean(messages)

    def unfilled(self, text: str) -> list[str]:
        """What the loop checks before it keeps a description (:func:`unfilled_slots`)."""
        return unfilled_slots(text)

    @property
    def max_reasks(self) -> int:
        return int(getattr(self.cfg, "max_reasks", 5))

    def set_motion(self, generation: int, text: str) -> None:
        """The descriptor's answer for ``generation`` (what :meth:`messages` codes)."""
        self.motion = description_of(text, int(getattr(self.cfg, "max_description_chars", 4000)))
        self.motions[generation] = self.motion

    def messages(self, history: Sequence[Sequence[CandidateRecord]], human: str | None,
                 eval_freq: int, *, context: str = "iteration",
                 preference: str | None = None, show_score: bool = True) -> list[dict[str, Any]]:
        """Stage two: the reward coder's prompt for the current description alone, as L2R's
        coder keeps no history; with ``method.coder_history`` also the previous program to
        revise (the best of ``context``) and the last generation's failures. ``human`` and
        ``preference`` reach the descriptor (stage one) instead; the coder codes the
        description."""
        if not self.motion:
            raise ConfigError("method=l2r: no motion description for this generation; the "
                              "loop asks for one first (motion_messages)")
        limit = int(self.cfg.max_feedback_chars)
        previous = failures = ""
        if getattr(self.cfg, "coder_history", False):
            last = history[-1] if history else []
            failures = failure_summary(last, limit_chars=limit // 2) if last else ""
            best = best_record(history, context)
            previous = (best.source or "") if best is not None else ""
        system = {"role": "system", "content": render(self.prompt_dir, "system")}
        task = render(self.prompt_dir, "task", motion=self.motion, previous=previous,
                      failures=failures, **self._facts())
        return _clean([system, {"role": "user", "content": task}])
