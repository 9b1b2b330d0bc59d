"""The memory check: every shipped combination of method, ``rl`` group and task either builds
its model inside the real sandbox limits, through the real isolated worker, or is refused by
the check in one line naming the keys to change.

The check runs over all combinations (cheap: arithmetic on each task's spaces). Building in a
worker costs a worker start each, so it covers, per (method kind, ``rl`` group), the tasks with
the largest observations (humanoid, humanoid_standup; the vision methods' humanoid poses) at
the largest budget the defaults train (``final.timesteps`` for code methods): memory grows with
observation size and budget, so what fits there fits on every smaller task.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from rewardgen.cli.check import validate
from rewardgen.cli.memory import check_memory, worker_limit_mb
from rewardgen.config import SandboxConfig
from rewardgen.errors import ConfigError
from rewardgen.jobs import training_job
from rewardgen.sandbox.worker import run_isolated
from rewardgen.tasks.spec import load_task, task_names
from rewardgen.train import memory
from tests.helpers import compose_config

TARGET = "tests.train.memory_targets:build_and_step"
RL_GROUPS = ("ppo", "sac", "sac_vlmrm", "sac_rlvlmf")
VLM = "llm.base_url=http://127.0.0.1:9/v1"  # configured, never reached: the check builds nothing
VISION_TASKS = tuple(n for n in task_names() if load_task(n).vision.get("goal_prompts"))
MANIPULATION = ("metaworld_", "fetch_", "shadow_", "adroit_")
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
KEYS = ("rl.hyperparams.buffer_size", "sandbox.memory_mb")


def _budgets(cfg: DictConfig) -> dict[str, int]:
    budgets = {"train.timesteps": int(cfg.train.timesteps)}
    if cfg.method.name not in ("clip", "vlm_preference") and cfg.final.enabled:
        budgets["final.timesteps"] = int(cfg.final.timesteps)
    return budgets


def _tiny_clip(folder: Path) -> list[str]:
    path = folder / "rg-tiny-memory.json"
    path.write_text(json.dumps(TINY_CLIP))
    return [f"method.clip.model={path}", "method.clip.pretrained=null"]


def _refused_or_fits(cfg: DictConfig, task: str) -> bool:
    """True when the check lets the run start (its estimate under the limit); a refusal must be
    one line naming the budget and the keys."""
    try:
        check_memory(cfg, task, _budgets(cfg))
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and "timesteps=" in message
        assert all(key in message for key in KEYS[1:]), message
        return False
    return True


# ---------------------------------------------------------------- the check, every combination
def _task_params() -> list[Any]:
    return [
        pytest.param(n, marks=pytest.mark.slow) if n.startswith(MANIPULATION) else n
        for n in task_names()
    ]


@functools.cache
def _composed(*overrides: str) -> DictConfig:
    return compose_config(list(overrides))


def _for_task(cfg: DictConfig, task: str, **updates: Any) -> DictConfig:
    """``cfg`` on another task (composition depends on the task only through its name)."""
    cfg = copy.deepcopy(cfg)
    for key, value in {"task": task, **updates}.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.mark.parametrize("task", _task_params())
@pytest.mark.parametrize("rl", ["ppo", "sac"])
def test_code_methods_on_every_task_fit_or_are_refused(rl: str, task: str) -> None:
    """Every code method trains a program with the run's ``rl`` group (same memory for each):
    the defaults fit on every task; a 3M-transition SAC buffer of a large observation does not."""
    cfg = _composed(f"rl={rl}", "llm=offline")
    assert _refused_or_fits(_for_task(cfg, task), task), f"{task} rl={rl} defaults refused"
    big = _for_task(
        cfg, task, **{"final.timesteps": 3_000_000, "rl.hyperparams.buffer_size": 3_000_000}
    )
    if rl == "sac" and memory.task_spaces(task).obs > 100:
        assert not _refused_or_fits(big, task)


@pytest.mark.parametrize("rl", ["sac_vlmrm", "sac", "ppo"])
def test_clip_on_its_tasks_fits(rl: str, tmp_path: Path) -> None:
    cfg = compose_config(["method=clip", f"rl={rl}", *_tiny_clip(tmp_path)])
    for task in VISION_TASKS:
        assert _refused_or_fits(_for_task(cfg, task), task)


@pytest.mark.parametrize(
    ("rl", "model", "fits"),
    [
        ("sac_rlvlmf", "cnn", False),  # the paper's: every replay frame kept at 224 px, ~21 GB
        ("sac_rlvlmf", "mlp", True),
        ("sac", "cnn", False),
        ("ppo", "cnn", True),  # PPO relabels its rollout only: no frame store beside the pool
    ],
)
def test_vlm_preference_fits_or_is_refused(rl: str, model: str, fits: bool) -> None:
    cfg = _composed(
        "method=vlm_preference", f"rl={rl}", VLM, f"method.preference.reward_model={model}"
    )
    for task in VISION_TASKS:
        assert _refused_or_fits(_for_task(cfg, task), task) is fits


def test_the_refusal_names_a_buffer_that_fits() -> None:
    cfg = compose_config(["task=humanoid", "rl=sac", "llm=offline", "final.timesteps=1000000"])
    with pytest.raises(
        ConfigError,
        match=r"final.timesteps=1000000: a SAC worker on humanoid "
        r"needs about \d+ MB \(.*replay buffer \d+ MB.*\), above its limit of 4096 "
        r"MB \(sandbox.memory_mb\); set \+\+rl.hyperparams.buffer_size=(\d+) or "
        r"sandbox.memory_mb=\d+",
    ) as raised:
        validate(cfg)
    size = str(raised.value).split("rl.hyperparams.buffer_size=")[1].split()[0]
    validate(
        compose_config(
            [
                "task=humanoid",
                "rl=sac",
                "llm=offline",
                "final.timesteps=1000000",
                f"++rl.hyperparams.buffer_size={size}",
            ]
        )
    )
    validate(
        compose_config(
            [
                "task=humanoid",
                "rl=sac",
                "llm=offline",
                "final.timesteps=1000000",
                "sandbox.memory_mb=5120",
            ]
        )
    )


def test_the_issue_commands_pass_the_check(tmp_path: Path) -> None:
    reward = tmp_path / "r.py"
    reward.write_text("def compute_reward(state, action, prev_state):\n    return 0.0, {}\n")
    validate(
        compose_config(
            ["task=humanoid", "rl=sac", f"reward_file={reward}", "train.timesteps=2048"],
            name="eval",
        )
    )


def test_optimize_memory_usage_with_n_step_returns_is_refused() -> None:
    cfg = compose_config(["task=hopper", "rl=sac", "llm=offline", "+rl.hyperparams.n_steps=3"])
    with pytest.raises(ConfigError, match="optimize_memory_usage=true needs rewardgen's replay"):
        validate(cfg)


# ---------------------------------------------------------------- built in the real worker
BUILDS = [
    ("eureka", "ppo", "humanoid", []),
    ("eureka", "sac", "humanoid", []),
    ("eureka", "sac", "humanoid_standup", []),
    ("clip", "sac_vlmrm", "humanoid_kneel", ["clip"]),  # VLM-RM's 8 subprocess envs, 480 px
    ("clip", "ppo", "humanoid_kneel", ["clip"]),
    ("vlm_preference", "sac_rlvlmf", "humanoid_kneel", ["method.preference.reward_model=mlp"]),
    ("vlm_preference", "ppo", "humanoid_kneel", []),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "rl", "task", "extra"), BUILDS)
def test_accepted_configurations_build_in_the_real_sandbox(
    method: str, rl: str, task: str, extra: list[str], tmp_path: Path
) -> None:
    """The worker builds the stack at the run's largest budget (the replay buffer allocated at
    its real size) under the real limit and takes a few steps; its peak address space stays
    under the estimate, which stays under the limit."""
    from rewardgen.search.vision import vision_settings

    overrides = [f"task={task}", f"method={method}", f"rl={rl}"]
    overrides += _tiny_clip(tmp_path) if "clip" in extra else [e for e in extra if e != "clip"]
    overrides += [VLM] if method == "vlm_preference" else ["llm=offline"]
    cfg = compose_config(overrides)
    budgets = _budgets(cfg)
    check_memory(cfg, task, budgets)  # accepted
    steps = max(budgets.values())
    kind = method if method in ("clip", "vlm_preference") else "native"
    job = dataclasses.replace(
        training_job(cfg, str(tmp_path / "cand"), None, kind, timesteps=steps), device="cpu"
    )
    sandbox = SandboxConfig()  # the default limits: memory_mb 4096, bubblewrap
    if kind != "native":
        job = dataclasses.replace(job, vision=vision_settings(cfg, load_task(task))[0])
        sandbox = dataclasses.replace(sandbox, memory_mb=worker_limit_mb(cfg, kind))
    result = run_isolated(job, sandbox, target=TARGET, sandboxed=kind == "native")
    assert result.status == "ok", result.reason
    report = json.loads((tmp_path / "cand" / "memory.json").read_text())
    hp = __import__("rewardgen.train.sb3", fromlist=["x"]).hyperparams_for(job.rl, task)
    est = memory.estimate(
        algo=str(cfg.rl.algo),
        hyperparams=hp,
        timesteps=steps,
        n_envs=int(cfg.rl.n_envs),
        vec_env=str(cfg.rl.vec_env),
        spaces=memory.task_spaces(task),
        vision=job.vision,
        reward_kind=kind,
    )
    assert report["VmPeak"] <= est.total <= sandbox.memory_mb, (report, est.describe())
    if cfg.rl.algo == "sac":
        assert report["obs_dtype"] == "float32"
        size = int(hp.get("buffer_size", memory.SB3_BUFFER_SIZE))
        assert report["buffer_size"] == memory.buffer_size_for(size, steps, int(cfg.rl.n_envs))
        assert report["buffer_mb"] == pytest.approx(est.parts["replay buffer"], rel=0.01)


def test_clip_defaults_need_their_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """VLM-RM's default ViT-bigG-14: the check measures its checkpoint, so it needs it on disk."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    cfg = compose_config(["task=humanoid_kneel", "method=clip"])
    try:
        from rewardgen.rewards.clip import clip_weights

        clip_weights(str(cfg.method.clip.model), cfg.method.clip.pretrained)
    except ConfigError as e:
        pytest.skip(f"VLM-RM's default CLIP weights are not on this machine: {e}"[:200])
    assert _refused_or_fits(cfg, "humanoid_kneel")


def test_the_frame_store_refusal_names_a_buffer_that_fits() -> None:
    cfg = _composed("method=vlm_preference", "rl=sac_rlvlmf", VLM, "task=humanoid_kneel")
    with pytest.raises(ConfigError, match="frame store") as raised:
        check_memory(cfg, "humanoid_kneel", _budgets(cfg))
    size = int(str(raised.value).split("rl.hyperparams.buffer_size=")[1].split()[0])
    check_memory(
        _for_task(cfg, "humanoid_kneel", **{"rl.hyperparams.buffer_size": size}),
        "humanoid_kneel",
        _budgets(cfg),
    )
