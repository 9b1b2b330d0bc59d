"""Rollout videos: a trained policy (or random actions) recorded headless to mp4 and GIF.

A number in a table says little about *how* a policy moves; a 10-second clip of each
generation's best candidate shows at a glance whether the hopper hops or dives. Frames come from
``task.make_env(render_mode="rgb_array")``, so the task's camera and frame size apply, and the
episode is scored by the task's trusted fitness while it is recorded.

MuJoCo chooses its OpenGL backend when it is first imported: run with ``MUJOCO_GL=egl`` (the
console scripts set it) on a machine without a display.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError, RunDirError
from rewardgen.runs.atomic import read_json
from rewardgen.runs.store import CandidateRecord, RunStore
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

os.environ.setdefault("MUJOCO_GL", "egl")
FORMATS = ("mp4", "gif")
VIDEO_STEM = "video"  # RUN_DIR/gen_000/cand_00/video.mp4 and video.gif
GIF_MAX_FPS = 25.0  # GIF frame delays are in 1/100 s; browsers slow anything faster down


@dataclass
class Rollout:
    """One recorded episode.

    Attributes:
        paths: written files by format (``mp4``, ``gif``).
        frames: number of frames recorded.
        fitness: the task's trusted fitness of the recorded (possibly cut) episode.
        ended: whether the episode terminated or was truncated by the env, not by ``max_steps``.
        fps: playback rate of the mp4 (the env's own rate).
    """

    paths: dict[str, Path] = field(default_factory=dict)
    frames: int = 0
    fitness: float = 0.0
    ended: bool = False
    fps: float = 0.0


def load_policy(path: str | Path, algo: str = "ppo", device: str = "cpu") -> Any:
    """Load an SB3 policy zip written by a candidate's training.

    Args:
        path: the ``policy.zip``.
        algo: the algorithm it was trained with (``ppo`` or ``sac``; see the run's ``rl.algo``).
        device: torch device for inference; ``cpu`` is plenty for one rollout.
    """
    from rewardgen.train.sb3 import ALGORITHMS

    if algo.lower() not in ALGORITHMS:
        raise ConfigError(f"algo {algo!r} is not one of {sorted(ALGORITHMS)}")
    if not Path(path).is_file():
        raise RunDirError(f"no policy at {path}; train with train.save_policy=true")
    return ALGORITHMS[algo.lower()].load(str(path), device=device)


def preload_torch_compiler() -> None:
    """Import torch's compiler stack (which loads triton and its LLVM) before the first frame.

    Rendering with EGL loads Mesa, which links its own LLVM; importing triton *after* that
    segfaults the process (torch imports it lazily, e.g. when SB3 builds its first optimizer).
    The other order is safe, so a process that renders and then loads a policy must do this.
    """
    try:
        import torch._dynamo  # noqa: F401
    except Exception as e:  # noqa: BLE001 - without torch's compiler there is nothing to clash
        log.debug("torch._dynamo not importable (%s); nothing to preload", e)


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ConfigError(
            f"env.render() gave {type(frame).__name__}, not an RGB frame; the env must be made "
            "with render_mode='rgb_array' and MUJOCO_GL=egl (or osmesa) set before MuJoCo loads"
        )
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


def write_frames(frames: list[np.ndarray], stem: Path, fps: float,
                 formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write ``frames`` to ``stem.mp4`` (H.264, browser-playable) and/or ``stem.gif``."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ConfigError(f"video formats {sorted(unknown)} are not among {FORMATS}")
    if not frames:
        raise ConfigError(f"no frames to write to {stem}; record at least one step")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    if "mp4" in formats:
        path = stem.with_suffix(".mp4")
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        # yuv420p needs even sizes; macro_block_size=2 pads odd ones instead of resizing.
        imageio.mimwrite(tmp, frames, format="FFMPEG", fps=fps, codec="libx264",  # type: ignore[arg-type]
                         pixelformat="yuv420p", macro_block_size=2, quality=7)
        os.replace(tmp, path)
        out["mp4"] = path
    if "gif" in formats:
        step = max(1, round(fps / GIF_MAX_FPS))
        path = stem.with_suffix(".gif")
        tmp = path.with_name(f".{path.name}.tmp.gif")
        iio.imwrite(tmp, np.stack(frames[::step]), extension=".gif",
                    duration=round(1000.0 * step / fps), loop=0)
        os.replace(tmp, path)
        out["gif"] = path
    return out


def record_rollout(task: TaskSpec, stem: str | Path, policy: Any = None, *, max_steps: int = 300,
                   seed: int = 0, deterministic: bool = True,
                   formats: tuple[str, ...] = FORMATS) -> Rollout:
    """Roll out ``policy`` (random actions when None) for one episode and record it.

    Args:
        task: the task (its camera and frame size are used).
        stem: output path without suffix; ``.mp4`` and ``.gif`` are added.
        policy: anything with SB3's ``predict(obs, deterministic=...)``, or None.
        max_steps: cap on recorded steps (a long episode makes a large GIF).
        seed: reset seed (and action-space seed for random actions).
        deterministic: use the policy's mean action.
        formats: which files to write.
    """
    if max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    preload_torch_compiler()
    env = task.make_env(render_mode="rgb_array")
    try:
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        builder = task.state_builder(env)
        tracker = task.fitness_tracker(env)
        tracker.reset(builder.build())
        frames = [_frame(env)]
        ended = False
        for _ in range(max_steps):
            if policy is None:
                action = env.action_space.sample()
            else:
                action, _ = policy.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, info = env.step(action)
            tracker.update(builder.build(), info)
            frames.append(_frame(env))
            if terminated or truncated:
                ended = True
                break
        fps = float(env.metadata.get("render_fps") or 1.0 / float(env.unwrapped.dt))  # type: ignore[attr-defined]
    finally:
        env.close()
    paths = write_frames(frames, Path(stem), fps, formats)
    log.info("recorded %d frames of %s to %s (fitness %.3f)", len(frames), task.name,
             ", ".join(str(p) for p in paths.values()), tracker.value)
    return Rollout(paths=paths, frames=len(frames), fitness=tracker.value, ended=ended, fps=fps)


# ---------------------------------------------------------------- run directories
def _algo_of(cand_dir: Path, store: RunStore) -> str:
    job = cand_dir / "job.json"
    rl = read_json(job).get("rl", {}) if job.is_file() else store.manifest["config"].get("rl", {})
    return str(rl.get("algo", "ppo"))


def record_candidate(run_dir: str | Path, generation: int, index: int, *, max_steps: int = 300,
                     seed: int = 0, overwrite: bool = False) -> Rollout:
    """Record ``gen_XXX/cand_YY/video.{mp4,gif}`` from that candidate's saved policy."""
    store = RunStore.open(run_dir)
    cand = store.cand_dir(generation, index)
    stem = cand / VIDEO_STEM
    if not overwrite and all(stem.with_suffix(f".{f}").is_file() for f in FORMATS):
        return Rollout(paths={f: stem.with_suffix(f".{f}") for f in FORMATS})
    if not (cand / "policy.zip").is_file():
        raise RunDirError(
            f"{cand} has no policy.zip (only candidates with status ok and train.save_policy=true "
            "have one); pick another candidate"
        )
    task = load_task(str(store.manifest["task"]))
    policy = load_policy(cand / "policy.zip", _algo_of(cand, store))
    return record_rollout(task, stem, policy, max_steps=max_steps, seed=seed)


def candidate_video(store: RunStore, record: CandidateRecord, *, max_steps: int = 300) -> str:
    """Where a person can watch ``record``'s policy: its video, recorded now from the trusted
    ``policy.zip`` when missing; a line saying why there is none otherwise (never raises: a
    person ranking a generation should see the rest)."""
    cand = store.cand_dir(record.generation, record.index)
    video = (cand / VIDEO_STEM).with_suffix(".mp4")
    if video.is_file():
        return str(video)
    if not (cand / "policy.zip").is_file():
        return f"none ({cand} has no policy.zip: set train.save_policy=true)"
    try:
        rollout = record_candidate(store.root, record.generation, record.index,
                                   max_steps=max_steps)
    except Exception as e:  # noqa: BLE001 - rendering needs a GL context this machine may lack
        log.warning("%s: no video (%s: %s)", record.label, type(e).__name__, e)
        return f"none (recording failed: {type(e).__name__}; policy at {cand / 'policy.zip'})"
    path = rollout.paths.get("mp4") or next(iter(rollout.paths.values()), None)
    return str(path) if path is not None else f"none (no frames; policy at {cand / 'policy.zip'})"


def generation_bests(store: RunStore) -> list[CandidateRecord]:
    """The best trained candidate of each generation (generations without one are skipped)."""
    out = []
    for gen_dir in sorted(store.root.glob("gen_[0-9][0-9][0-9]")):
        generation = int(gen_dir.name[4:])
        records = [store.read_record(generation, int(c.name[5:]))
                   for c in sorted(gen_dir.glob("cand_[0-9][0-9]"))]
        trained = [r for r in records if r is not None and r.result.ok
                   and r.result.fitness is not None]
        if trained:
            out.append(max(trained, key=lambda r: float(r.result.fitness or 0.0)))
    return out


def record_generation_bests(run_dir: str | Path, *, max_steps: int = 300, seed: int = 0,
                            overwrite: bool = False) -> dict[str, Rollout]:
    """Record the best candidate of every generation that has a saved policy.

    Returns the rollouts by candidate label (``gen_000/cand_01``); a candidate without a policy
    is skipped with a log line, since a report should still be made from the rest.
    """
    store = RunStore.open(run_dir)
    out: dict[str, Rollout] = {}
    for record in generation_bests(store):
        cand = store.cand_dir(record.generation, record.index)
        stem = cand / VIDEO_STEM
        if not overwrite and all(stem.with_suffix(f".{f}").is_file() for f in FORMATS):
            # recorded already (an MPC candidate's replay records its own, without a policy)
            out[record.label] = Rollout(paths={f: stem.with_suffix(f".{f}") for f in FORMATS})
            continue
        if not (cand / "policy.zip").is_file():
            log.info("%s has no policy.zip; no video", record.label)
            continue
        out[record.label] = record_candidate(store.root, record.generation, record.index,
                                             max_steps=max_steps, seed=seed, overwrite=overwrite)
    return out
