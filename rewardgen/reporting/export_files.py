"""The text files of an exported package (:mod:`rewardgen.reporting.export`): its README,
pyproject.toml, and for a method=progress run the ``compute_reward`` its progress function
trained through."""

from __future__ import annotations

from importlib import resources
from typing import Any

from rewardgen.errors import RunDirError
from rewardgen.tasks.spec import TaskSpec


def template(name: str) -> str:
    return resources.files("rewardgen").joinpath("templates", name).read_text()


def progress_adapter(method_name: str, method: dict[str, Any], task: TaskSpec) -> str:
    """For a method=progress run: the ``compute_reward`` its ``progress(state)`` trained through
    (count bonus over progress cells plus the sparse reward, with the run's ``method.*``
    options); empty for a reward program, which defines ``compute_reward`` itself."""
    if method_name != "progress":
        return ""
    from rewardgen.rewards.progress import DEFAULT_OPTIONS, check_options

    options = check_options({k: method.get(k, v) for k, v in DEFAULT_OPTIONS.items()})
    if not task.sparse_reward:
        raise RunDirError(
            f"task {task.name!r} has no sparse_reward now, and a method=progress "
            "reward needs it; restore it in the task's YAML to export this run"
        )
    return (
        template("export_progress.py.txt")
        .replace("__OPTIONS__", repr(options))
        .replace("__SPARSE_REPR__", repr(task.sparse_reward))
        .replace("__SPARSE__", f"({task.sparse_reward})")
    )


def pyproject(package: str) -> str:
    return f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{package.replace("_", "-")}"
version = "0.1.0"
description = "A reward program found by rewardgen, with its env wrapper and trained policy."
requires-python = ">=3.10"
dependencies = ["gymnasium[mujoco]>=1.0", "numpy>=1.24"]
optional-dependencies = {{ policy = ["stable-baselines3>=2.3"] }}

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["*.json", "*.zip"]
"""


def _fitness_text(prov: dict[str, Any]) -> str:
    """The README's fitness: the fresh-seed final result first, the search peak labelled."""
    from rewardgen.reporting.statistics import headline

    final = prov.get("final_fitness")
    unit = prov["task"].get("fitness_unit") or ""
    summary = (
        None
        if not final or final.get("iqm") is None
        else {
            "timesteps": final.get("timesteps"),
            "planner": final.get("planner"),
            "variants": {
                "generated": {
                    "fitness_iqm": final["iqm"],
                    "fitness_iqm_ci": final.get("ci"),
                    "fitness_iqm_ci_reason": final.get("ci_reason"),
                    "n_ok": final.get("n_seeds"),
                }
            },
        }
    )
    head = headline(summary, prov.get("fitness"), prov.get("fitness_selection"), unit)
    if head["source"] == "final":
        return f"final fitness {head['text']}; {head['search_text'] or 'no search fitness'}"
    return (
        f"fitness {head['text']}; not retrained on fresh seeds (no final phase for this "
        "candidate), so expect less on other seeds"
    )


def readme(package: str, prov: dict[str, Any]) -> str:
    return f"""# {package}

Reward program `{prov["candidate"]}` for task `{prov["task"]["name"]}` ({prov["task"]["env_id"]}),
found by rewardgen ({prov["method"]}, {prov["llm"]["provider"]} / {prov["llm"]["model"]}).
Fitness ({prov["task"]["fitness"]}): {_fitness_text(prov)}.

Needs gymnasium[mujoco] and numpy; stable-baselines3 for the policy. `pip install .` or put
this folder on `sys.path`. Rendering without a display needs MuJoCo's EGL backend:
`export MUJOCO_GL=egl` before Python starts (importing the package sets it on a Linux machine
with no display unless `MUJOCO_GL` is set; `osmesa` renders on the CPU alone).

```python
import gymnasium as gym
import {package}

env = gym.make("{prov["gym_id"]}")     # or {package}.make_env(render_mode="rgb_array")
policy = {package}.load_policy()
obs, info = env.reset(seed=0)
action, _ = policy.predict(obs, deterministic=True)
obs, reward, terminated, truncated, info = env.step(action)
print(info["rewardgen"]["components"])
```
{_PROGRESS_NOTE if prov["method"] == "progress" else ""}
`provenance.json` says where it came from (see rewardgen's docs/artifacts.md).
"""


_PROGRESS_NOTE = """
The reward is method=progress's: `reward.py` holds the LLM's `progress(state)` and the
`compute_reward` rewardgen trained it with, a count bonus `beta / sqrt(N(cell))` over
discretised progress plus the task's sparse reward (options in `PROGRESS_OPTIONS`). The counts
start empty in each env instance (rewardgen shared them over a candidate's vector env).
"""
