"""The run directory: manifest, append-only events, atomic artifacts, and what resume replays.

Layout (see DESIGN.md)::

    RUN_DIR/ .hydra/ manifest.json events.jsonl summary.json
      gen_000/ messages.json  ranking.json (feedback.preference)
               cand_00/ response.md reward.py result.json tb/ policy.zip
      best/    reward.py result.json policy.zip
      final/   <variant>_seed<k>/ result.json ...

Crash safety (docs/crash-safety.md): a run holds an exclusive ``flock`` on ``RUN_DIR/.lock`` for
as long as it writes, so a second run or a resume of a live run fails at once instead of training
the same candidates twice; whoever takes the lock first cleans up what a killed owner left behind
(its orphaned workers, half-written temporary files, interrupted trainings).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rewardgen import __version__
from rewardgen.errors import ConfigError, RunDirError
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text, read_json
from rewardgen.runs.lock import reap_stale_workers
from rewardgen.runs.records import WORKER_DIRS, CandidateResult
from rewardgen.runs.untrusted import UnsafeFileError, remove_tree, walk

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
RECOVERY_DEPTH = 6  # final/<variant>_seed<k>/evaluation/ is 3 deep
_IDENTITY = ("task", "method", "seed")  # a run directory never changes these
_PACKAGES = ("rewardgen", "gymnasium", "mujoco", "stable-baselines3", "torch", "numpy", "openai",
             "hydra-core", "open_clip_torch")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class CandidateRecord:
    """A finished candidate as the loop and the next prompt see it."""

    generation: int
    index: int
    source: str | None
    result: CandidateResult
    response: str = ""
    preference_rank: int | None = None  # place in its generation's ranking (feedback.preference)

    @property
    def label(self) -> str:
        return f"gen_{self.generation:03d}/cand_{self.index:02d}"

    @property
    def preferred(self) -> bool:
        """Ranked first in its generation (ICPL): the reward the search improves and keeps."""
        return self.preference_rank == 0


class RunStore:
    """All reads and writes of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # ----------------------------------------------------------------- create / open
    @classmethod
    def create(cls, root: str | Path, manifest: dict[str, Any]) -> RunStore:
        """Start a new run directory, or reopen one of the same run (same version and identity).

        Raises:
            RunDirError: the directory holds another format version, or another task, method
                or seed.
        """
        store = cls(root)
        store.root.mkdir(parents=True, exist_ok=True)
        if store.manifest_path.exists():
            store.check_version()
            store.check_identity(manifest)
            return store
        full = {
            "format_version": FORMAT_VERSION,
            "rewardgen_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "packages": package_versions(),
            **manifest,
        }
        atomic_write_json(store.manifest_path, full)
        store.event("run_started", **{k: manifest[k] for k in ("task", "method") if k in manifest})
        return store

    @classmethod
    def open(cls, root: str | Path) -> RunStore:
        """Open an existing run directory for resume, export or report."""
        store = cls(root)
        if not store.root.exists():
            raise RunDirError(f"run directory {store.root} does not exist; give the path of a "
                              "run (runs/<task>/<date>_<time>_<id> by default)")
        if not store.manifest_path.is_file():
            raise RunDirError(f"{store.root} is not a rewardgen run directory (no manifest.json)")
        store.check_version()
        return store

    def check_version(self) -> None:
        """Refuse a directory from another run-directory format, in one line naming both."""
        try:
            manifest = read_json(self.manifest_path)
        except (OSError, json.JSONDecodeError) as e:
            raise RunDirError(f"{self.manifest_path} is unreadable: {e}") from e
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise RunDirError(
                f"{self.root} was written by rewardgen {manifest.get('rewardgen_version', '?')} "
                f"(run-directory format {version}); this is rewardgen {__version__} (format "
                f"{FORMAT_VERSION}). Open it with that version or start a new run."
            )

    def check_identity(self, manifest: dict[str, Any]) -> None:
        """Refuse to continue a run as another one (a reused ``hydra.run.dir``, a bad override)."""
        saved = self.manifest
        diff = [k for k in _IDENTITY if k in saved and k in manifest and saved[k] != manifest[k]]
        if diff:
            theirs = " ".join(f"{k}={saved[k]}" for k in diff)
            ours = " ".join(f"{k}={manifest[k]}" for k in diff)
            raise RunDirError(
                f"{self.root} holds a run with {theirs}, not {ours}; choose another "
                f"hydra.run.dir, or continue that run with `rewardgen-resume {self.root}`"
            )

    def recover(self) -> dict[str, Any]:
        """Clean up after a killed owner; call with the run's lock held, before anything runs.

        Kills its orphaned workers (which would keep writing into candidate folders) and removes
        half-written temporary files of atomic writes. Interrupted trainings are cleared where
        they are re-queued (:meth:`clear_interrupted`).

        The walk for temporary files never enters a worker's folder (:data:`WORKER_DIRS`:
        the parent writes nothing there, and a worker may have left a folder chain thousands
        deep or a hundred thousand files), follows no link and goes at most
        :data:`RECOVERY_DEPTH` folders down.
        """
        reaped = reap_stale_workers(self.root)
        found = walk(self.root, max_depth=RECOVERY_DEPTH, skip=WORKER_DIRS)
        for line in found.skipped:
            log.warning("recovery: not searched for temporary files: %s", line)
        temps = [self.root / p for p in found.files
                 if p.name.startswith(".") and p.name.endswith(".tmp")]
        for path in temps:
            path.unlink(missing_ok=True)
        if reaped or temps:
            self.event("recovered", killed_workers=reaped,
                       temp_files=[str(p.relative_to(self.root)) for p in temps])
        return {"killed_workers": reaped, "temp_files": len(temps)}

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- events
    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def event(self, kind: str, **data: Any) -> None:
        """Append one event (a single write of one line, flushed and fsynced)."""
        line = json.dumps({"t": round(time.time(), 3), "event": kind, **data}, default=str) + "\n"
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """All events; a torn last line (crash mid-write) is ignored."""
        if not self.events_path.exists():
            return []
        out = []
        for line in self.events_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    # ----------------------------------------------------------------- paths
    def gen_dir(self, generation: int) -> Path:
        return self.root / f"gen_{generation:03d}"

    def cand_dir(self, generation: int, index: int) -> Path:
        return self.gen_dir(generation) / f"cand_{index:02d}"

    @property
    def best_dir(self) -> Path:
        return self.root / "best"

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    # ----------------------------------------------------------------- artifacts
    def write_messages(self, generation: int, messages: list[dict[str, Any]]) -> None:
        atomic_write_json(self.gen_dir(generation) / "messages.json", messages)

    def write_responses(self, generation: int, responses: list[dict[str, Any]]) -> None:
        """Keep every raw answer before anything is done with it (resume never pays twice)."""
        for i, response in enumerate(responses):
            atomic_write_text(self.cand_dir(generation, i) / "response.md", response["text"])
        atomic_write_json(self.gen_dir(generation) / "responses.json", responses)
        self.event("responses_saved", generation=generation, count=len(responses))

    def read_responses(self, generation: int) -> list[dict[str, Any]] | None:
        path = self.gen_dir(generation) / "responses.json"
        return read_json(path) if path.is_file() else None  # type: ignore[no-any-return]

    def write_reward(self, generation: int, index: int, source: str) -> Path:
        return atomic_write_text(self.cand_dir(generation, index) / "reward.py", source)

    def write_result(self, generation: int, index: int, result: CandidateResult,
                     recovered: bool = False) -> None:
        """Save a finished candidate, then log it (``recovered``: found on disk without its event)."""
        atomic_write_json(self.cand_dir(generation, index) / "result.json", result.to_dict())
        extra = {"recovered": True} if recovered else {}
        self.event("candidate_done", generation=generation, index=index, status=result.status,
                   fitness=result.fitness, reason=result.reason, **extra)

    def finished_candidate(self, generation: int, index: int,
                           llm_tokens: int = 0) -> CandidateRecord | None:
        """A candidate that finished (None: it has no result.json, train it).

        A run killed between the worker's write and the ``candidate_done`` event left a result
        without its event: it is logged now (``recovered``), so resume never trains it again.
        """
        done = self.read_record(generation, index)
        if done is not None and (generation, index) not in self.logged_candidates():
            done.result.llm_tokens = llm_tokens
            self.write_result(generation, index, done.result, recovered=True)
        return done

    def finished_final(self, variant: str, seed: int) -> CandidateResult | None:
        """A final-phase training that finished, logged as for :meth:`finished_candidate`."""
        path = self.final_dir / f"{variant}_seed{seed}" / "result.json"
        if not path.is_file():
            return None
        done = CandidateResult.from_dict(read_json(path))
        logged = {(e.get("variant"), e.get("seed")) for e in self.events()
                  if e.get("event") == "final_done"}
        if (variant, seed) not in logged:
            self.event("final_done", variant=variant, seed=seed, status=done.status,
                       fitness=done.fitness, recovered=True)
        return done

    def logged_candidates(self) -> set[tuple[int, int]]:
        """``(generation, index)`` of every candidate with a ``candidate_done`` event."""
        return {(int(e["generation"]), int(e["index"])) for e in self.events()
                if e.get("event") == "candidate_done"}

    def clear_interrupted(self, path: Path, keep: tuple[str, ...] = ()) -> bool:
        """Empty a training folder a killed run left without ``result.json`` (but ``keep``).

        A retrained candidate must not mix its logs, TensorBoard events or progress with the
        interrupted attempt's. A worker's folder is removed whatever it holds (any depth, no
        link followed); what cannot be removed is logged. Returns whether anything was removed.
        """
        if not path.is_dir() or (path / "result.json").exists():
            return False
        leftovers = sorted(p for p in path.iterdir() if p.name not in keep)
        for p in leftovers:
            try:
                remove_tree(p)
            except UnsafeFileError as e:
                log.warning("%s: %s", path.relative_to(self.root), e)
        if leftovers:
            self.event("training_interrupted", path=str(path.relative_to(self.root)),
                       removed=[p.name for p in leftovers])
        return bool(leftovers)

    def read_record(self, generation: int, index: int) -> CandidateRecord | None:
        """A finished candidate, or None when it has no result yet."""
        cand = self.cand_dir(generation, index)
        if not (cand / "result.json").is_file():
            return None
        source_path = cand / "reward.py"
        response_path = cand / "response.md"
        return CandidateRecord(
            generation=generation,
            index=index,
            source=source_path.read_text() if source_path.is_file() else None,
            result=CandidateResult.from_dict(read_json(cand / "result.json")),
            response=response_path.read_text() if response_path.is_file() else "",
        )

    def write_ranking(self, generation: int, source: str, labels: list[str]) -> None:
        """Keep a generation's preference ranking (best first), so a resume never asks again."""
        atomic_write_json(self.gen_dir(generation) / "ranking.json",
                          {"source": source, "ranking": labels})
        self.event("ranked", generation=generation, source=source, ranking=labels)

    def read_ranking(self, generation: int, source: str) -> list[str] | None:
        """The saved ranking of ``generation`` by ``source`` (None: not ranked that way yet)."""
        path = self.gen_dir(generation) / "ranking.json"
        saved = read_json(path) if path.is_file() else None
        if not isinstance(saved, dict) or saved.get("source") != source:
            return None
        return [str(label) for label in saved.get("ranking", [])]

    def save_best(self, record: CandidateRecord) -> None:
        """Copy the best candidate's reward, result and policy to best/ (atomically per file)."""
        src = self.cand_dir(record.generation, record.index)
        best = self.best_dir
        best.mkdir(parents=True, exist_ok=True)
        for name in ("reward.py", "result.json", "policy.zip"):
            if (src / name).is_file():
                tmp = best / f".{name}.tmp"
                shutil.copyfile(src / name, tmp)
                os.replace(tmp, best / name)
        atomic_write_json(best / "origin.json", {"candidate": record.label,
                                                 "fitness": record.result.fitness})
        self.event("best_updated", candidate=record.label, fitness=record.result.fitness)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.root / "summary.json", summary)


CONTEXTS = ("iteration", "all_time")


def _trained(records: Sequence[CandidateRecord]) -> list[CandidateRecord]:
    return [r for r in records if r.result.selectable]  # ok, with a finite fitness


def best_record(history: Sequence[Sequence[CandidateRecord]],
                context: str = "all_time") -> CandidateRecord | None:
    """The candidate the search builds on: the next prompt's reward, or the run's best.

    With preference rankings in ``history`` (``feedback.preference``), the preferred candidate
    of the latest ranked generation: a ranking compares one generation's rollouts (plus the
    incumbent for the VLM tournament), so the newest choice stands, whatever the fitness says.
    Otherwise by trusted fitness: ``all_time`` the best over all generations (the run's best, as
    Eureka keeps ``max_success_overall``); ``iteration`` the best of the latest generation that
    trained a candidate (Eureka's next prompt; a generation where every sample failed keeps the
    earlier one, as the official code repeats the iteration from the same messages).

    Example:
        >>> from rewardgen.runs.records import WORKER_DIRS, CandidateResult
from rewardgen.runs.untrusted import UnsafeFileError, remove_tree, walk
        >>> def rec(g, f): return CandidateRecord(g, 0, "", CandidateResult("ok", fitness=f))
        >>> history = [[rec(0, 5.0)], [rec(1, 3.0)]]
        >>> best_record(history, "all_time").label, best_record(history, "iteration").label
        ('gen_000/cand_00', 'gen_001/cand_00')

    Raises:
        ConfigError: an unknown ``context``.
    """
    if context not in CONTEXTS:
        raise ConfigError(f"loop.context={context!r} is not one of {', '.join(CONTEXTS)}")
    preferred = [r for gen in history for r in gen if r.preferred]
    if preferred:
        return preferred[-1]
    if context == "iteration":
        for generation in reversed(history):
            trained = _trained(generation)
            if trained:
                return max(trained, key=lambda r: r.result.fitness or 0.0)
        return None
    return max(_trained([r for gen in history for r in gen]),
               key=lambda r: r.result.fitness or 0.0, default=None)


