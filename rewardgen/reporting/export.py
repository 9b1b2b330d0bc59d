"""``rewardgen-export``: one candidate as a self-contained package that needs no rewardgen.

A reward found by a search is only useful if someone else can train on it. The export is a plain
Python package (gymnasium, numpy; stable-baselines3 for the policy)::

    OUT/ pyproject.toml  README.md
      <package>/ __init__.py   make_env(), RewardProgramWrapper, load_policy(), ENV_ID (registered)
                 reward.py     the reward program (numpy and math imported in a header)
                 state.py      the State view builder (rewardgen.tasks.state, vendored)
                 sources.py    its source grammar (rewardgen.tasks.sources, vendored)
                 fitness.py    the trusted fitness (rewardgen.tasks.fitness, vendored)
                 task.json     env id and kwargs, State fields, fitness, camera
                 policy.zip    the SB3 policy trained on this reward
                 provenance.json

See docs/artifacts.md for every provenance field.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import logging
import re
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rewardgen import __version__
from rewardgen.errors import ConfigError, RewardGenError, RunDirError
from rewardgen.reporting.export_files import progress_adapter, pyproject, readme, template
from rewardgen.runs.atomic import atomic_write_json, atomic_write_text, read_json
from rewardgen.runs.store import CandidateRecord, RunStore, package_versions
from rewardgen.tasks import fitness as fitness_module
from rewardgen.tasks import sources as sources_module
from rewardgen.tasks import state as state_module
from rewardgen.tasks.spec import TaskSpec, load_task

log = logging.getLogger(__name__)

PROVENANCE_FORMAT = 1
_CANDIDATE = re.compile(r"^(?:gen_)?(\d+)/(?:cand_)?(\d+)$")
_VENDORED_IMPORTS = {"__future__", "keyword", "math", "re", "collections", "dataclasses",
                     "typing", "numpy"}
_ERRORS_IMPORT = "from rewardgen.errors import TaskError\n"
# Methods whose best is no reward program (no reward.py to package): what their reward is instead
_NOT_A_PROGRAM = {
    "motif": "the task reward plus an intrinsic reward from a Bradley-Terry model of preferences "
             "between episode captions (motif/reward_model.safetensors)",
    "clip": "CLIP's similarity of rendered frames to a goal prompt",
    "vlm_preference": "a reward model fit to a VLM's preferences between rendered frames",
}
# rewardgen modules that are vendored side by side: an import of one becomes a relative import
_VENDORED_SIBLINGS = {"rewardgen.tasks.sources": "sources"}
_ERRORS_STANDIN = (
    "class TaskError(ValueError):\n"
    '    """A State source or fitness expression does not fit the model."""\n'
)
_REWARD_HEADER = '''"""Reward program {label} of a rewardgen run (task {task}); sha256 of the original
source below: {sha}."""

import math  # noqa: F401  (rewardgen gives reward programs math, np and numpy)

import numpy  # noqa: F401
import numpy as np  # noqa: F401

'''


# ---------------------------------------------------------------- choosing the candidate
def parse_candidate(spec: str) -> tuple[int, int] | None:
    """``"best"`` -> None; ``"1/0"`` or ``"gen_001/cand_00"`` -> (1, 0)."""
    if spec == "best":
        return None
    match = _CANDIDATE.match(spec.strip())
    if not match:
        raise ConfigError(
            f"--candidate {spec!r} is not 'best', 'GEN/CAND' (e.g. 1/0) or gen_001/cand_00"
        )
    return int(match.group(1)), int(match.group(2))


def run_method(store: RunStore) -> str:
    """The run's method (``eureka`` for a manifest that names none, as before methods)."""
    config_method = ((store.manifest.get("config") or {}).get("method") or {}).get("name")
    return str(store.manifest.get("method") or config_method or "eureka")


def refuse_method(store: RunStore) -> None:
    """Refuse, in one true line, a run whose reward is not a program this package can hold.

    Raises:
        RunDirError: a method=motif, clip or vlm_preference run.
    """
    method = run_method(store)
    if method in _NOT_A_PROGRAM:
        policy = store.best_dir / "policy.zip"
        raise RunDirError(f"{store.root} is a method={method} run, whose reward is "
                          f"{_NOT_A_PROGRAM[method]}, not a reward program: rewardgen-export "
                          f"packages reward programs only; its trained policy is {policy}")


def pick_record(store: RunStore, spec: str = "best") -> CandidateRecord:
    """The candidate to export; it must have trained (status ok) and saved its policy."""
    refuse_method(store)
    where = parse_candidate(spec)
    if where is None:
        origin = store.best_dir / "origin.json"
        if not origin.is_file():
            raise RunDirError(
                f"{store.root} has no best candidate yet (no best/origin.json); name one with "
                "--candidate GEN/CAND"
            )
        where = parse_candidate(str(read_json(origin)["candidate"]))
        assert where is not None
    record = store.read_record(*where)
    label = f"gen_{where[0]:03d}/cand_{where[1]:02d}"
    if record is None:
        raise RunDirError(f"{store.root / label} has no result.json; pick a finished candidate")
    cand = store.cand_dir(record.generation, record.index)
    if not record.result.ok or record.source is None:
        raise RunDirError(
            f"{label} has status {record.result.status} ({record.result.reason}); only a trained "
            "candidate (status ok) can be exported"
        )
    if not (cand / "policy.zip").is_file():
        method = (store.manifest.get("config") or {}).get("method") or {}
        if method.get("name") == "l2r":  # an MPC episode: no policy to package
            raise RunDirError(f"{label} is an MPC candidate (method=l2r) and has no policy to "
                              f"export; its reward is {cand / 'reward.py'} and its episode "
                              f"{cand / 'video.mp4'}")
        raise RunDirError(f"{cand} has no policy.zip; the run needs train.save_policy=true")
    return record


# ---------------------------------------------------------------- provenance
def host_free_url(url: str | None) -> str | None:
    """``https://llm.example.com:8443/v1`` -> ``https://<host>/v1`` (no host, port or userinfo).

    The provenance says which kind of endpoint answered without naming a private server.
    """
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme or 'https'}://<host>{parts.path}"


def prompt_sha256(store: RunStore, generation: int) -> str | None:
    """SHA-256 of the generation's prompt (its messages, as canonical JSON)."""
    path = store.gen_dir(generation) / "messages.json"
    if not path.is_file():
        return None
    canonical = json.dumps(read_json(path), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _answer_model(store: RunStore, record: CandidateRecord) -> str | None:
    answers = store.read_responses(record.generation) or []
    if record.index < len(answers):
        model = answers[record.index].get("model")
        return None if model is None else str(model)
    return None


def gym_id(task: TaskSpec, name: str) -> str:
    """``rewardgen/<Env>-<package>-v0``, e.g. ``rewardgen/Hopper-hopper-gen001-cand03-v0``: the
    package name (by default ``<task>_genXXX_candYY``) keeps the task's name in the id, which the
    env id alone loses (tasks that share an env, ``hopper`` and ``hopper_backflip``)."""
    base = re.sub(r"-v\d+$", "", task.env_id.split("/")[-1])
    return f"rewardgen/{base}-{name.replace('_', '-')}-v0"


def provenance(store: RunStore, record: CandidateRecord, task: TaskSpec, env_id: str,
               policy_from: str) -> dict[str, Any]:
    """Where the exported reward came from; every field is documented in docs/artifacts.md."""
    from rewardgen.train.sb3 import hyperparams_for

    manifest = store.manifest
    config = manifest.get("config", {})
    llm = config.get("llm", {})
    rl = config.get("rl", {})
    result = record.result
    final_path = store.final_dir / "summary.json"
    final = read_json(final_path) if final_path.is_file() else None
    final_seeds = final_fitness = None
    if final is not None and final.get("best") == record.label:
        generated = final["variants"]["generated"]
        final_seeds = generated.get("fitness_per_seed")
        final_fitness = {"iqm": generated.get("fitness_iqm"), "ci": generated.get("fitness_iqm_ci"),
                         "ci_reason": generated.get("fitness_iqm_ci_reason"),
                         "n_seeds": generated.get("n_ok"), "timesteps": final.get("timesteps"),
                         "planner": final.get("planner")}
    return {
        "format": PROVENANCE_FORMAT,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "exported_by": f"rewardgen {__version__}",
        "gym_id": env_id,
        "task": {"name": task.name, "env_id": task.env_id,
                 "fitness": (task.fitness.formula if task.fitness.aggregate == "duration"
                             else f"{task.fitness.aggregate}({task.fitness.expr})"),
                 "fitness_unit": task.fitness.unit, "success_threshold": task.success_threshold},
        "method": manifest.get("method"),
        "llm": {"provider": manifest.get("llm_provider"),
                "model": _answer_model(store, record) or manifest.get("llm_model"),
                "base_url": host_free_url(llm.get("base_url")),
                "temperature": llm.get("temperature")},
        "prompt_sha256": prompt_sha256(store, record.generation),
        "candidate": record.label,
        "generation": record.generation,
        "reward_sha256": result.reward_sha256 or hashlib.sha256(
            (record.source or "").encode()).hexdigest(),
        "fitness": result.fitness,
        "fitness_is": "search peak, 1 seed",  # one training on the search seed: biased upwards
        "fitness_selection": config.get("loop", {}).get("selection"),
        "final_fitness": final_fitness,  # fresh-seed retraining (IQM), when this one was retrained
        "success_rate": result.success_rate,
        "seeds": {"run": manifest.get("seed"), "training": result.seed,
                  "final_fitness_per_seed": final_seeds},
        "training": {"algo": str(rl.get("algo", "ppo")).lower(),
                     "policy": rl.get("policy", "MlpPolicy"),
                     "timesteps": config.get("train", {}).get("timesteps"),
                     "env_steps": result.env_steps,
                     "max_episode_steps": config.get("train", {}).get("max_episode_steps"),
                     "hyperparams": hyperparams_for(rl, task.name),
                     "policy_from": policy_from},
        "run": {"created": manifest.get("created"), "rewardgen_version":
                manifest.get("rewardgen_version"), "packages": manifest.get("packages", {})},
        "packages": package_versions(),
    }


# ---------------------------------------------------------------- the package
def vendored_source(module: Any) -> str:
    """A rewardgen module's source with its one rewardgen import replaced by a stand-in.

    Raises RewardGenError when the module has grown other imports, so an export never ships code
    that imports rewardgen (the export test catches it too).
    """
    source = inspect.getsource(module)
    if _ERRORS_IMPORT not in source:
        raise RewardGenError(f"{module.__name__} no longer imports TaskError as export expects")
    source = source.replace(_ERRORS_IMPORT, _ERRORS_STANDIN, 1)
    for module_name, sibling in _VENDORED_SIBLINGS.items():
        source = source.replace(f"from {module_name} import", f"from .{sibling} import")
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not (
            node.level == 1 and node.module in _VENDORED_SIBLINGS.values()
        ):
            names = [node.module or ""]
        bad = [n for n in names if n.split(".")[0] not in _VENDORED_IMPORTS]
        if bad:
            raise RewardGenError(
                f"{module.__name__} imports {bad}; export can only vendor modules that need "
                f"nothing beyond {sorted(_VENDORED_IMPORTS)}"
            )
    return f"# Vendored from {module.__name__} (rewardgen {__version__}).\n{source}"


def task_json(task: TaskSpec) -> dict[str, Any]:
    """What the exported package needs of the task spec to rebuild the env and State view."""
    return {
        "name": task.name,
        "env_id": task.env_id,
        "env_kwargs": task.env_kwargs,
        "max_episode_steps": task.max_episode_steps,
        "description": task.description,
        "state": [asdict(f) for f in task.state],
        "fitness": asdict(task.fitness),
        "success_threshold": task.success_threshold,
        "camera": task.camera,
    }


def export_candidate(run_dir: str | Path, out: str | Path, candidate: str = "best",
                     name: str | None = None, force: bool = False) -> Path:
    """Write one candidate of a run as an importable package; return the package folder.

    Args:
        run_dir: the run directory.
        out: the folder to write (it holds ``pyproject.toml`` and the package folder).
        candidate: ``best`` or ``GEN/CAND`` (``1/0``, ``gen_001/cand_00``).
        name: the Python package name; default ``<task>_gen001_cand00``.
        force: replace a non-empty ``out``.
    """
    store = RunStore.open(run_dir)
    record = pick_record(store, candidate)
    task = load_task(str(store.manifest["task"]))
    package = name or f"{task.name}_gen{record.generation:03d}_cand{record.index:02d}"
    if not package.isidentifier():
        raise ConfigError(f"--name {package!r} is not a Python identifier; use e.g. hopper_backflip")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} exists and is not empty; choose another --out or pass --force")
        shutil.rmtree(out)
    cand = store.cand_dir(record.generation, record.index)
    env_id = gym_id(task, package)
    prov = provenance(store, record, task, env_id, policy_from=f"{record.label}/policy.zip")

    pkg = out / package
    pkg.mkdir(parents=True)
    source = record.source or ""
    header = _REWARD_HEADER.format(label=record.label, task=task.name, sha=prov["reward_sha256"])
    method = (store.manifest.get("config") or {}).get("method") or {}
    atomic_write_text(pkg / "reward.py",
                      header + source + progress_adapter(run_method(store), method, task))
    atomic_write_text(pkg / "sources.py", vendored_source(sources_module))
    atomic_write_text(pkg / "state.py", vendored_source(state_module))
    atomic_write_text(pkg / "fitness.py", vendored_source(fitness_module))
    atomic_write_text(pkg / "__init__.py",
                      template("export_init.py.txt").replace("{package}", package))
    atomic_write_json(pkg / "task.json", task_json(task))
    atomic_write_json(pkg / "provenance.json", prov)
    shutil.copyfile(cand / "policy.zip", pkg / "policy.zip")
    atomic_write_text(out / "pyproject.toml", pyproject(package))
    atomic_write_text(out / "README.md", readme(package, prov))
    log.info("exported %s of %s to %s (gym id %s)", record.label, store.root, pkg, env_id)
    return pkg


def main(argv: list[str] | None = None) -> None:
    """``rewardgen-export RUN_DIR --out DIR [--candidate best|GEN/CAND] [--name PKG]``."""
    parser = argparse.ArgumentParser(
        prog="rewardgen-export",
        description="Write a run's reward program, env wrapper, policy and provenance as a "
                    "package that needs only gymnasium, numpy and stable-baselines3.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--candidate", default="best", help="best (default) or GEN/CAND, e.g. 1/0")
    parser.add_argument("--name", default=None, help="package name (default <task>_genXXX_candYY)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        pkg = export_candidate(args.run_dir, args.out, args.candidate, args.name, args.force)
    except RewardGenError as e:
        print(f"rewardgen-export: error: {e}", file=sys.stderr)
        sys.exit(1)
    prov = read_json(pkg / "provenance.json")
    print(f"{pkg}\n  import {pkg.name}  (sys.path: {pkg.parent})  ·  gym id {prov['gym_id']}")
