"""RL-VLM-F reward: Bradley–Terry ensembles, query schedule and budget, relabelling, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardgen.errors import ConfigError
from rewardgen.rewards.preference_model import PreferenceCallback, PreferenceRewardModel
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import FakeOpenAIServer, preference_answerer
from tests.train.helpers import train_and_evaluate_inline


def bt_labels(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    return np.where(ra > rb, 0, 1)


def test_mlp_ensemble_fits_bradley_terry_and_stops_early() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    labels = bt_labels(a[:, 0], b[:, 0])  # the true reward is the first coordinate
    model = PreferenceRewardModel("mlp", ensemble=2, lr=3e-3, accuracy_threshold=0.9,
                                  max_epochs=100)
    assert np.all(model(a) == 0.0) and model.version == 0  # untrained: zero reward
    stats = model.fit(a, b, labels)
    assert stats["accuracy"] >= 0.9 and stats["epochs"] < 100 and model.version == 1
    test = rng.normal(size=(100, 4))
    assert np.corrcoef(model(test.astype(np.float32)), test[:, 0])[0, 1] > 0.8


def test_cnn_ensemble_learns_a_visual_preference() -> None:
    rng = np.random.default_rng(1)
    level_a, level_b = rng.integers(0, 255, 64), rng.integers(0, 255, 64)
    frames_a = np.broadcast_to(level_a[:, None, None, None], (64, 24, 24, 3)).astype(np.uint8)
    frames_b = np.broadcast_to(level_b[:, None, None, None], (64, 24, 24, 3)).astype(np.uint8)
    model = PreferenceRewardModel("cnn", ensemble=2, image_size=48, lr=3e-3,
                                  accuracy_threshold=0.95, max_epochs=150)
    stats = model.fit(frames_a, frames_b, bt_labels(level_a, level_b))
    assert stats["accuracy"] >= 0.95
    assert model(frames_a).shape == (64,)


def test_reward_model_config_errors() -> None:
    with pytest.raises(ConfigError, match="reward_model 'transformer' is not one of"):
        PreferenceRewardModel("transformer")
    with pytest.raises(ConfigError, match="need ensemble >= 1"):
        PreferenceRewardModel("mlp", ensemble=0)
    with pytest.raises(ConfigError, match="image_size=32 is too small for RL-VLM-F's conv stack"):
        PreferenceRewardModel("cnn", image_size=32)
    with pytest.raises(ConfigError, match="fit needs equal, non-empty"):
        PreferenceRewardModel("mlp").fit(np.zeros((2, 3)), np.zeros((1, 3)), np.zeros(2))


def test_cnn_has_rl_vlm_f_shapes_keeps_layout_and_is_bounded() -> None:
    """RL-VLM-F's gen_image_net: conv 5/3/3/3, channels 16-128, strides 3/2/2/2, no padding,
    flatten (not pooling), linear, tanh."""
    from torch import nn

    model = PreferenceRewardModel("cnn", ensemble=1, image_size=96, lr=3e-3, max_epochs=30,
                                  accuracy_threshold=1.0, seed=0)
    left = np.zeros((96, 96, 3), np.uint8)
    right = left.copy()
    left[44:52, 32:40] = 255  # the same bright patch, moved 24 px (the old net's stride x 3)
    right[44:52, 56:64] = 255
    pairs = 4
    stats = model.fit(np.stack([left] * pairs), np.stack([right] * pairs), np.zeros(pairs))
    net = model.members[0]
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3, 3]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert [c.stride[0] for c in convs] == [3, 2, 2, 2]
    assert all(c.padding == (0, 0) for c in convs)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in net)
    assert isinstance(net[-3], nn.Flatten) and isinstance(net[-1], nn.Tanh)
    assert net[-2].in_features == 128 * 3 * 3  # 96 -> 31 -> 15 -> 7 -> 3
    # only the patch's position differs, and the model tells the two frames apart
    r_left, r_right = model(left[None])[0], model(right[None])[0]
    assert stats["accuracy"] == 1.0 and r_left - r_right > 0.1
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(32, 96, 96, 3), dtype=np.uint8)
    rewards = model(np.concatenate([noise, np.full((2, 96, 96, 3), 255, np.uint8)]))
    assert np.all(np.abs(rewards) <= 1.0)


def test_members_see_every_pair_unless_bootstrap() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    labels = bt_labels(a[:, 0], b[:, 0])
    plain = PreferenceRewardModel("mlp", ensemble=2, max_epochs=1, seed=0)
    boot = PreferenceRewardModel("mlp", ensemble=2, max_epochs=1, bootstrap=True, seed=0)
    assert plain.fit(a, b, labels)["pairs"] == boot.fit(a, b, labels)["pairs"] == 40
    assert not np.allclose(plain(a), boot(a))  # different samples, different fits


class ScriptedLabeller:
    """Labels by the first input value; every third pair answers no preference."""

    def __init__(self) -> None:
        self.calls = 0

    def label(self, first: np.ndarray, second: np.ndarray) -> int | None:
        self.calls += 1
        if self.calls % 3 == 0 or np.array_equal(first, second):
            return None
        return 0 if first.ravel()[0] > second.ravel()[0] else 1


def test_query_rounds_follow_schedule_and_budget() -> None:
    schedule = {"pairs_per_round": 4, "steps_between_rounds": 10, "first_round_after": 5,
                "budget": 10, "capacity": 50}
    model = PreferenceRewardModel("mlp", ensemble=1, max_epochs=5)
    labeller = ScriptedLabeller()
    callback = PreferenceCallback(model, labeller, "x", schedule)
    rng = np.random.default_rng(0)
    rounds_at = []
    for step in range(1, 41):
        callback.num_timesteps = step
        callback.locals = {"infos": [{"rewardgen_frame": np.full((2, 2, 3), step, np.uint8),
                                      "x": rng.normal(size=3)}]}
        before = callback.rounds
        callback._on_step()
        if callback.rounds > before:
            rounds_at.append(step)
    assert rounds_at == [5, 15, 25]  # the fourth round (35) finds the budget spent
    assert callback.asked == labeller.calls == 10  # 4 + 4 + 2
    assert callback.dropped == 3 and len(callback.labels) == 7
    assert model.version == 3


def test_schedule_errors() -> None:
    with pytest.raises(ConfigError, match="pairs_per_round=0"):
        PreferenceCallback(PreferenceRewardModel("mlp"), ScriptedLabeller(), "x",
                           {"pairs_per_round": 0})


def _job(tmp_path: Path, server: FakeOpenAIServer, algo: str, reward_model: str) -> CandidateJob:
    hyper: dict[str, Any] = {"policy_kwargs": {"net_arch": [8]}}
    if algo == "ppo":
        hyper.update(n_steps=32, batch_size=32, n_epochs=1)
    else:
        hyper.update(learning_starts=16, batch_size=16, train_freq=8, buffer_size=500)
    return CandidateJob(
        task="inverted_pendulum", out_dir=str(tmp_path / "cand"), reward_kind="vlm_preference",
        timesteps=96, eval_freq=0, eval_episodes=1, max_episode_steps=20, device="cpu",
        rl={"algo": algo, "n_envs": 2, "hyperparams": hyper}, save_policy=False,
        tensorboard=False,
        vision={
            "render": {"width": 24, "height": 24, "frame_skip": 1},
            "preference": {"reward_model": reward_model, "ensemble": 2, "image_size": 48,
                           "pairs_per_round": 4, "steps_between_rounds": 32,
                           "first_round_after": 16, "budget": 8, "max_epochs": 5},
            "llm": {"provider": "openai", "model": "fake-vlm", "base_url": server.base_url,
                    "api_key": "t", "cache_dir": str(tmp_path / "cache"), "max_retries": 0},
        },
    )


def pole_left(first: np.ndarray, second: np.ndarray) -> int | None:
    """A loopback judge that prefers the frame whose left half is brighter (or says -1)."""
    la, lb = first[:, : first.shape[1] // 2].mean(), second[:, : second.shape[1] // 2].mean()
    return None if la == lb else (0 if la > lb else 1)


def test_vlm_preference_trains_end_to_end(tmp_path: Path) -> None:

    with FakeOpenAIServer(answerer=preference_answerer(pole_left)) as server:
        result = train_and_evaluate_inline(_job(tmp_path, server, "ppo", "cnn"))
        assert result.status == "ok", result.reason + result.traceback
        assert result.env_steps >= 96 and result.fitness is not None
        assert 0 < len(server.chat_requests) <= 2 * 8  # two stages per pair, within the budget


@pytest.mark.parametrize("buffer_size", [400, 40])
def test_sac_whole_replay_buffer_is_relabelled_after_each_fit(tmp_path: Path,
                                                              buffer_size: int) -> None:
    """RL-VLM-F relabels the whole replay buffer after every reward update: every stored
    transition, beyond the query pool's ``capacity`` and after the buffer wrapped around."""
    from rewardgen.train.sb3 import build_model, make_vec_env
    from rewardgen.train.vision import vision_stack

    with FakeOpenAIServer(answerer=preference_answerer(pole_left)) as server:
        job = _job(tmp_path, server, "sac", "mlp")
        job.vision["preference"]["capacity"] = 8  # the query pool: far smaller than the buffer
        job.rl["hyperparams"]["buffer_size"] = buffer_size
        task = load_task(job.task)
        venv, callbacks = vision_stack(task, job, make_vec_env(task, job, 2, seed=0), "cpu")
        relabel, pref = callbacks
        model = build_model(job, venv, None)
        model.learn(64, callback=callbacks)
        assert pref.fits, "no reward-model update happened"
        buffer = model.replay_buffer  # type: ignore[attr-defined]
        filled = buffer.buffer_size if buffer.full else buffer.pos
        assert filled * 2 > 8 and buffer.full == (buffer_size == 40)
        before = buffer.rewards[:filled].copy()
        count = relabel.relabelled
        fits = len(pref.fits)
        pref.budget += 4
        pref.query_round()  # its 4 new pairs may all be ties on 24 px frames (no label kept)
        assert len(pref.fits) == fits + 1  # one more fit on all labels: the replay is relabelled
        venv.close()
    after = buffer.rewards[:filled]
    assert relabel.relabelled - count == filled * 2
    assert np.all(after != before)  # every stored transition was rescored
    stored = relabel.replay_inputs.get(np.arange(filled))
    expected = pref.reward_model(stored.reshape(-1, stored.shape[-1])).reshape(filled, 2)
    np.testing.assert_allclose(after, expected, atol=1e-6)
