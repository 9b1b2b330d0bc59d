"""Fail before spending: bad command lines end in one line before any run directory exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardgen.cli.app import CONF_DIR, resume_config
from rewardgen.cli.check import check_command_line, validate
from rewardgen.config import EvalConfig, RewardGenConfig
from rewardgen.errors import ConfigError, RewardGenError, TaskError
from tests.helpers import TINY, compose_config

BIN = Path(sys.executable).parent


def _check(*argv: str, name: str = "config") -> None:
    schema = EvalConfig if name == "eval" else RewardGenConfig
    check_command_line(list(argv), CONF_DIR, name, schema)


@pytest.mark.parametrize(("argv", "match"), [
    (["loop.selection=best"], r"loop.selection='best' is not one of final, last_k, max"),
    (["rl.vec_env=foo"], r"rl.vec_env='foo' is not one of dummy, subproc"),
    (["sandbox.memory_mb=100"], r"sandbox.memory_mb=100 is below the 3500 MB a worker needs"),
    (["train.timesteps=-5"], r"train.timesteps=-5 must be at least 1"),
    (["loop.generations=0"], r"loop.generations=0 must be at least 1"),
    (["loop.samples=0"], r"loop.samples=0 must be at least 1; the reward programs asked"),
    (["final.seeds=[]"], r"final.seeds=\[\] holds no seed"),
    (["final.n_seeds=0"], r"final.n_seeds=0 must be at least 1"),
    (["rl.algo=td3"], r"rl.algo='td3' is not one of ppo, sac"),
    (["rl.n_envs=0"], r"rl.n_envs=0 must be at least 1"),
    (["rl.policy=MLPPolicy"], r"rl.policy='MLPPolicy' is not one of .*did you mean rl.policy=MlpPolicy"),
    (["executor.name=slurm"], r"executor.name='slurm' is not one of local, ray"),
    (["executor.workers=0"], r"executor.workers=0 must be at least 1"),
    (["llm.provider=anthropic"], r"llm.provider='anthropic' is not one of auto, openai"),
    (["llm=replay"], r"llm=replay needs llm.replay_dir"),
    (["method.name=eurkea"], r"method.name='eurkea' is not one of .*did you mean method.name=eureka"),
    (["loop.judge=human"], r"loop.judge='human' is not one of"),
    (["feedback.mode=email"], r"feedback.mode='email' is not one of"),
    (["device=tpu"], r"device='tpu' is not one of auto, cpu, cuda, cuda:N"),
    (["loop.sample=4"], r"^loop.sample is not a config key; did you mean loop.samples=4\?$"),
    (["+loop.sample=4"], r"^loop.sample is not a config key; did you mean loop.samples=4\?$"),
    (["trian.timesteps=5"], r"did you mean train.timesteps=5\?"),
    (["loop.samples=abc"], r"loop.samples=abc.*could not be converted to Integer"),
    (["llm=nope"], r"Could not find 'llm/nope'; Available options in 'llm': auto, offline"),
    (["--multirun", "task=hopper,ant", "loop.samples=0"], r"loop.samples=0 must be at least 1"),
])
def test_bad_command_line_is_one_config_error(argv, match):
    with pytest.raises(RewardGenError, match=match) as raised:
        _check(*argv)
    assert "\n" not in str(raised.value)
    assert "+loop" not in str(raised.value)  # never Hydra's "append with +key" hint


def test_eval_command_line_is_checked_too(tmp_path):
    with pytest.raises(ConfigError, match=r"seeds=\[\] holds no seed"):
        _check("seeds=[]", name="eval")
    with pytest.raises(ConfigError, match=r"fitness_aggregate='best' is not one of"):
        _check("fitness_aggregate=best", name="eval")
    with pytest.raises(ConfigError, match=r"reward_file=.*nope.py does not exist"):
        _check(f"reward_file={tmp_path / 'nope.py'}", name="eval")


def test_missing_task_file_says_it_is_missing(tmp_path):
    with pytest.raises(TaskError, match=r"task file .*missing.yaml does not exist"):
        _check(f"task={tmp_path / 'path' / 'missing.yaml'}")


def test_cuda_without_a_gpu_is_an_error_and_auto_is_the_fallback(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible, whatever the machine has
    with pytest.raises(ConfigError, match=r"device=cuda but this machine shows no GPU.*device=auto"):
        _check("device=cuda", "task=inverted_pendulum")
    with pytest.raises(ConfigError, match=r"device=cuda:1 but this machine shows no GPU"):
        _check("device=cuda:1", "task=inverted_pendulum")
    _check("device=auto", "task=inverted_pendulum")
    with pytest.raises(ConfigError, match=r"executor=ray needs GPUs.*gpus_per_candidate"):
        _check("device=cuda", "executor=ray", "task=inverted_pendulum")


def test_good_command_lines_pass():
    _check(*TINY)
    _check("task=inverted_pendulum", "rl=sac", "train.timesteps=20000", "loop.selection=max")
    _check("--multirun", "task=hopper,inverted_pendulum", "seed=0,1")
    _check("--help", "loop.samples=0")  # help is Hydra's business


def test_sac_budget_below_learning_starts_is_a_warning():
    cfg = compose_config(["task=inverted_pendulum", "rl=sac", "train.timesteps=5000",
                          "final.timesteps=50000"])
    warnings = validate(cfg)
    assert len(warnings) == 1
    assert warnings[0].startswith("train.timesteps=5000 is not above SAC's learning_starts=10000")
    cfg = compose_config(["task=inverted_pendulum", "rl=sac", "train.timesteps=5000",
                          "++rl.hyperparams.learning_starts=100"])
    assert validate(cfg) == []


def test_enumerations_match_the_modules_that_own_them():
    from stable_baselines3 import PPO, SAC

    from rewardgen.cli import check as config_check
    from rewardgen.rewards.preference_model import REWARD_MODELS
    from rewardgen.train.sb3 import ALGORITHMS, VEC_ENVS
    from rewardgen.train.stats import SELECTIONS

    assert config_check.SELECTIONS == SELECTIONS
    assert config_check.VEC_ENVS == VEC_ENVS
    assert set(config_check.ALGOS) == set(ALGORITHMS)
    assert config_check.REWARD_MODELS == REWARD_MODELS
    for algo in (PPO, SAC):
        assert set(config_check.POLICIES) == set(algo.policy_aliases)


def test_resume_override_of_no_key_suggests_the_real_one(tmp_path):
    (tmp_path / ".hydra").mkdir()
    from omegaconf import OmegaConf

    OmegaConf.save(compose_config(TINY), tmp_path / ".hydra" / "config.yaml")
    with pytest.raises(ConfigError, match=r"llm.base_ur is not a config key; did you mean "
                                          r"llm.base_url=http://x/v1\?"):
        resume_config(tmp_path, ["llm.base_ur=http://x/v1"])


# ---------------------------------------------------------------- one schema per method
@pytest.mark.parametrize("method", ["eureka", "text2reward", "progress", "clip", "vlm_preference",
                                    "l2r"])
def test_each_method_composes_into_its_own_schema(method):
    from omegaconf import OmegaConf

    from rewardgen.config import METHOD_SCHEMAS

    cfg = compose_config([*TINY, f"method={method}"])
    assert OmegaConf.get_type(cfg.method) is METHOD_SCHEMAS[method]
    fields = set(cfg.method.keys())
    assert ("bins" in fields) == (method == "progress")
    assert ("few_shot_k" in fields) == (method == "text2reward")
    assert ("preference" in fields) == (method != "clip")  # the VLM judge's question
    assert ("clip" in fields) == (method != "vlm_preference")


@pytest.mark.parametrize(("argv", "match"), [
    (["method.bins=5"], r"method.bins is a key of method=progress, not of method=eureka"),
    (["method=clip", "method.mode=few_shot"],
     r"method.mode is a key of method=text2reward, not of method=clip"),
    (["method=vlm_preference", "method.clip.alpha=0.2"],
     r"method.clip.alpha is a key of method=eureka / method=text2reward / method=progress / "
     r"(.* / )?method=clip( / .*)?, not of method=vlm_preference"),
    (["method=progress", "method.bin=5"], r"did you mean method.bins=5\?"),
])
def test_a_key_of_another_method_is_refused_naming_its_owner(argv, match):
    with pytest.raises(ConfigError, match=match):
        _check(*argv)


def test_a_preset_leaves_the_method_to_the_composed_config_and_never_hints_a_plus():
    """An experiment preset may choose the method, so its keys are checked once composed."""
    with pytest.raises(ConfigError, match="Key 'bins' not in 'EurekaMethodConfig'") as raised:
        _check("experiment=quickstart", "method.bins=5")
    assert "+method" not in str(raised.value)


def test_resume_reads_a_run_saved_with_every_methods_keys(tmp_path):
    """A run from before one schema per method saved all methods' keys under ``method``."""
    from omegaconf import OmegaConf

    (tmp_path / ".hydra").mkdir()
    saved = OmegaConf.to_container(compose_config([*TINY, "method=progress"]))
    saved["method"].update(mode="zero_shot", few_shot_k=1, similarity="auto")  # type: ignore[index]
    OmegaConf.save(OmegaConf.create(saved), tmp_path / ".hydra" / "config.yaml")
    cfg = resume_config(tmp_path, ["method.beta=0.5"])
    assert cfg.method.name == "progress" and cfg.method.beta == 0.5 and "mode" not in cfg.method
    with pytest.raises(ConfigError, match="method.mode is a key of method=text2reward"):
        resume_config(tmp_path, ["method.mode=few_shot"])


# ---------------------------------------------------------------- the console scripts
def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    full_env.update(env or {})
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          env=full_env, timeout=300)


@pytest.mark.parametrize(("script", "args", "line"), [
    ("rewardgen", ["loop.selection=best"], "loop.selection='best' is not one of"),
    ("rewardgen", ["loop.sample=4"], "did you mean loop.samples=4?"),
    ("rewardgen", ["device=cuda"], "device=cuda but this machine shows no GPU"),
    ("rewardgen-eval", ["train.timesteps=-5"], "train.timesteps=-5 must be at least 1"),
])
def test_console_scripts_fail_before_the_run_directory(script, args, line, tmp_path):
    run_dir = tmp_path / "run"
    out = _run(script, "task=inverted_pendulum", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path,
               env={"CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and line in lines[0], out.stderr[-2000:]
    assert "+loop" not in out.stderr and "Traceback" not in out.stderr
    assert not run_dir.exists()  # nothing written, nothing spent


@pytest.mark.parametrize("script", ["rewardgen-resume", "rewardgen-report", "rewardgen-export"])
def test_missing_run_directory_says_it_is_missing(script, tmp_path):
    args = ["--out", str(tmp_path / "pkg")] if script == "rewardgen-export" else []
    out = _run(script, str(tmp_path / "no_such_run"), *args, cwd=tmp_path)
    assert out.returncode == 1
    assert f"run directory {tmp_path / 'no_such_run'} does not exist" in out.stderr
    assert "not a rewardgen run directory" not in out.stderr


@pytest.mark.parametrize(("method", "extra", "refusal"), [
    ("eureka", [], None),
    ("text2reward", [], None),
    ("progress", [], None),
    ("text2reward", ["method.mode=few_shot", "method.library_dir=.", "method.similarity=embeddings"],
     "method.similarity=embeddings needs an OpenAI-compatible server"),
    ("clip", ["task=humanoid_kneel"], "CLIP weights ViT-bigG-14/laion2b_s39b_b160k are not on"),
    ("vlm_preference", [], "method=vlm_preference needs a vision chat model and has no offline"),
])
def test_every_method_runs_offline_or_refuses_in_one_line(method, extra, refusal, monkeypatch,
                                                          tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # no CLIP weights cached here
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for llm in ("llm=offline", "llm=auto"):  # auto without a key or server falls back offline
        cfg = compose_config([*TINY, llm, f"method={method}", *extra])
        if refusal is None:
            validate(cfg)
            continue
        with pytest.raises(ConfigError, match=refusal) as raised:
            validate(cfg)
        assert "\n" not in str(raised.value)
