"""The parent reads what a worker left in train/ as hostile input (issue 22: "the parent dies on
files in train/").

Each payload builds one reported shape from inside the real bubblewrap sandbox, in a candidate
folder of a tiny run directory (``sweep/0/gen_000/cand_00/``); then every parent path that reads
the run goes over it, each in its own process with a timeout: the result collection (the
payload's run itself), ``rewardgen-resume``'s recovery (the store's temporary-file sweep and the
clearing of an interrupted candidate), ``rewardgen-report`` on the run, ``rewardgen-report
--sweep`` on the sweep and ``rewardgen-replay``'s search for programs. Each must finish cleanly:
no hang, no traceback, and what it reports must be the run's, not the worker's plants.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from rewardgen.runs.atomic import atomic_write_text
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import RunStore
from rewardgen.runs.untrusted import UnsafeFileError, remove_tree
from tests.adversarial.escaped import BENIGN_PROGRAM, run_escaped
from tests.helpers import tiny_config

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT_S = 240


@pytest.fixture(autouse=True)
def _remove_deep_folders(tmp_path: Path) -> Iterator[None]:
    """Folder chains thousands deep break pytest's own clean-up (shutil.rmtree recurses)."""
    yield
    with contextlib.suppress(UnsafeFileError):
        remove_tree(tmp_path)


def _tiny_run(tmp_path: Path) -> tuple[Path, RunStore]:
    """A sweep folder holding one run directory with one candidate's reward, not trained yet."""
    sweep = tmp_path / "sweep"
    cfg = tiny_config("llm=offline", "seed=0")
    manifest = {
        "task": cfg.task,
        "method": cfg.method.name,
        "llm_provider": cfg.llm.provider,
        "llm_model": cfg.llm.model,
        "seed": 0,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }  # as rewardgen writes it
    store = RunStore.create(sweep / "0", manifest)
    store.write_reward(0, 0, BENIGN_PROGRAM)
    atomic_write_text(store.cand_dir(0, 0) / "response.md", f"```python\n{BENIGN_PROGRAM}```\n")
    return sweep, store


def _escaped_run(name: str, tmp_path: Path) -> tuple[CandidateResult, Path, RunStore]:
    sweep, store = _tiny_run(tmp_path)
    result, cand = run_escaped(name, tmp_path, out_dir=str(store.cand_dir(0, 0)),
                               tensorboard=True)  # fmt: skip
    assert cand == store.cand_dir(0, 0)
    store.write_result(0, 0, result)  # as the loop does with every result
    return result, sweep, store


def _clean(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run a parent path in its own process: it must end in time, with 0 and no traceback."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout, also for console scripts
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                              cwd=REPO)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} hung (no answer after {TIMEOUT_S} s)")
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, f"{what}:\n{proc.stderr[-3000:]}"
    return proc


def _python(code: str, what: str) -> Any:
    return json.loads(_clean([sys.executable, "-c", code], what).stdout.splitlines()[-1])


def _parent_paths(sweep: Path, store: RunStore) -> dict[str, Any]:
    """Every parent path that reads the run; what each reported."""
    run = str(store.root)
    recovered = _python(
        "import json; from rewardgen.runs.store import RunStore\n"
        f"print(json.dumps(RunStore.open({run!r}).recover()))",
        "the store's recovery",
    )
    _clean([str(BIN / "rewardgen-report"), run, "--no-videos"], "rewardgen-report")
    _clean([str(BIN / "rewardgen-report"), "--sweep", str(sweep)], "rewardgen-report --sweep")
    programs = _python(
        "import json; from rewardgen.cli.replay import find_programs\n"
        f"print(json.dumps([p.label for p in find_programs({run!r})]))",
        "rewardgen-replay's search",
    )
    return {"recovered": recovered, "programs": programs,
            "sweep": json.loads((sweep / "sweep_summary.json").read_text()),
            "report": (store.root / "report.html").read_text()}  # fmt: skip


def _assert_the_run_is_read_as_itself(seen: dict[str, Any], store: RunStore) -> None:
    assert seen["programs"] == ["gen_000/cand_00"]  # nothing below train/ counts as a program
    runs = seen["sweep"]["runs"]
    assert [r["run_dir"] for r in runs] == [str(store.root)]  # no run planted in train/ counts
    assert [g["beats_human"] for g in seen["sweep"]["groups"]] == [None]
    assert "gen_000/cand_00" in seen["report"]


def _resume_clears(store: RunStore) -> None:
    """``rewardgen-resume`` on a run killed while this candidate trained: its folder is cleared."""
    (store.cand_dir(0, 0) / "result.json").unlink()
    cand = str(store.cand_dir(0, 0))
    cleared = _python(
        "import json; from pathlib import Path; from rewardgen.runs.store import RunStore\n"
        f"s = RunStore.open({str(store.root)!r}); s.recover()\n"
        f"print(json.dumps(s.clear_interrupted(Path({cand!r}), keep=('response.md', 'reward.py'))))",
        "rewardgen-resume's clearing",
    )
    assert cleared is True
    assert sorted(p.name for p in store.cand_dir(0, 0).iterdir()) == ["response.md", "reward.py"]


@pytest.mark.parametrize("name", ["log_as_folder", "folder_chain", "fifo_in_tb", "fifo_names",
                                  "planted_runs"])  # fmt: skip
def test_hostile_shapes_in_train_leave_every_parent_path_clean(name: str, tmp_path: Path) -> None:
    result, sweep, store = _escaped_run(name, tmp_path)
    # The shapes are data: the candidate trained, or layer 3's output quota stopped it (where it
    # bounds folder depth); either way a one-line result, and the shapes stay for the parent.
    assert result.status == "ok" or "output folder" in result.reason, result.reason
    assert "\n" not in result.reason
    cand = store.cand_dir(0, 0)
    assert (cand / "train.worker.log").is_file() and (cand / "train.job.json").is_file()
    seen = _parent_paths(sweep, store)
    _assert_the_run_is_read_as_itself(seen, store)
    assert seen["recovered"]["temp_files"] == 0  # the bait below train/ is not the parent's
    _resume_clears(store)


@pytest.mark.parametrize(("name", "reason"), [
    ("result_deep_json", r"unusable result\.json \(result\.json is nested 200001 deep"),
    ("result_huge_number", r"unusable result\.json \(result\.json holds an integer of 400 digits"),
])  # fmt: skip
def test_a_hostile_result_json_is_a_failed_candidate(
    name: str, reason: str, tmp_path: Path
) -> None:
    result, sweep, store = _escaped_run(name, tmp_path)
    assert result.status == "failed" and result.fitness is None
    assert re.search(reason, result.reason), result.reason
    assert not (store.cand_dir(0, 0) / "train" / "result.json").exists()  # discarded
    _assert_the_run_is_read_as_itself(_parent_paths(sweep, store), store)
