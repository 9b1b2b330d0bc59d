"""method=clip and method=vlm_preference end to end: config → isolated worker → run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from tests.fakes.openai_server import FakeOpenAIServer, preference_answerer
from tests.helpers import compose_config, tiny_config
from tests.rewards.test_clip import tiny_model_config
from tests.rewards.test_preference_model import pole_left

pytest.importorskip("open_clip")

RENDER = ["method.render.width=32", "method.render.height=32"]
# Vision methods train with SAC by default (their papers'); tiny SAC instead of TINY's PPO keys.
TINY_SAC = ["~rl.hyperparams.n_steps", "~rl.hyperparams.n_epochs", "rl.n_envs=1",
            "rl.vec_env=dummy", "++rl.hyperparams.learning_starts=32",
            "++rl.hyperparams.train_freq=16", "++rl.hyperparams.gradient_steps=1",
            "++rl.hyperparams.buffer_size=1000"]


def _check_run_dir(root: Path, method: str) -> dict:
    summary = json.loads((root / "summary.json").read_text())
    assert summary["method"] == method and summary["statuses"] == {"ok": 1}, summary
    assert summary["best"]["fitness"] is not None
    events = [json.loads(line)["event"] for line in (root / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert "candidate_done" in events and "best_updated" in events
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["method"] == method
    for name in ("result.json", "policy.zip", "train.job.json", "evaluation/job.json",
                 "vision.json"):
        assert (root / "gen_000" / "cand_00" / name).is_file(), name
    assert (root / "best" / "policy.zip").is_file()
    return summary


def test_clip_method_trains_end_to_end(tmp_path: Path) -> None:
    model = tiny_model_config(tmp_path)
    cfg = tiny_config(
        "method=clip", *RENDER, *TINY_SAC, f"method.clip.model={model}",
        "method.clip.pretrained=null", "method.clip.goal_prompts=[a pole balanced upright]",
        "method.clip.baseline_prompts=[a pole]", "train.timesteps=128",
    )
    run(cfg, tmp_path / "run", False)
    _check_run_dir(tmp_path / "run", "clip")
    job = json.loads((tmp_path / "run" / "gen_000" / "cand_00" / "train.job.json").read_text())
    assert job["reward_kind"] == "clip" and job["vision"]["clip"]["alpha"] == 0.5
    assert job["rl"]["algo"] == "sac"


def test_vlm_preference_method_trains_end_to_end(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(pole_left)) as server:
        cfg = tiny_config(
            "method=vlm_preference", *RENDER, *TINY_SAC, "llm=openai",
            f"llm.base_url={server.base_url}",
            "llm.api_key=secret-test-key", "llm.model=fake-vlm", f"llm.cache_dir={tmp_path}/c",
            "method.preference.first_round_after=32", "method.preference.steps_between_rounds=64",
            "method.preference.pairs_per_round=4", "method.preference.budget=8",
            "method.preference.max_epochs=5", "method.preference.image_size=48",
            "train.timesteps=128",
        )
        run(cfg, tmp_path / "run", False)
        assert server.chat_requests, "the worker never reached the VLM server"
        assert all(r.body["temperature"] == 0 for r in server.chat_requests)  # labels at 0
        assert all(r.headers["authorization"] == "Bearer secret-test-key"
                   for r in server.chat_requests)
    _check_run_dir(tmp_path / "run", "vlm_preference")
    for path in (tmp_path / "run").rglob("*.json"):
        assert "secret-test-key" not in path.read_text(), path


def test_vision_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no vision.goal_prompts"):
        run(tiny_config("method=clip"), tmp_path / "a", False)
    cfg = tiny_config("method=vlm_preference", "llm=openai", "llm.base_url=null",
                      "llm.api_key=null")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OPENAI_API_KEY", raising=False)
        mp.delenv("OPENAI_BASE_URL", raising=False)
        with pytest.raises(ConfigError, match="needs an API key or a server"):
            run(cfg, tmp_path / "b", False)


def test_clip_defaults_are_the_papers(tmp_path: Path) -> None:
    """method=clip composes to VLM-RM's protocol: SAC with its hyperparameters, ViT-bigG-14
    laion2b, 480 px frames and the textured humanoid with the official camera."""
    from rewardgen.search.vision import vision_settings
    from rewardgen.tasks.spec import load_task
    from tests.rewards.test_clip import fake_hf_cache

    cfg = compose_config(["method=clip", "task=humanoid_kneel",
                          f"method.clip.cache_dir={tmp_path / 'hf'}"])
    assert cfg.rl.algo == "sac" and cfg.rl.n_envs == 8
    assert (cfg.rl.common.gamma, cfg.rl.common.learning_rate, cfg.rl.common.learning_starts,
            cfg.rl.common.batch_size, cfg.rl.common.gradient_steps) == (0.95, 6e-4, 50000, 512, 100)
    clip = cfg.method.clip
    assert (clip.model, clip.pretrained, clip.textured) == ("ViT-bigG-14", "laion2b_s39b_b160k",
                                                            True)
    assert (cfg.method.render.width, cfg.method.render.height) == (480, 480)
    assert compose_config(["method=clip", "rl=ppo"]).rl.algo == "ppo"  # our lighter option
    assert compose_config([]).rl.algo == "ppo"  # code-writing methods keep their default
    fake_hf_cache(tmp_path / "hf", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
                  "open_clip_pytorch_model.bin")
    vision, _ = vision_settings(cfg, load_task("humanoid_kneel"))
    assert vision["env_kwargs"]["xml_file"] == "assets/vlmrm/humanoid_textured.xml"
    assert vision["env_kwargs"]["default_camera_config"]["azimuth"] == 180.0
    plain = compose_config(["method=clip", "task=humanoid_kneel", "method.clip.textured=false",
                            f"method.clip.cache_dir={tmp_path / 'hf'}"])
    assert "env_kwargs" not in vision_settings(plain, load_task("humanoid_kneel"))[0]


def test_missing_clip_weights_stop_the_run_before_training(tmp_path: Path) -> None:
    cfg = tiny_config("method=clip", "task=humanoid_kneel", *TINY_SAC,
                      f"method.clip.cache_dir={tmp_path / 'empty'}")
    with pytest.raises(ConfigError, match=r"CLIP weights ViT-bigG-14/laion2b_s39b_b160k are not "
                                          r"on this machine.*method\.clip\.pretrained=") as info:
        run(cfg, tmp_path / "run", False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run" / "gen_000").exists()  # no run directory, no training


def test_textured_humanoid_renders_with_the_official_camera(tmp_path: Path) -> None:
    from rewardgen.runs.records import CandidateJob
    from rewardgen.tasks.spec import load_task
    from rewardgen.train.vision import render_overrides

    task = load_task("humanoid_kneel")
    vision = {"render": {"width": 48, "height": 48}, "env_kwargs": task.vision["textured"]}
    job = CandidateJob(task=task.name, out_dir=str(tmp_path), reward_kind="clip", vision=vision)
    frames = {}
    for name, overrides in (("textured", render_overrides(job)),
                            ("plain", render_overrides(dataclasses.replace(
                                job, vision={"render": vision["render"]})))):
        env = task.make_env(**overrides)
        env.reset(seed=0)
        frames[name] = env.render()
        if name == "textured":
            assert env.unwrapped.fullpath.endswith("envs/assets/vlmrm/humanoid_textured.xml")
            assert env.unwrapped.model.ntex >= 3  # sky, floor tiles, robot
            cam = env.unwrapped.mujoco_renderer.default_cam_config
            assert cam["azimuth"] == 180.0 and cam["distance"] == 3.5
        env.close()
    assert frames["textured"].shape == frames["plain"].shape == (48, 48, 3)
    assert np.abs(frames["textured"].astype(int) - frames["plain"].astype(int)).mean() > 10


@pytest.mark.parametrize(("override", "message"), [
    ("method.preference.stage2=both", "stage2='both' is not one of text, chat"),
    ("method.preference.label_parse=fuzzy", "label_parse='fuzzy' is not one of strict, lenient"),
    ("method.preference.image_size=32", "image_size=32 is below 47"),
])
def test_preference_options_fail_before_training(tmp_path: Path, override: str,
                                                 message: str) -> None:
    cfg = tiny_config("method=vlm_preference", "llm=openai", "llm.base_url=http://127.0.0.1:9",
                      "llm.api_key=t", override)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run", False)
    assert not (tmp_path / "run" / "gen_000").exists()
