"""Headless rollout videos with real MuJoCo rendering, a real SB3 policy and real encoders."""

from __future__ import annotations

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
from stable_baselines3 import PPO

from rewardgen.errors import ConfigError, RunDirError
from rewardgen.reporting.video import (
    generation_bests,
    load_policy,
    record_candidate,
    record_generation_bests,
    record_rollout,
    write_frames,
)
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import RunStore
from rewardgen.tasks.spec import load_task


def _policy_zip(path):
    """A real (untrained) PPO policy for the task, saved as a run would save it."""
    env = load_task("inverted_pendulum").make_env()
    PPO("MlpPolicy", env, n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8]},
        seed=0, device="cpu").save(str(path))
    env.close()


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with two generations; the best of each has a policy."""
    store = RunStore.create(tmp_path / "run", {"task": "inverted_pendulum", "method": "eureka",
                                               "config": {"rl": {"algo": "ppo"}}})
    fitness = {(0, 0): 0.4, (0, 1): 0.8, (1, 0): 1.2, (1, 1): None}
    for (gen, cand), fit in fitness.items():
        status = "ok" if fit is not None else "failed"
        store.write_result(gen, cand, CandidateResult(status=status, fitness=fit))
    _policy_zip(store.cand_dir(0, 1) / "policy.zip")
    _policy_zip(store.cand_dir(1, 0) / "policy.zip")
    return store.root


def test_record_rollout_random_actions(tmp_path):
    task = load_task("inverted_pendulum")
    rollout = record_rollout(task, tmp_path / "clip", None, max_steps=12, seed=3)
    assert rollout.frames <= 13 and rollout.fps == pytest.approx(25.0)
    mp4, gif = rollout.paths["mp4"], rollout.paths["gif"]
    reader = imageio.get_reader(mp4)
    assert reader.count_frames() == rollout.frames
    frame = reader.get_data(0)
    assert frame.shape == (224, 224, 3)  # the task's camera size
    assert frame.max() > 50  # rendered, not black
    frames = iio.imread(gif)
    assert frames.shape[0] == rollout.frames and frames.shape[1:3] == (224, 224)
    # an InvertedPendulum episode's fitness is its duration in seconds
    assert rollout.fitness == pytest.approx(0.04 * (rollout.frames - 1))


def test_record_generation_bests(run_dir):
    store = RunStore.open(run_dir)
    assert [r.label for r in generation_bests(store)] == ["gen_000/cand_01", "gen_001/cand_00"]
    rollouts = record_generation_bests(run_dir, max_steps=20)
    assert set(rollouts) == {"gen_000/cand_01", "gen_001/cand_00"}
    for label, rollout in rollouts.items():
        assert rollout.paths["mp4"] == run_dir / label / "video.mp4"
        assert rollout.paths["gif"].stat().st_size > 1000
        assert 2 <= rollout.frames <= 21
    # already there: nothing is recorded again
    again = record_candidate(run_dir, 0, 1)
    assert again.frames == 0 and again.paths["mp4"].is_file()


def test_refusals(run_dir, tmp_path):
    with pytest.raises(RunDirError, match="has no policy.zip"):
        record_candidate(run_dir, 0, 0)
    with pytest.raises(ConfigError, match="max_steps must be at least 1"):
        record_rollout(load_task("inverted_pendulum"), tmp_path / "x", max_steps=0)
    with pytest.raises(ConfigError, match="not among"):
        write_frames([np.zeros((8, 8, 3), np.uint8)], tmp_path / "x", 25.0, ("avi",))
    with pytest.raises(ConfigError, match="no frames"):
        write_frames([], tmp_path / "x", 25.0)
    with pytest.raises(ConfigError, match="is not one of"):
        load_policy(run_dir / "gen_000/cand_01/policy.zip", "dqn")
    with pytest.raises(RunDirError, match="no policy at"):
        load_policy(tmp_path / "none.zip")
