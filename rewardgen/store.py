"""The run directory: manifest, append-only events, atomic artifacts, and what resume replays.

Layout (see DESIGN.md)::

    RUN_DIR/ .hydra/ manifest.json events.jsonl summary.json
      gen_000/ messages.json  cand_00/ response.md reward.py result.json tb/ policy.zip
      best/    reward.py result.json policy.zip
      final/   <variant>_seed<k>/ result.json ...
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rewardgen import __version__
from rewardgen.errors import RunDirError
from rewardgen.io import atomic_write_json, atomic_write_text, read_json
from rewardgen.results import CandidateResult

FORMAT_VERSION = 1
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

    @property
    def label(self) -> str:
        return f"gen_{self.generation:03d}/cand_{self.index:02d}"


class RunStore:
    """All reads and writes of one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # ----------------------------------------------------------------- create / open
    @classmethod
    def create(cls, root: str | Path, manifest: dict[str, Any]) -> RunStore:
        """Start a new run directory (or reopen one created by the same version)."""
        store = cls(root)
        store.root.mkdir(parents=True, exist_ok=True)
        if store.manifest_path.exists():
            store.check_version()
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
        if not store.manifest_path.is_file():
            raise RunDirError(f"{store.root} is not a rewardgen run directory (no manifest.json)")
        store.check_version()
        return store

    def check_version(self) -> None:
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

    def write_result(self, generation: int, index: int, result: CandidateResult) -> None:
        atomic_write_json(self.cand_dir(generation, index) / "result.json", result.to_dict())
        self.event("candidate_done", generation=generation, index=index, status=result.status,
                   fitness=result.fitness, reason=result.reason)

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
