"""CLIP reward: the VLM-RM formula on hand-made embeddings, batching, model loading, SB3 paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rewardgen.errors import ConfigError
from rewardgen.rewards.clip import (
    ClipReward,
    RunningNorm,
    clip_weights,
    judge_score,
    load_clip,
    projected_reward,
    projection,
    unit,
)
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from tests.train.helpers import train_and_evaluate_inline

open_clip = pytest.importorskip("open_clip")

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_model_config(folder: Path, name: str = "rg-tiny-test") -> Path:
    """A model-config JSON for a tiny randomly initialised CLIP (no download)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(TINY))
    return path


def tiny_clip_config(folder: Path, **overrides: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    cfg = {
        "model": str(tiny_model_config(folder)),
        "pretrained": None,
        "goal_prompts": ["a humanoid robot kneeling"],
        "baseline_prompts": ["a humanoid robot"],
        "alpha": 0.5,
        "batch_size": 8,
    }
    cfg.update(overrides)
    return cfg


# ---------------------------------------------------------------- the formula by hand
def test_projection_formula_by_hand() -> None:
    g = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 1.0, 0.0])
    alpha = 0.25
    d = np.array([1.0, -1.0, 0.0])
    p_hand = alpha * np.outer(d, d) / 2.0 + (1 - alpha) * np.eye(3)
    np.testing.assert_allclose(projection(g, b, alpha).numpy(), p_hand, atol=1e-7)
    x = unit(torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]))
    # row 0: x - g = (-0.4, 0.8, 0); (x - g) P by hand
    for row in range(2):
        v = x[row].numpy() - g.numpy()
        expected = 1 - 0.5 * float(np.sum((v @ p_hand) ** 2))
        got = float(projected_reward(x, g, projection(g, b, alpha))[row])
        assert got == pytest.approx(expected, abs=1e-6)


def test_alpha_zero_is_cosine_and_alpha_one_only_the_direction() -> None:
    rng = np.random.default_rng(0)
    x = unit(torch.tensor(rng.normal(size=(5, 8)), dtype=torch.float32))
    g = unit(torch.tensor(rng.normal(size=8), dtype=torch.float32))
    b = unit(torch.tensor(rng.normal(size=8), dtype=torch.float32))
    cos = (x @ g).numpy()
    np.testing.assert_allclose(projected_reward(x, g, projection(g, b, 0.0)).numpy(), cos,
                               atol=1e-6)
    d = (g - b) / (g - b).norm()
    along = ((x - g) @ d).numpy()
    np.testing.assert_allclose(projected_reward(x, g, projection(g, b, 1.0)).numpy(),
                               1 - 0.5 * along**2, atol=1e-6)


def test_projection_rejects_bad_alpha_and_zero_direction() -> None:
    g = torch.tensor([1.0, 0.0])
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\], got 1.5"):
        projection(g, -g, 1.5)
    with pytest.raises(ConfigError, match="embed identically"):
        projection(g, g.clone(), 0.5)
    assert torch.equal(projection(g, g.clone(), 0.0), torch.eye(2))


# ---------------------------------------------------------------- the model
def test_prompt_means_are_renormalised_and_cached(tmp_path: Path) -> None:
    cfg = tiny_clip_config(tmp_path, goal_prompts=["a kneeling robot", "a robot on its knees"])
    reward = ClipReward.from_config(cfg, {}, "cpu")
    each = reward.embed_prompts(cfg["goal_prompts"])
    np.testing.assert_allclose(reward.goal.numpy(), unit(each.mean(0)).numpy(), atol=1e-6)
    assert float(reward.goal.norm()) == pytest.approx(1.0, abs=1e-6)
    calls = []
    original = reward.net.encode_text
    reward.net.encode_text = lambda t: calls.append(len(t)) or original(t)
    reward.embed_prompts(["a kneeling robot", "a new prompt", "a kneeling robot"])
    assert calls == [1]  # only the unseen prompt is encoded


def test_reward_equals_formula_on_its_own_embeddings(tmp_path: Path) -> None:
    reward = ClipReward.from_config(tiny_clip_config(tmp_path, alpha=0.7), {}, "cpu")
    frames = np.random.default_rng(1).integers(0, 255, size=(3, 48, 64, 3), dtype=np.uint8)
    x = reward.embed_frames(frames).numpy()
    g, b = reward.goal.numpy(), reward.baseline.numpy()
    d = g - b
    p = 0.7 * np.outer(d, d) / d.dot(d) + 0.3 * np.eye(len(d))
    expected = 1 - 0.5 * np.sum(((x - g) @ p) ** 2, axis=1)
    np.testing.assert_allclose(reward(frames), expected, atol=1e-5)


def test_batched_equals_one_frame_at_a_time(tmp_path: Path) -> None:
    reward = ClipReward.from_config(tiny_clip_config(tmp_path, batch_size=4), {}, "cpu")
    frames = np.random.default_rng(2).integers(0, 255, size=(10, 40, 40, 3), dtype=np.uint8)
    batched = reward(frames)
    single = np.concatenate([reward(frames[i : i + 1]) for i in range(len(frames))])
    assert batched.shape == (10,)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert judge_score(reward, frames) == pytest.approx(float(batched.mean()), abs=1e-6)


def test_resize_keeps_aspect_ratio(tmp_path: Path) -> None:
    reward = ClipReward.from_config(tiny_clip_config(tmp_path), {}, "cpu")
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # a white centre square: the crop keeps exactly it
    x = reward.preprocess(wide[None])
    assert tuple(x.shape) == (1, 3, 32, 32)
    white = (1.0 - reward.preprocess.mean) / reward.preprocess.std
    torch.testing.assert_close(x[0, :, :, 8:24], white[0].expand(3, 32, 16), atol=0.05, rtol=0)


def test_local_checkpoint_loads_the_same_weights(tmp_path: Path) -> None:
    cfg = tiny_clip_config(tmp_path)
    net = load_clip(cfg["model"], None, "cpu")
    checkpoint = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), checkpoint)
    loaded = load_clip(cfg["model"], str(checkpoint), "cpu")
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_model_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'no-such-net' is not an open_clip model"):
        load_clip("no-such-net", None, "cpu")
    with pytest.raises(ConfigError, match="no such model-config file"):
        load_clip(str(tmp_path / "missing.json"), None, "cpu")
    model = str(tiny_model_config(tmp_path))
    with pytest.raises(ConfigError, match="'.*missing.pt': no such checkpoint file"):
        load_clip(model, str(tmp_path / "missing.pt"), "cpu")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot load CLIP weights"):
        load_clip(model, str(tmp_path / "garbage.pt"), "cpu")
    with pytest.raises(ConfigError, match="'nope' is neither a checkpoint file nor an open_clip "
                                          "tag of 'ViT-B-32'"):
        load_clip("ViT-B-32", "nope", "cpu")
    with pytest.raises(ConfigError, match="needs goal prompts"):
        ClipReward.from_config(tiny_clip_config(tmp_path, goal_prompts=[]), {}, "cpu")
    with pytest.raises(ConfigError, match="needs baseline prompts"):
        ClipReward.from_config(tiny_clip_config(tmp_path, baseline_prompts=[]), {}, "cpu")


def fake_hf_cache(root: Path, repo: str, filename: str) -> Path:
    """A Hugging Face hub cache holding one file, laid out as huggingface_hub writes it."""
    folder = root / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123456789abcdef")
    (snapshot / filename).write_bytes(b"stand-in weights")
    return snapshot / filename


def test_tagged_weights_come_from_the_local_cache_never_a_download(tmp_path: Path) -> None:
    """VLM-RM's default (ViT-bigG-14 laion2b) resolves to the cached file, or fails in one line
    naming the settings, without touching the network."""
    empty = tmp_path / "empty"
    with pytest.raises(ConfigError) as info:
        clip_weights("ViT-bigG-14", "laion2b_s39b_b160k", str(empty))
    message = str(info.value)
    assert "\n" not in message and "are not on this machine" in message
    assert "huggingface.co/laion/CLIP-ViT-bigG-14-laion2B-39B-b160k" in message
    assert "method.clip.pretrained=<its path>" in message and "method.clip.cache_dir=" in message
    assert "method.clip.model=ViT-B-32" in message
    cached = fake_hf_cache(tmp_path / "hf", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
                           "open_clip_pytorch_model.bin")
    path, tag = clip_weights("ViT-bigG-14", "laion2b_s39b_b160k", str(tmp_path / "hf"))
    assert path == str(cached) and tag["hf_hub"].startswith("laion/")
    assert clip_weights("ViT-B-32", str(cached)) == (str(cached), {})  # a path is used as is
    assert clip_weights("ViT-B-32", None) == (None, {})  # random weights


def test_task_prompts_are_the_default(tmp_path: Path) -> None:
    task = load_task("humanoid_kneel")
    cfg = tiny_clip_config(tmp_path, goal_prompts=None, baseline_prompts=None)
    reward = ClipReward.from_config(cfg, task.vision, "cpu")
    expected = unit(reward.embed_prompts(task.vision["goal_prompts"]).mean(0))
    torch.testing.assert_close(reward.goal, expected)


def test_running_norm_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    chunks = [rng.normal(2.0, 3.0, size=n) for n in (5, 17, 1)]
    norm = RunningNorm()
    for chunk in chunks:
        norm.update(chunk)
    everything = np.concatenate(chunks)
    assert norm.mean == pytest.approx(everything.mean())
    assert norm.var == pytest.approx(everything.var())


# ---------------------------------------------------------------- both ways into SB3
@pytest.mark.parametrize(("algo", "mode"), [("ppo", "step"), ("ppo", "deferred"),
                                            ("sac", "deferred")])
def test_clip_reward_trains_through_sb3(tmp_path: Path, algo: str, mode: str) -> None:

    hyper = {"policy_kwargs": {"net_arch": [8]}}
    if algo == "ppo":
        hyper.update(n_steps=32, batch_size=32, n_epochs=1)
    else:
        hyper.update(learning_starts=16, batch_size=16, train_freq=8, buffer_size=200)
    job = CandidateJob(
        task="inverted_pendulum", out_dir=str(tmp_path / "cand"), reward_kind="clip",
        timesteps=64, eval_freq=0, eval_episodes=1, max_episode_steps=20, device="cpu",
        rl={"algo": algo, "n_envs": 2, "hyperparams": hyper}, save_policy=False,
        tensorboard=False,
        vision={"render": {"width": 40, "height": 32, "frame_skip": 2},
                "clip": tiny_clip_config(tmp_path, mode=mode)},
    )
    result = train_and_evaluate_inline(job)
    assert result.status == "ok", result.reason + result.traceback
    assert result.env_steps >= 64
    assert result.fitness is not None
    if mode == "step":  # episode returns are the CLIP reward's, native kept apart
        assert result.episode_returns and all(-1.5 < r / n < 1.5 for r, n in
                                              zip(result.episode_returns,
                                                  result.episode_lengths, strict=True))
        assert result.episode_returns != result.native_returns


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_deferred_mode_relabels_the_whole_rollout(tmp_path: Path, algo: str) -> None:
    from rewardgen.train.sb3 import build_model, make_vec_env
    from rewardgen.train.vision import vision_stack

    hyper: dict[str, Any] = {"policy_kwargs": {"net_arch": [8]}}
    if algo == "ppo":
        hyper.update(n_steps=16, batch_size=32, n_epochs=1)
    else:
        hyper.update(learning_starts=100, batch_size=16, train_freq=8, buffer_size=100)
    job = CandidateJob(
        task="inverted_pendulum", out_dir=str(tmp_path), reward_kind="clip", device="cpu",
        max_episode_steps=10, rl={"algo": algo, "n_envs": 2, "hyperparams": hyper},
        vision={"render": {"width": 32, "height": 32},
                "clip": tiny_clip_config(tmp_path, mode="deferred")},
    )
    task = load_task("inverted_pendulum")
    venv, callbacks = vision_stack(task, job, make_vec_env(task, job, 2, seed=0), "cpu")
    model = build_model(job, venv, None)
    model.learn(32, callback=callbacks)
    relabel = callbacks[0]
    assert relabel.relabelled == 32  # 16 steps x 2 envs, scored in batches at rollout ends
    buffer = getattr(model, "rollout_buffer" if algo == "ppo" else "replay_buffer")
    rewards = buffer.rewards[:16]  # 16 vector steps either way
    assert np.all(np.abs(rewards) > 0.0)  # the env handed out zeros; the CLIP scores are in
    venv.close()
