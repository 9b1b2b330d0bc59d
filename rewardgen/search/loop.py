"""The evolutionary loop. It only orchestrates: prompts come from the method, answers from the
proposer, checks from the sandbox, training from the executor, files from the store."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rewardgen.config import as_sandbox_config
from rewardgen.errors import LLMError, RewardCodeError
from rewardgen.executors import Executor, make_executor
from rewardgen.jobs import MPC_KIND, candidate_job, method_reward
from rewardgen.llm import ProposalContext, Proposer, make_proposer
from rewardgen.methods import Method, TaskPromptInfo, make_method
from rewardgen.methods.eureka import best_record
from rewardgen.reporting.budget import budget_lines, run_budget
from rewardgen.reporting.terminal import RunUI
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text
from rewardgen.runs.outcome import LoopOutcome
from rewardgen.runs.records import CandidateJob, CandidateResult
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.runs.trajectories import Trajectory
from rewardgen.sandbox.validate import check_source
from rewardgen.search.judge import Judge
from rewardgen.search.ranking import (
    check_feedback_config,
    collect_feedback,
    preference_feedback,
    rank_generation,
    run_best,
    samples_per_generation,
)
from rewardgen.search.schedule import make_pruner
from rewardgen.search.scoring import process_feedback_on
from rewardgen.search.screening import Screener
from rewardgen.tasks.spec import TaskSpec, load_task
from rewardgen.train.brax_config import ARRAY_RULES, is_brax

log = logging.getLogger(__name__)


def jobs_source(jobs: Sequence[tuple[int, str, CandidateJob]], index: int) -> str | None:
    """The reward source of candidate ``index`` among a generation's pending jobs."""
    return next((job.reward_source for i, _, job in jobs if i == index), None)


class Loop:
    """Generations × samples of propose → check → train → select → feed back.

    The search only: the CLI runs the final phase afterwards with the same executor
    (:func:`rewardgen.search.final.run_final`), as Eureka's main does.
    """

    def __init__(self, cfg: DictConfig, store: RunStore, ui: RunUI,
                 proposer: Proposer | None = None, executor: Executor | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.ui = ui
        self.task: TaskSpec = load_task(cfg.task)
        self.info = TaskPromptInfo.from_task(self.task)
        if is_brax(dict(cfg.rl)):  # the program is compiled: array-style code only
            self.info = dataclasses.replace(self.info, code_rules=ARRAY_RULES)
        self.method: Method = make_method(cfg.method, self.task, self.info, cfg.llm)
        self.proposer = proposer or make_proposer(cfg.llm, store.root)
        self.executor = executor or make_executor(cfg.executor, cfg.sandbox, cfg.rl, cfg.device)
        check_feedback_config(cfg.feedback)
        if samples_per_generation(cfg) != int(cfg.loop.samples):
            log.info("feedback.preference=%s: %d samples per generation (ICPL's), not "
                     "loop.samples=%d; feedback.preference_samples=null keeps loop.samples",
                     cfg.feedback.preference, samples_per_generation(cfg), int(cfg.loop.samples))
        self.screener = Screener.from_config(cfg, store, self.method.entry, self.executor)
        self.judge = Judge.from_config(cfg, store, self.task, self.executor)  # loop.judge / preference=vlm
        make_pruner(cfg.loop, int(cfg.train.eval_freq))  # a bad loop.schedule fails before any spend

    # ------------------------------------------------------------------ one generation
    def _answers(self, generation: int, history: Sequence[Sequence[CandidateRecord]]) -> list[dict[str, Any]]:
        """This generation's answers: from the run directory when resuming, else from the proposer."""
        saved = self.store.read_responses(generation)
        if saved is not None:
            log.info("generation %d: reusing %d saved answers", generation, len(saved))
            return saved
        context = str(self.cfg.loop.context)
        process = self._process_feedback if process_feedback_on(self.cfg) else None
        extra = collect_feedback(self.cfg.feedback, history,
                                 lambda r: self.store.cand_dir(r.generation, r.index),
                                 process=process, context=context)
        if hasattr(self.method, "motion_messages"):  # two-stage prompting (L2R): describe first
            self._first_stage(generation, history, extra)
        eval_freq = int(self.cfg.train.eval_freq)
        messages = self.method.messages(history, extra, eval_freq,
                                        context=context,
                                        preference=preference_feedback(
                                            self.cfg.feedback, history, eval_freq=eval_freq,
                                            fitness_doc=self.task.fitness.doc or ""),
                                        show_score=not self.cfg.feedback.preference)
        self.store.write_messages(generation, messages)
        flat = [(r.source or "", r.result) for gen in history for r in gen]
        ctx = ProposalContext(task=self.task, generation=generation,
                              seed=int(self.cfg.seed) + generation, history=flat,
                              entry=self.method.entry)
        asked = samples_per_generation(self.cfg)
        self.store.event("llm_request", generation=generation, n=asked,
                         proposer=self.proposer.name)
        completions = self.proposer.propose(messages, asked, ctx)
        if not completions:
            raise LLMError(f"{self.proposer.name} returned no answers for generation {generation}")
        if len(completions) < asked:
            log.warning("generation %d: %s returned %d of %d answers; going on with those",
                        generation, self.proposer.name, len(completions), asked)
            self.store.event("answers_short", generation=generation, asked=asked,
                             got=len(completions))
        answers = [
            {"text": c.text, "model": c.model, "prompt_tokens": c.prompt_tokens,
             "completion_tokens": c.completion_tokens, "cached": c.cached}
            for c in completions
        ]
        self.store.write_responses(generation, answers)
        return answers

    def _first_stage(self, generation: int, history: Sequence[Sequence[CandidateRecord]],
                     extra: str | None) -> None:
        """The method's first answer of a generation (L2R's motion description): read from
        ``gen_XXX/<stage>.md`` when saved (earlier generations' too, for the dialogue), else
        asked for once and saved before the programs are asked for."""
        method: Any = self.method
        stage = str(getattr(method, "stage", "motion"))
        for g in range(generation):
            path = self.store.gen_dir(g) / f"{stage}.md"
            if path.is_file():
                method.set_motion(g, path.read_text())
        path = self.store.gen_dir(generation) / f"{stage}.md"
        if not path.is_file():
            messages = method.motion_messages(history, extra)
            atomic_write_json(self.store.gen_dir(generation) / f"{stage}_messages.json", messages)
            ctx = ProposalContext(task=self.task, generation=generation,
                                  seed=int(self.cfg.seed) + generation, stage=stage)
            self.store.event("llm_request", generation=generation, n=1, stage=stage,
                             proposer=self.proposer.name)
            answers = self.proposer.propose(messages, 1, ctx)
            if not answers:
                raise LLMError(f"{self.proposer.name} returned no {stage} answer for "
                               f"generation {generation}")
            atomic_write_text(path, self._filled(generation, messages, ctx, answers[0].text))
        method.set_motion(generation, path.read_text())

    def _filled(self, generation: int, messages: list[dict[str, Any]], ctx: ProposalContext,
                text: str) -> str:
        """A first-stage answer with its template filled: asked again (a new seed each time)
        while the method finds unfilled slots, at most ``method.max_reasks`` times (L2R asks
        until none is left); the last answer stands, with a warning, when they run out."""
        method: Any = self.method
        check = getattr(method, "unfilled", None)
        for attempt in range(1, int(getattr(method, "max_reasks", 0)) + 1):
            missing = check(text) if check is not None else []
            if not missing:
                return text
            self.store.event("stage_reasked", generation=generation, stage=ctx.stage,
                             attempt=attempt, unfilled=[m[:40] for m in missing[:5]])
            log.info("generation %d: the %s answer left %d slot(s) unfilled (%s); asking again",
                     generation, ctx.stage, len(missing), ", ".join(missing[:3]))
            again = self.proposer.propose(messages, 1, dataclasses.replace(
                ctx, seed=ctx.seed + 1000 * attempt))
            if again:
                text = again[0].text
        if check is not None and check(text):
            log.warning("generation %d: the %s answer still leaves slots unfilled after %d "
                        "re-asks; coding it as it is", generation, ctx.stage,
                        int(getattr(method, "max_reasks", 0)))
        return text

    def _process_feedback(self, record: CandidateRecord) -> str:
        """CARD's process feedback for ``record``: its components along its highest- and
        lowest-return stored episodes (scored in a sandboxed worker)."""

        from rewardgen.search.scoring import candidate_process_feedback

        if not record.source or self.method.entry != "compute_reward":
            return ""
        sandbox = as_sandbox_config(self.cfg.sandbox)
        return candidate_process_feedback(record.source,
                                          self.store.cand_dir(record.generation, record.index),
                                          sandbox, str(self.cfg.task), executor=self.executor)

    def _check(self, text: str) -> tuple[str | None, CandidateResult | None]:
        parsed = self.method.parse(text)
        if parsed.source is None:
            return None, CandidateResult(status="rejected", reason=parsed.reason)
        try:
            check_source(parsed.source, self.method.entry, self.task.state_names)
        except RewardCodeError as e:
            return parsed.source, CandidateResult(status="rejected", reason=f"static check: {e}")
        return parsed.source, None

    def run_generation(self, generation: int, history: Sequence[Sequence[CandidateRecord]]) -> list[CandidateRecord]:
        answers = self._answers(generation, history)
        records: dict[int, CandidateRecord] = {}
        jobs: list[tuple[int, str, CandidateJob]] = []
        trajectories: list[Trajectory] = []
        for i, answer in enumerate(answers):
            done = self.store.finished_candidate(generation, i,
                                                 int(answer.get("completion_tokens", 0)))
            if done is not None:
                records[i] = done
                continue
            self.store.clear_interrupted(self.store.cand_dir(generation, i),
                                         keep=("response.md", "reward.py"))
            tokens = int(answer.get("completion_tokens", 0))
            source, rejected = self._check(answer["text"])
            if source is not None:
                self.store.write_reward(generation, i, source)
            if rejected is not None:
                rejected.llm_tokens = tokens
                self.store.write_result(generation, i, rejected)
                records[i] = CandidateRecord(generation, i, source, rejected, answer["text"])
                continue
            assert source is not None
            if self.screener is not None and not self.screener.per_generation:  # CARD
                trajectories = trajectories or self.screener.trajectories(history)
                screened = self.screener.screen(generation, i, source, trajectories)
                if screened is not None:
                    screened.llm_tokens = tokens
                    self.store.write_result(generation, i, screened)
                    records[i] = CandidateRecord(generation, i, source, screened, answer["text"])
                    continue
            job = candidate_job(self.cfg, str(self.store.cand_dir(generation, i)), source)
            jobs.append((i, answer["text"], job))

        if self.screener is not None and self.screener.per_generation and jobs:  # MPC screen
            screened = self.screener.screen_generation(
                generation, [(i, job.reward_source or "") for i, _, job in jobs])
            for i, text, _ in jobs:
                if i in screened:
                    screened[i].llm_tokens = int(answers[i].get("completion_tokens", 0))
                    self.store.write_result(generation, i, screened[i])
                    records[i] = CandidateRecord(generation, i, jobs_source(jobs, i), screened[i],
                                                 text)
            jobs = [j for j in jobs if j[0] not in screened]
        self.ui.start_generation(generation, int(self.cfg.loop.generations), len(answers))
        for record in records.values():
            self.ui.candidate_done(record)
        self.ui.watch_steps({f"gen_{generation:03d}/cand_{i:02d}": (Path(job.out_dir), job.timesteps)
                             for i, _, job in jobs})

        def on_done(j: int, result: CandidateResult) -> None:
            i, text, job = jobs[j]
            result.llm_tokens = int(answers[i].get("completion_tokens", 0))
            self.store.write_result(generation, i, result)
            record = CandidateRecord(generation, i, job.reward_source, result, text)
            records[i] = record
            self.ui.candidate_done(record)

        # loop.schedule: finished candidates (a resumed generation) keep their place in the rungs
        pruner = make_pruner(self.cfg.loop, int(self.cfg.train.eval_freq), [
            (f"cand_{r.index:02d}", r.result.evaluations, r.result.status)
            for r in records.values() if r.result.evaluations])
        try:
            self.executor.run([job for _, _, job in jobs], on_done, pruner=pruner)
        finally:
            self.ui.end_generation()
        ordered = [records[i] for i in sorted(records)]
        incumbent = best_record(history)
        if self.judge is not None:  # vision fitness (and VLM win rates) before selection
            self.judge.judge_generation(generation, ordered, incumbent)
        # feedback.preference: the ranking's marks steer selection (ICPL); saved, asked once
        ordered = rank_generation(self.cfg.feedback, self.store, generation, ordered, incumbent,
                                  video_steps=int(self.cfg.report.video_steps))
        self.store.event("generation_done", generation=generation,
                         ok=sum(r.result.ok for r in ordered), total=len(ordered))
        return ordered

    # ------------------------------------------------------------------ the whole run
    def run(self) -> LoopOutcome:
        outcome = LoopOutcome(store=self.store)
        label = self.proposer.name if self.proposer.is_llm else f"[bold yellow]{self.proposer.name}[/]"
        self.ui.say(f"rewardgen: task [bold]{self.task.name}[/] · method {self.method.name} · proposer {label}")
        kind, options = method_reward(self.cfg)  # said before anything is spent; the ETA's total
        budget = run_budget(self.cfg, self.task,
                            int(options["mpc"]["episode_steps"]) if kind == MPC_KIND else None)
        self.ui.plan(budget.total_steps, budget_lines(budget), budget.per_candidate)
        best: CandidateRecord | None = None
        phase = "generation 0"
        try:
            for generation in range(int(self.cfg.loop.generations)):
                phase = f"generation {generation}"
                try:
                    records = self.run_generation(generation, outcome.history)
                except LLMError as e:  # after the client's own retries: down for good
                    outcome.stopped, outcome.error = f"generation {generation}: {e}", e
                    log.info("stopping before generation %d: %s", generation, e)  # the CLI says it
                    self.store.event("run_stopped", generation=generation, reason=str(e))
                    break
                outcome.history.append(records)
                new_best = run_best(outcome.history, self.cfg.feedback)
                if new_best is not None and (best is None or new_best.label != best.label):
                    best = new_best
                    self.store.save_best(best)
                self.ui.show(self.ui.generation_table(records))
                if not any(r.result.ok for r in records):
                    log.warning("generation %d: no candidate trained successfully", generation)
            outcome.best = best
            outcome.usage = self.proposer.usage.to_dict()
            if outcome.stopped is not None:
                return outcome  # the final phase waits for a resumed, complete search
            self.store.event("search_done", best=best.label if best else None,
                             fitness=best.result.fitness if best else None, usage=outcome.usage)
        except KeyboardInterrupt:  # Ctrl-C: the workers are being killed (sandbox.worker.STOP)
            self.interrupted(outcome, best, phase)
        return outcome

    def interrupted(self, outcome: LoopOutcome, best: CandidateRecord | None, phase: str) -> None:
        """Keep what finished (the interrupted generation's finished candidates count in the
        summary); interrupted trainings left no result.json, so a resume trains them again."""
        generation = len(outcome.history)
        if phase.startswith("generation") and self.store.gen_dir(generation).is_dir():
            done = [self.store.read_record(generation, int(c.name[5:]))
                    for c in sorted(self.store.gen_dir(generation).glob("cand_[0-9][0-9]"))]
            if any(r is not None for r in done):
                outcome.history.append([r for r in done if r is not None])
        outcome.best, outcome.interrupted = best, True
        outcome.stopped = f"stopped by the user (Ctrl-C) in {phase}"
        outcome.usage = self.proposer.usage.to_dict()
        self.store.event("run_stopped", reason=outcome.stopped)
