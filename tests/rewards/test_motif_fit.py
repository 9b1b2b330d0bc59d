"""Motif's fit: episode-pair labels as they are, ties at 0.5, a validation split that stops it."""

from __future__ import annotations

import numpy as np
import pytest

from rewardgen.errors import ConfigError
from rewardgen.rewards.motif_fit import EpisodeFit, split_pairs

SETTINGS = {
    "ensemble": 1,
    "lr": 3e-3,
    "max_epochs": 60,
    "batch_pairs": 8,
    "states_per_episode": 8,
    "validation_share": 0.0,
    "patience": 5,
}


def _episodes(n: int = 6, steps: int = 20) -> list[np.ndarray]:
    """Episode k's States have their first feature near k."""
    rng = np.random.default_rng(0)
    return [
        np.c_[k + 0.1 * rng.standard_normal(steps), rng.standard_normal((steps, 2))].astype(
            np.float32
        )
        for k in range(n)
    ]


def _episode_rewards(fit: EpisodeFit, episodes: list[np.ndarray]) -> list[float]:
    return [float(fit.model(ep).mean()) for ep in episodes]


def test_ties_are_trained_as_half_not_dropped() -> None:
    episodes = _episodes(3)
    decided = [(0, 1, 1.0), (1, 0, 0.0)]  # episode 1 over episode 0
    tie = EpisodeFit(episodes, [*decided, (1, 2, 0.5), (2, 1, 0.5)], SETTINGS, seed=0)
    tie_stats = tie.fit()
    dropped = EpisodeFit(episodes, decided, SETTINGS, seed=0)
    dropped.fit()
    r_tie, r_drop = _episode_rewards(tie, episodes), _episode_rewards(dropped, episodes)
    assert r_tie[1] > r_tie[0]
    # the tie pulls episode 2's reward to episode 1's; without it nothing constrains episode 2
    assert abs(r_tie[2] - r_tie[1]) < 0.25 * abs(r_drop[2] - r_drop[1])
    assert tie_stats["ties"] == 2 and tie_stats["train_pairs"] == 4


def test_labels_fit_the_episodes_themselves() -> None:
    episodes = _episodes(6)
    pairs = [(i, j, 1.0 if j > i else 0.0) for i in range(6) for j in range(6) if i != j]
    fit = EpisodeFit(episodes, pairs, {**SETTINGS, "states_per_episode": 0}, seed=0)
    stats = fit.fit()
    rewards = _episode_rewards(fit, episodes)
    assert rewards == sorted(rewards)  # the model orders the episodes as the labels do
    assert stats["history"][-1]["train_accuracy"] > 0.9


def test_the_validation_split_stops_the_fit_and_keeps_its_best_epoch() -> None:
    episodes = _episodes(12)
    rng = np.random.default_rng(1)  # labels that are noise: validation loss stops improving
    pairs = [(i, j, float(rng.integers(0, 2))) for i in range(12) for j in range(i + 1, 12)]
    settings = {**SETTINGS, "max_epochs": 200, "validation_share": 0.2, "patience": 4}
    fit = EpisodeFit(episodes, pairs, settings, seed=0)
    stats = fit.fit()
    assert stats["validation_pairs"] == int(0.2 * len(pairs)) and stats["stopped_early"]
    assert stats["epochs"] == stats["best_epoch"] + 4 < 200
    losses = [row["validation_loss"] for row in stats["history"]]
    assert stats["validation_loss"] == pytest.approx(min(losses))
    with np.errstate(all="ignore"):  # the kept weights are those of the best epoch
        import torch

        with torch.no_grad():
            loss, _, _ = fit._loss(fit._val_draw, fit.val)
    assert float(loss) == pytest.approx(min(losses), rel=1e-5)


def test_no_validation_runs_every_epoch_and_no_pair_is_refused() -> None:
    episodes = _episodes(3)
    stats = EpisodeFit(episodes, [(0, 1, 1.0)], {**SETTINGS, "max_epochs": 7}, 0).fit()
    assert stats["epochs"] == 7 and not stats["stopped_early"] and stats["validation_pairs"] == 0
    with pytest.raises(ConfigError, match="no preference was kept"):
        EpisodeFit(episodes, [], SETTINGS, 0)


def test_split_pairs_is_seeded_and_disjoint() -> None:
    train, val = split_pairs(50, 0.2, seed=3)
    assert len(val) == 10 and not set(train) & set(val)
    again = split_pairs(50, 0.2, seed=3)
    assert list(again[1]) == list(val)
