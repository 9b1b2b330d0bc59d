"""Vision judges for the evolutionary loop: CLIP scores or VLM rankings as a candidate's fitness.

Some goals ("kneel", "lotus pose") are easier to see than to write as a State expression. With
``loop.judge=clip`` a trained candidate's policy is rolled out ``loop.judge_episodes`` times
with the task camera and the mean projected CLIP similarity over the frames (VLM-RM) becomes its
fitness. With ``loop.judge=vlm`` the generation's candidates (and the best one so far) are
compared pairwise by a vision chat model on the last frame(s) of their rollouts; win rates give
the fitness. ``feedback.preference=vlm`` uses the same tournament for ICPL's ranking.

Rendering and CLIP run in an isolated worker per candidate (``rewardgen.search.judge:judge_candidate``,
no network, writing ``cand_XX/judge/``): it loads ``policy.zip`` and never runs the generated
reward. The VLM questions are asked from the loop's process, which already talks to the LLM.

VLM fitness is a ladder: win rate in a tournament that includes the incumbent, shifted so the
incumbent keeps its score. A candidate that beats the field (incumbent included) therefore
scores above every earlier one, so ``best_record`` over all generations follows the VLM's choice.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from rewardgen.config import LLMConfig, as_plain, as_sandbox_config
from rewardgen.errors import ConfigError
from rewardgen.executors import Executor
from rewardgen.executors.pipeline import JUDGE_TARGET
from rewardgen.jobs import judge_job
from rewardgen.runs.atomic import atomic_write_json, read_json
from rewardgen.runs.records import JUDGE_DIR, CandidateResult, JudgeJob
from rewardgen.runs.seeds import check_seeds, draw_seeds
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

JUDGES = ("none", "clip", "vlm")
FRAMES_FILE = "frames.npz"
TOURNAMENT_FILE = "judge_vlm.json"  # gen_XXX/judge_vlm.json: every comparison and win rate
JUDGE_MEMORY_MB = 8192  # headless EGL maps ~2 GB beyond torch (as in search/vision.py)



# ---------------------------------------------------------------- the worker side
def _rollout(task: TaskSpec, policy: Any, seed: int, max_steps: int, size: tuple[int, int],
             frame_skip: int) -> tuple[list[np.ndarray], float]:
    """One deterministic episode's frames (every ``frame_skip``-th, the last always) and fitness."""
    from rewardgen.reporting.video import _frame
    from rewardgen.worker.evaluate import finite_action, predict

    env = task.make_env(render_mode="rgb_array", width=size[0], height=size[1])
    try:
        obs, _ = env.reset(seed=seed)
        builder = task.state_builder(env)
        tracker = task.fitness_tracker(env)
        tracker.reset(builder.build())
        frames = [_frame(env)]
        for step in range(1, max_steps + 1):
            action = finite_action(predict(policy, obs), step)
            obs, _, terminated, truncated, info = env.step(action)
            tracker.update(builder.build(), info)
            last = terminated or truncated or step == max_steps
            if step % frame_skip == 0 or last:
                frames.append(_frame(env))
            if terminated or truncated:
                break
    finally:
        env.close()
    return frames, float(tracker.value)


def representative(frames: list[np.ndarray], count: int) -> np.ndarray:
    """``count`` frames evenly spaced over an episode, ending with its last (the pose it reached)."""
    last = len(frames) - 1
    picks = [last] if count == 1 else np.linspace(last, 0, num=count, endpoint=False)[::-1]
    return np.stack([frames[int(round(i))] for i in picks])


def judge_candidate(job: JudgeJob) -> CandidateResult:
    """Worker target: roll out the saved policy, keep frames for the VLM, score them with CLIP.

    Rollout ``k`` resets with ``job.episode_seeds[k]`` (secret, drawn by the parent after the
    generation trained; without them, drawn here); ``judge.json`` records them.
    """
    from rewardgen.reporting.video import load_policy, preload_torch_compiler
    from rewardgen.worker.evaluate import NonFiniteError

    preload_torch_compiler()  # before EGL loads Mesa's LLVM (see video.py)
    task = load_task(job.task)
    policy = load_policy(job.policy, job.algo, "cpu")
    out = Path(job.out_dir)
    seeds = (check_seeds(job.episode_seeds, job.episodes) if job.episode_seeds
             else draw_seeds(job.episodes))
    episodes, fitness, shown = [], [], []
    for k, seed in enumerate(seeds):
        try:
            frames, value = _rollout(task, policy, seed, job.max_steps, (job.width, job.height),
                                     job.frame_skip)
        except NonFiniteError as e:
            return CandidateResult(status="failed", reason=f"rollout {k + 1}: {e}")
        episodes.append(frames)
        fitness.append(value)
        shown.append(representative(frames, job.frames))
    np.savez_compressed(out / FRAMES_FILE, frames=np.stack(shown))  # (episodes, frames, H, W, 3)
    report: dict[str, Any] = {"judge": job.judge, "episodes": len(episodes), "seeds": seeds,
                              "frames": [len(f) for f in episodes], "task_fitness": fitness}
    score = None
    if job.judge == "clip":
        from rewardgen.rewards.clip import ClipReward, judge_score

        reward = ClipReward.from_config(job.clip, task.vision, job.device)
        scores = [judge_score(reward, np.stack(frames)) for frames in episodes]
        score = float(np.mean(scores))
        report.update(score=score, episode_scores=scores)
        if not math.isfinite(score):
            return CandidateResult(status="failed", reason=f"the CLIP score is {score}")
    atomic_write_json(out / "judge.json", report)
    return CandidateResult(status="ok", fitness=score, episode_fitness=fitness,
                           env_steps=sum(len(f) for f in episodes), evaluations=[{"seeds": seeds}])


# ---------------------------------------------------------------- the loop side
def judge_entry(result: CandidateResult, kind: str) -> dict[str, Any] | None:
    """The evaluation entry a judge of ``kind`` (``clip``, ``vlm``) added to ``result``."""
    return next((e for e in result.evaluations if e.get("judge") == kind), None)


def vlm_win_rate(result: CandidateResult) -> float | None:
    """The candidate's win rate in its generation's VLM tournament (None if it had none)."""
    entry = judge_entry(result, "vlm")
    return None if entry is None else float(entry["win_rate"])


def _question(cfg: DictConfig, task: TaskSpec) -> str:
    question = cfg.method.preference.question if "preference" in cfg.method else None
    return str(question or task.vision.get("question") or task.description)


class Judge:
    """Scores a generation's trained candidates by vision (see the module docstring).

    Args:
        cfg: the run's config (``loop.judge*``, ``method.clip``, ``method.render``, ``llm``).
        store: the run directory.
        task: the task (camera, vision prompts and question).
    """

    def __init__(self, cfg: DictConfig, store: RunStore, task: TaskSpec,
                 executor: Executor | None = None) -> None:
        self.cfg, self.store, self.task = cfg, store, task
        self.executor = executor
        self.kind = str(cfg.loop.judge)
        self.rank_by_vlm = self.kind == "vlm" or cfg.feedback.preference == "vlm"
        self._labeller: Any = None
        check_judge_config(cfg, task)

    @classmethod
    def from_config(cls, cfg: DictConfig, store: RunStore, task: TaskSpec,
                    executor: Executor | None = None) -> Judge | None:
        """A judge when ``loop.judge`` is clip/vlm or ``feedback.preference=vlm``, else None.

        ``executor`` starts the judge workers (the run's own; None: one from the config).
        """
        if str(cfg.loop.get("judge", "none")) == "none" and cfg.feedback.preference != "vlm":
            return None  # (a config from before loop.judge existed has none)
        return cls(cfg, store, task, executor)

    # ------------------------------------------------------------ rendering (and CLIP) per candidate
    def _render(self, records: list[CandidateRecord]) -> dict[str, CandidateResult]:
        """Run the judge worker for each record through the executor; results by label."""
        from rewardgen.executors import make_executor

        sandbox = as_sandbox_config(self.cfg.sandbox)
        sandbox = dataclasses.replace(sandbox, network=False,
                                      memory_mb=max(sandbox.memory_mb, JUDGE_MEMORY_MB))
        executor = self.executor or make_executor(self.cfg.executor, self.cfg.sandbox,
                                                  self.cfg.rl, str(self.cfg.device))
        # trusted: the worker renders the evaluator's policy.zip and never loads reward code
        from rewardgen.train.sb3 import resolve_device

        device = resolve_device(str(self.cfg.device))
        # one secret set for the call (a generation, after all of it trained): every candidate
        # is rolled out from the same initial states, which none of their trainers could know
        seeds = draw_seeds(int(self.cfg.loop.judge_episodes))
        jobs = [judge_job(self.cfg, self.task, self.store.cand_dir(r.generation, r.index),
                          self.kind, device, seeds) for r in records]
        results = executor.run(jobs, target=JUDGE_TARGET,
                               sandbox=sandbox)
        return {r.label: res for r, res in zip(records, results, strict=True)}

    def _save(self, record: CandidateRecord, **data: Any) -> None:
        atomic_write_json(self.store.cand_dir(record.generation, record.index) / "result.json",
                          record.result.to_dict())
        self.store.event("candidate_judged", generation=record.generation, index=record.index,
                         judge=data.pop("judge"), fitness=record.result.fitness, **data)

    def _fail(self, record: CandidateRecord, reason: str) -> None:
        result = record.result
        result.status, result.reason = "failed", f"vision judge: {reason}"
        result.fitness = None
        self._save(record, judge=self.kind, status="failed")

    # ------------------------------------------------------------ one generation
    def judge_generation(self, generation: int, records: list[CandidateRecord],
                         incumbent: CandidateRecord | None) -> None:
        """Set the fitness (and VLM win rates) of ``records``' trained candidates, in place.

        ``incumbent`` is the best candidate before this generation; the VLM tournament includes
        it so scores stay comparable across generations. Already judged candidates (a resumed
        run) are not judged again.
        """
        trained = [r for r in records if r.result.ok]
        if self.kind == "clip":
            todo = [r for r in trained if judge_entry(r.result, "clip") is None]
            results = self._render(todo) if todo else {}
            for record in todo:
                res = results[record.label]
                if not res.selectable:
                    self._fail(record, res.reason or f"no finite CLIP score ({res.fitness})")
                    continue
                result = record.result
                result.evaluations.append({
                    "judge": "clip", "timesteps": result.env_steps, "fitness": res.fitness,
                    "task_fitness": result.fitness, "episodes": int(self.cfg.loop.judge_episodes),
                    "episode_fitness": res.episode_fitness,
                    "seeds": (res.evaluations or [{}])[0].get("seeds")})
                result.fitness = res.fitness
                self._save(record, judge="clip")
        if self.rank_by_vlm:
            self._tournament(generation, [r for r in records if r.result.ok], incumbent)

    def _frames(self, record: CandidateRecord) -> Path:
        return self.store.cand_dir(record.generation, record.index) / JUDGE_DIR / FRAMES_FILE

    def _tournament(self, generation: int, trained: list[CandidateRecord],
                    incumbent: CandidateRecord | None) -> None:
        if not trained or all(judge_entry(r.result, "vlm") for r in trained):
            return
        field = list(trained)
        if incumbent is not None and incumbent.label not in {r.label for r in trained}:
            field.insert(0, incumbent)  # first, so a tie in the ranking keeps it on top
        missing = [r for r in field if not self._frames(r).is_file()]
        rendered = self._render(missing) if missing else {}
        for record in missing:
            res = rendered[record.label]
            if not res.ok and record is not incumbent:
                self._fail(record, res.reason or "no frames")
        field = [r for r in field if self._frames(r).is_file() and (r is incumbent or r.result.ok)]
        scores, comparisons = self.rank(field)
        w_inc = scores.get(incumbent.label, 0.5) if incumbent is not None else 0.0
        f_inc = float(incumbent.result.fitness or 0.0) if incumbent is not None else 0.0
        for record in field:
            if record is incumbent:
                continue
            result = record.result
            for old in [e for e in result.evaluations if e.get("judge") == "vlm"]:
                result.evaluations.remove(old)
            entry: dict[str, Any] = {"judge": "vlm", "timesteps": result.env_steps,
                                     "win_rate": scores[record.label]}
            if self.kind == "vlm":
                clip = judge_entry(result, "clip")
                entry["task_fitness"] = clip["task_fitness"] if clip else result.fitness
                ladder = scores[record.label] - w_inc + f_inc
                entry["fitness"] = result.fitness = ladder
            result.evaluations.append(entry)
            self._save(record, judge="vlm", win_rate=scores[record.label])
        path = self.store.gen_dir(generation) / TOURNAMENT_FILE
        atomic_write_json(path, {
            "question": self._vlm().question, "incumbent": incumbent.label if incumbent else None,
            "win_rates": scores, "comparisons": comparisons,
            "ranking": sorted(scores, key=lambda k: -scores[k])})  # stable: ties keep order

    def _vlm(self) -> Any:
        if self._labeller is None:
            from rewardgen.llm.client import resolve_endpoint
            from rewardgen.llm.vision import VLMLabeller

            llm = LLMConfig(**as_plain(self.cfg.llm))
            base_url, api_key = resolve_endpoint(llm)
            llm = dataclasses.replace(llm, provider="openai", base_url=base_url, api_key=api_key)
            self._labeller = VLMLabeller(llm, self.task, _question(self.cfg, self.task),
                                         seed=int(self.cfg.seed))
        return self._labeller

    def rank(self, field: list[CandidateRecord]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Win rates from every pair's frames (a tie or "no preference" is half a win each)."""
        frames = {r.label: np.load(self._frames(r))["frames"] for r in field}
        wins = {r.label: 0.0 for r in field}
        played = {r.label: 0 for r in field}
        comparisons = []
        for a, b in itertools.combinations([r.label for r in field], 2):
            fa, fb = frames[a], frames[b]
            for e, f in itertools.product(range(min(len(fa), len(fb))),
                                          range(min(fa.shape[1], fb.shape[1]))):
                label = self._vlm().label(fa[e, f], fb[e, f])
                winner = None if label is None else (a if label == 0 else b)
                if winner is None:
                    wins[a] += 0.5
                    wins[b] += 0.5
                else:
                    wins[winner] += 1.0
                played[a] += 1
                played[b] += 1
                comparisons.append({"first": a, "second": b, "episode": e, "frame": f,
                                    "label": label, "winner": winner})
        scores = {k: wins[k] / played[k] if played[k] else 0.5 for k in wins}
        log.info("VLM judge: %s", ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        return scores, comparisons


def check_judge_config(cfg: DictConfig, task: TaskSpec) -> None:
    """Fail at start on an unusable judge: unknown kind, no CLIP prompts, no VLM endpoint.

    Raises:
        ConfigError: naming the setting to change.
    """
    kind = str(cfg.loop.judge)
    if kind not in JUDGES:
        raise ConfigError(f"loop.judge={kind!r} is not one of {JUDGES}")
    if int(cfg.loop.judge_episodes) < 1 or int(cfg.loop.judge_frames) < 1:
        raise ConfigError(
            f"loop.judge_episodes={cfg.loop.judge_episodes} and loop.judge_frames="
            f"{cfg.loop.judge_frames} must both be at least 1")
    if kind != "none" and not cfg.train.save_policy:
        raise ConfigError(f"loop.judge={kind} rolls out each candidate's policy.zip; set "
                          "train.save_policy=true")
    if kind == "clip" and not (cfg.method.clip.goal_prompts or task.vision.get("goal_prompts")):
        raise ConfigError(
            f"loop.judge=clip: task {task.name!r} has no vision.goal_prompts; set "
            "method.clip.goal_prompts='[a humanoid robot kneeling]' or pick a task with them")
    if kind == "clip":  # the weights must be on this machine (nothing is downloaded)
        from rewardgen.rewards.clip import clip_weights

        clip = cfg.method.clip
        clip_weights(str(clip.model), clip.pretrained, clip.get("cache_dir"))
    if kind == "vlm" or cfg.feedback.preference == "vlm":
        from rewardgen.llm.client import resolve_endpoint

        base_url, api_key = resolve_endpoint(LLMConfig(**as_plain(cfg.llm)))
        if not base_url and not api_key:
            raise ConfigError(
                "the VLM judge (loop.judge=vlm or feedback.preference=vlm) needs a vision chat "
                "model: set llm.base_url (or OPENAI_BASE_URL) or OPENAI_API_KEY, and llm.model "
                "to a model that accepts images")


def read_tournament(store: RunStore, generation: int) -> dict[str, Any] | None:
    """A generation's VLM tournament (``gen_XXX/judge_vlm.json``), None when it had none."""
    path = store.gen_dir(generation) / TOURNAMENT_FILE
    return read_json(path) if path.is_file() else None


__all__ = [
    "JUDGES",
    "Judge",
    "check_judge_config",
    "judge_candidate",
    "judge_entry",
    "read_tournament",
    "representative",
    "vlm_win_rate",
]
