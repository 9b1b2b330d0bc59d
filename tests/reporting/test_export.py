"""rewardgen-export on a real tiny run, imported in a fresh interpreter that has no rewardgen."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewardgen.errors import ConfigError, RunDirError
from rewardgen.reporting.export import (
    export_candidate,
    gym_id,
    host_free_url,
    main,
    parse_candidate,
    pick_record,
    vendored_source,
)
from rewardgen.runs.store import RunStore
from rewardgen.tasks.spec import load_task

SHARED_RUN = "shared_tiny_offline_run"


def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2x2 offline run (with final phase), made once per test session and shared.

    Used by tests/reporting/test_report.py too; the run takes ~25 s on two cores.
    """
    from rewardgen.cli.app import run
    from tests.helpers import tiny_config

    run_dir = tmp_path_factory.getbasetemp() / SHARED_RUN
    if not (run_dir / "summary.json").is_file():
        run(tiny_config("llm=offline"), run_dir, interactive=False)
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


# A fresh interpreter in which `import rewardgen` fails: only gymnasium, numpy and SB3 remain.
CONSUMER = textwrap.dedent("""
    import importlib, json, sys
    sys.modules["rewardgen"] = None  # any import of rewardgen now raises ImportError
    import gymnasium as gym
    import numpy as np
    pkg = importlib.import_module(sys.argv[1])
    env = gym.make(pkg.ENV_ID)
    policy = pkg.load_policy()
    obs, _ = env.reset(seed=0)
    steps, total, episode = 0, 0.0, None
    while episode is None and steps < 2000:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        total += float(reward)
        episode = info["rewardgen"].get("episode")
    direct = pkg.make_env()
    direct.reset(seed=0)
    state = direct.unwrapped.data.qpos.copy()
    loaded = sorted(m for m, v in sys.modules.items() if m.startswith("rewardgen") and v)
    print(json.dumps({"steps": steps, "total": total, "episode": episode, "loaded": loaded,
                      "components": sorted(info["rewardgen"]["components"]),
                      "id": pkg.ENV_ID, "qpos": state.tolist()}))
""")


def test_export_runs_without_rewardgen(run_dir, tmp_path):
    out = tmp_path / "export"
    pkg = export_candidate(run_dir, out)
    store = RunStore.open(run_dir)
    best = pick_record(store, "best")
    assert pkg.name == f"inverted_pendulum_gen{best.generation:03d}_cand{best.index:02d}"
    assert {p.name for p in pkg.iterdir()} >= {
        "__init__.py", "reward.py", "state.py", "sources.py", "fitness.py", "task.json", "policy.zip",
        "provenance.json"}
    assert (out / "pyproject.toml").is_file() and (out / "README.md").is_file()
    assert best.source is not None and best.source in (pkg / "reward.py").read_text()
    for py in pkg.glob("*.py"):
        imported = {a.name for n in ast.walk(ast.parse(py.read_text())) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module or "" for n in ast.walk(ast.parse(py.read_text()))
                     if isinstance(n, ast.ImportFrom)}
        assert not any(m.startswith("rewardgen") for m in imported), (py.name, imported)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(out)
    proc = subprocess.run([sys.executable, "-c", CONSUMER, pkg.name], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    label = f"gen{best.generation:03d}-cand{best.index:02d}"
    assert got["id"] == f"rewardgen/InvertedPendulum-inverted-pendulum-{label}-v0"  # task kept
    assert got["episode"] is not None and got["episode"]["length"] == got["steps"]
    # InvertedPendulum's fitness is the episode's duration: length * dt (0.04 s)
    assert got["episode"]["fitness"] == pytest.approx(0.04 * got["steps"])
    assert got["components"] == sorted(best.result.component_stats)
    assert len(got["qpos"]) == 2


def test_provenance_fields(run_dir, tmp_path):
    pkg = export_candidate(run_dir, tmp_path / "e", candidate="0/1", name="pendulum_try")
    prov = json.loads((pkg / "provenance.json").read_text())
    store = RunStore.open(run_dir)
    record = store.read_record(0, 1)
    assert record is not None
    assert prov["candidate"] == "gen_000/cand_01" and prov["generation"] == 0
    assert prov["gym_id"] == "rewardgen/InvertedPendulum-pendulum-try-v0"
    assert prov["task"]["name"] == "inverted_pendulum" and prov["method"] == "eureka"
    assert prov["llm"] == {"provider": "offline", "model": "offline", "base_url": None,
                           "temperature": 1.0}
    assert len(prov["prompt_sha256"]) == 64 and prov["reward_sha256"] == record.result.reward_sha256
    assert prov["fitness"] == record.result.fitness
    assert prov["seeds"]["run"] == 0 and prov["seeds"]["training"] == 0
    assert prov["training"]["algo"] == "ppo"
    assert prov["training"]["hyperparams"]["policy_kwargs"] == {"net_arch": [8]}
    assert {"gymnasium", "numpy", "stable-baselines3"} <= set(prov["packages"])
    assert prov["exported_at"][:2] == "20"


def test_cli_main_and_refusals(run_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    main([str(run_dir), "--out", str(out), "--candidate", "gen_000/cand_00"])
    assert ("rewardgen/InvertedPendulum-inverted-pendulum-gen000-cand00-v0"
            in capsys.readouterr().out)
    with pytest.raises(SystemExit):  # out is not empty
        main([str(run_dir), "--out", str(out)])
    assert "is not empty" in capsys.readouterr().err
    main([str(run_dir), "--out", str(out), "--force"])
    with pytest.raises(ConfigError, match="not a Python identifier"):
        export_candidate(run_dir, tmp_path / "bad", name="has-dash")
    with pytest.raises(RunDirError, match="has no result.json"):
        export_candidate(run_dir, tmp_path / "missing", candidate="7/0")
    with pytest.raises(RunDirError, match="not a rewardgen run directory"):
        export_candidate(tmp_path, tmp_path / "x")


def test_helpers():
    assert parse_candidate("best") is None
    assert parse_candidate("1/0") == (1, 0) and parse_candidate("gen_002/cand_13") == (2, 13)
    with pytest.raises(ConfigError, match="is not 'best'"):
        parse_candidate("gen1-cand0")
    assert host_free_url("https://user:pw@llm.internal:8443/v1") == "https://<host>/v1"
    assert host_free_url(None) is None
    assert gym_id(load_task("hopper"), "hopper_backflip") == "rewardgen/Hopper-hopper-backflip-v0"
    source = vendored_source(__import__("rewardgen.tasks.state", fromlist=["x"]))
    assert "rewardgen.errors" not in source and "class TaskError(ValueError)" in source


def test_readme_headlines_the_fresh_seed_final_and_says_mujoco_gl(run_dir, tmp_path):
    """Issue 26: the README said ``fitness 3.408`` (the search peak) and nothing of MUJOCO_GL."""
    pkg = export_candidate(run_dir, tmp_path / "e")
    readme = (pkg.parent / "README.md").read_text()
    prov = json.loads((pkg / "provenance.json").read_text())
    final = json.loads((run_dir / "final" / "summary.json").read_text())
    iqm = final["variants"]["generated"]["fitness_iqm"]
    assert prov["final_fitness"]["iqm"] == iqm and prov["fitness_is"] == "search peak, 1 seed"
    assert f"final fitness {iqm:.3g} s (no 95% CI with 1 seed: needs at least 5)" in readme
    assert "(IQM over 1 fresh seed, 128 steps each)" in readme
    assert f"{prov['fitness']:.3f} s (search peak, 1 seed, loop.selection=max)" in readme
    assert "MUJOCO_GL=egl" in readme


def test_a_motif_or_vision_run_is_refused_in_one_line_before_anything_is_written(tmp_path):
    """Issue 26: a motif run was refused with "has status ok (); only ... status ok"."""
    for method in ("motif", "clip", "vlm_preference"):
        run = tmp_path / method
        RunStore.create(run, {"task": "inverted_pendulum", "method": method, "seed": 0,
                              "config": {"method": {"name": method}}})
        out = tmp_path / f"out_{method}"
        with pytest.raises(RunDirError, match=f"is a method={method} run, whose reward is .*, "
                                              "not a reward program: rewardgen-export packages"
                           ) as err:
            export_candidate(run, out)
        assert "\n" not in str(err.value) and not out.exists()


PROGRESS_CONSUMER = textwrap.dedent("""
    import importlib, json, os, sys
    sys.modules["rewardgen"] = None
    import gymnasium as gym
    pkg = importlib.import_module(sys.argv[1])
    env = gym.make(pkg.ENV_ID, render_mode="rgb_array")
    policy = pkg.load_policy()
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
    frame = env.render()
    print(json.dumps({"id": pkg.ENV_ID, "reward": float(reward), "gl": os.environ["MUJOCO_GL"],
                      "components": info["rewardgen"]["components"],
                      "frame": list(frame.shape)}))
""")


@pytest.fixture(scope="module")
def progress_run(tmp_path_factory):
    from rewardgen.cli.app import run
    from tests.helpers import tiny_config

    root = tmp_path_factory.mktemp("progress") / "run"
    run(tiny_config("llm=offline", "method=progress", "loop.generations=1", "loop.samples=1",
                    "final.enabled=false"), root, interactive=False)
    return root


def test_a_progress_run_exports_a_package_that_imports_and_renders(progress_run, tmp_path):
    """Issue 26: a method=progress export raised ``ImportError: cannot import name
    'compute_reward'``, its gym id lost the task name and rendering needed MUJOCO_GL."""
    out = tmp_path / "export"
    pkg = export_candidate(progress_run, out)
    reward = (pkg / "reward.py").read_text()
    assert "def progress(" in reward and "def compute_reward(" in reward
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    env["PYTHONPATH"] = str(out)
    proc = subprocess.run([sys.executable, "-c", PROGRESS_CONSUMER, pkg.name], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["id"] == "rewardgen/InvertedPendulum-inverted-pendulum-gen000-cand00-v0"
    assert got["gl"] == "egl" and got["frame"][2] == 3
    parts = got["components"]
    assert {"progress", "sparse", "bonus"} <= set(parts)
    assert 0 < parts["bonus"] <= 1  # beta / sqrt(visits of the cell), beta = 1
    assert got["reward"] == pytest.approx(parts["sparse"] + parts["bonus"])
