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

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from rewardgen import __version__
from rewardgen.errors import RunDirError
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text, read_json
from rewardgen.runs.records import CandidateResult

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOCK_FILE = ".lock"
WORKER_MODULE = b"rewardgen.sandbox.child"
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


class RunLock:
    """An exclusive ``flock`` on ``RUN_DIR/.lock``, held for a whole run or resume.

    The kernel drops the lock when its holder dies (even by ``kill -9``), so a stale lock file
    never blocks a resume; a live holder makes :meth:`acquire` fail with one line naming it.
    The file descriptor is close-on-exec, so worker processes never hold the lock.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.path = self.root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunDirError` (never waits: waiting would double-train)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunDirError(
                    f"cannot lock {self.path}: {e}; the file system may not support locks "
                    "(flock); put the run directory on a local disk or NFS v4"
                ) from e
            raise RunDirError(
                f"{self.root} is in use by another rewardgen process ({holder}); wait for it to "
                f"finish or stop it, then continue with `rewardgen-resume {self.root}`"
            ) from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def stale_workers(root: str | Path) -> list[int]:
    """Pids of sandbox workers whose job lies in ``root``: left behind by a killed run.

    Workers run in their own session (so a timeout kills their whole tree), which also means a
    ``kill -9`` of the run's process group does not reach them. Only called under the run's
    lock, when no live run can own a worker writing there.
    """
    root = Path(root).resolve()
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if WORKER_MODULE not in argv:
            continue
        for arg in argv:
            if arg.endswith(b"job.json") and Path(os.fsdecode(arg)).is_relative_to(root):
                found.append(int(entry.name))
                break
    return sorted(found)


def reap_stale_workers(root: str | Path, wait_s: float = 5.0) -> list[int]:
    """Kill the session of every stale worker of ``root`` (it would race the resumed training)."""
    pids = stale_workers(root)
    for pid in pids:
        for kill in (os.killpg, os.kill):  # the worker leads its own process group
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while pids and stale_workers(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pids:
        log.warning("killed %d worker(s) left running by an earlier, killed run of %s: pids %s",
                    len(pids), root, pids)
    return pids


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
        """
        reaped = reap_stale_workers(self.root)
        temps = [p for p in self.root.rglob(".*.tmp") if p.is_file()]
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

    def logged_candidates(self) -> set[tuple[int, int]]:
        """``(generation, index)`` of every candidate with a ``candidate_done`` event."""
        return {(int(e["generation"]), int(e["index"])) for e in self.events()
                if e.get("event") == "candidate_done"}

    def clear_interrupted(self, path: Path, keep: tuple[str, ...] = ()) -> bool:
        """Empty a training folder a killed run left without ``result.json`` (but ``keep``).

        A retrained candidate must not mix its logs, TensorBoard events or progress with the
        interrupted attempt's. Returns whether anything was removed.
        """
        if not path.is_dir() or (path / "result.json").exists():
            return False
        leftovers = sorted(p for p in path.iterdir() if p.name not in keep)
        for p in leftovers:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
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
