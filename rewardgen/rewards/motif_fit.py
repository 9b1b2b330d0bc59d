"""Motif's reward-model fit: Bradley–Terry on the captioned episodes, ties at 0.5, a validation
split that stops it.

What Motif's ``scripts/train_reward.py`` does, on our data:

* **labels on the labelled items themselves.** Motif's reward of a pair element is the mean of
  the per-observation rewards over its sequence (``train_reward.py:233-235``); here an element
  is a captioned episode, so its reward is the mean of the network over the episode's States
  (``states_per_episode`` of them drawn afresh every step, all of them when 0), and the episode
  pair's label is fit as it is, never copied onto other pairs.
* **soft labels.** The target is the probability that the second episode is preferred: 0, 1,
  or 0.5 for a tie (``train_reward.py:237-241``); the loss is the cross-entropy of the
  softmax over the two rewards (``:187-188, 243-244``), i.e. binary cross-entropy of their
  difference against the soft target.
* **validation.** A seeded ``validation_share`` of the pairs (Motif: 20 %,
  ``train_reward.py:141-145``) is held out and its loss measured after every epoch
  (``:34-95``). Motif saves a checkpoint per epoch and the user picks one
  (``--checkpoint_num``); here the fit keeps the weights of the best validation loss and stops
  after ``patience`` epochs without improvement.

Accuracies are measured on non-tied pairs only (``train_reward.py:66-70``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from rewardgen.errors import ConfigError
from rewardgen.rewards.preference_model import PreferenceRewardModel

Progress = Callable[[str], None]


def split_pairs(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation pairs: ``floor(share * n)`` held out, at random.

    Example:
        >>> train, val = split_pairs(10, 0.2, seed=0)
        >>> len(train), len(val), sorted([*train, *val]) == list(range(10))
        (8, 2, True)
    """
    order = np.random.default_rng(seed).permutation(n)
    held = int(np.floor(share * n))
    return np.sort(order[held:]), np.sort(order[:held])


def unbounded(model: PreferenceRewardModel) -> None:
    """Drop the members' output ``tanh``: Motif's reward head is a plain linear layer
    (``rlaif/reward_model.py:40-49``), and a bounded one saturates on episodes it ranks
    first. The parameters keep their names, so a saved model loads into either."""
    import torch

    model.members = [
        torch.nn.Sequential(*list(m.children())[:-1])
        if isinstance(list(m.children())[-1], torch.nn.Tanh)
        else m
        for m in model.members
    ]
    model.optim = torch.optim.Adam([p for m in model.members for p in m.parameters()], lr=model.lr)


class EpisodeFit:
    """Fits the members of a :class:`PreferenceRewardModel` (``kind="mlp"``) to episode pairs.

    Args:
        episodes: one ``(steps, D)`` float array of flattened States per episode.
        pairs: ``(i, j, label)`` with label the probability that episode ``j`` is preferred.
        settings: ``method.*`` (``ensemble``, ``lr``, ``max_epochs``, ``batch_pairs``,
            ``states_per_episode``, ``validation_share``, ``patience``).
        seed: initialisation, split, batches and State draws.
    """

    def __init__(
        self,
        episodes: list[np.ndarray],
        pairs: list[tuple[int, int, float]],
        settings: dict[str, Any],
        seed: int,
    ) -> None:
        import torch

        if not pairs:
            raise ConfigError(
                "method=motif: no preference was kept (every answer was "
                "unreadable); ask more pairs (method.pairs) or check the LLM's "
                "answers in motif/preferences.json"
            )
        self.torch = torch
        self.episodes = [torch.as_tensor(np.asarray(e, dtype=np.float32)) for e in episodes]
        self.pairs = pairs
        self.per_episode = int(settings["states_per_episode"])
        self.batch = int(settings["batch_pairs"])
        self.max_epochs, self.patience = int(settings["max_epochs"]), int(settings["patience"])
        self.rng = np.random.default_rng(seed)
        self.model = PreferenceRewardModel(
            kind="mlp", ensemble=int(settings["ensemble"]), lr=float(settings["lr"]), seed=seed
        )
        self.model._build(np.zeros((1, self.episodes[0].shape[1]), dtype=np.float32))
        unbounded(self.model)
        self.train, self.val = split_pairs(len(pairs), float(settings["validation_share"]), seed)
        self._val_draw = self._draw()  # one fixed draw: the validation loss compares epochs

    def _draw(self) -> list[Any]:
        """The States that stand for each episode in one step."""
        if self.per_episode == 0:
            return list(self.episodes)
        return [
            e[self.rng.integers(0, len(e), min(self.per_episode, len(e)))] for e in self.episodes
        ]

    def _means(self, draw: list[Any], members: list[Any], needed: list[int]) -> Any:
        """``(members, episodes)`` mean rewards of the ``needed`` episodes (others 0)."""
        torch = self.torch
        sizes = [len(draw[k]) for k in needed]
        x = torch.cat([draw[k] for k in needed])
        out = torch.zeros(len(members), len(self.episodes))
        index = torch.repeat_interleave(torch.arange(len(needed)), torch.as_tensor(sizes))
        for m, member in enumerate(members):
            r = member(x).squeeze(-1)
            sums = torch.zeros(len(needed)).index_add(0, index, r)
            out[m, torch.as_tensor(needed)] = sums / torch.as_tensor(sizes, dtype=torch.float32)
        return out

    def _loss(self, draw: list[Any], rows: np.ndarray) -> tuple[Any, float, int]:
        """Summed members' soft-label loss over ``rows``, with correct and decided counts."""
        torch = self.torch
        i = torch.as_tensor([self.pairs[r][0] for r in rows])
        j = torch.as_tensor([self.pairs[r][1] for r in rows])
        target = torch.as_tensor([float(self.pairs[r][2]) for r in rows])
        needed = sorted({int(k) for k in [*i.tolist(), *j.tolist()]})
        means = self._means(draw, self.model.members, needed)
        logits = means[:, j] - means[:, i]  # log-odds that the second episode is preferred
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target.expand_as(logits), reduction="none"
            )
            .mean(1)
            .sum()
        )
        decided = (target == 0.0) | (target == 1.0)
        agree = ((logits.mean(0) > 0).float() == target)[decided]
        return loss, float(agree.sum()), int(decided.sum())

    def fit(self, progress: Progress | None = None) -> dict[str, Any]:
        """Train; keep the best-validation weights. Returns the fit's statistics."""
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)  # small batches: extra threads only spin (3x slower
        try:  # measured on a loaded 2-core machine)
            return self._fit(progress)
        finally:
            self.torch.set_num_threads(threads)

    def _fit(self, progress: Progress | None) -> dict[str, Any]:
        torch, optim = self.torch, self.model.optim
        assert optim is not None
        history: list[dict[str, float]] = []
        best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
        for epoch in range(1, self.max_epochs + 1):
            for m in self.model.members:
                m.train()
            order = self.rng.permutation(self.train)
            correct = decided = 0
            for start in range(0, len(order), self.batch):
                loss, c, d = self._loss(self._draw(), order[start : start + self.batch])
                optim.zero_grad()
                loss.backward()
                optim.step()
                correct, decided = correct + int(c), decided + d
            row = {"epoch": float(epoch), "train_accuracy": correct / decided if decided else 1.0}
            if len(self.val):
                with torch.no_grad():
                    loss, c, d = self._loss(self._val_draw, self.val)
                row.update(
                    validation_loss=float(loss) / len(self.model.members),
                    validation_accuracy=c / d if d else 1.0,
                )
                if row["validation_loss"] < best_loss - 1e-6:
                    best_loss, best_epoch, stale = row["validation_loss"], epoch, 0
                    best_state = [copy.deepcopy(m.state_dict()) for m in self.model.members]
                else:
                    stale += 1
            history.append(row)
            if progress is not None and (epoch == 1 or epoch % 10 == 0):
                shown = ", ".join(
                    f"{k.replace('_', ' ')} {v:.3f}" for k, v in row.items() if k != "epoch"
                )
                progress(f"motif: reward model epoch {epoch}/{self.max_epochs}: {shown}")
            if len(self.val) and stale >= self.patience:
                break
        if best_state is not None:
            for m, state in zip(self.model.members, best_state, strict=True):
                m.load_state_dict(state)
        for m in self.model.members:
            m.eval()
        return {
            "epochs": len(history),
            "best_epoch": best_epoch or len(history),
            "stopped_early": len(history) < self.max_epochs,
            "train_pairs": len(self.train),
            "validation_pairs": len(self.val),
            "ties": sum(1 for p in self.pairs if p[2] == 0.5),
            "validation_loss": None if best_state is None else best_loss,
            "history": history,
        }


__all__ = ["EpisodeFit", "Progress", "split_pairs", "unbounded"]
