"""The VLM preference reward of RL-VLM-F (Wang et al. 2024).

While the policy trains, pairs of stored frames are sent to a vision-language model which says
which frame better achieves the goal (:class:`~rewardgen.llm.vision.VLMLabeller`); answers of
"no preference" and identical pairs are dropped. An ensemble of small reward networks — CNNs on
frames, or MLPs on the State view — is fit to the labels with the Bradley–Terry loss
(P[a preferred to b] = sigmoid(r(a) - r(b))), stopping early once the training accuracy reaches a
threshold. The ensemble's mean is the reward; after every update the stored transitions are
relabelled (PPO's current rollout, SAC's replay buffer) by the callbacks in train/vision.py.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError
from rewardgen.render import FRAME_KEY
from rewardgen.results import CandidateJob
from rewardgen.tasks import TaskSpec

log = logging.getLogger(__name__)
REWARD_MODELS = ("cnn", "mlp")


def _cnn(image_size: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1),
    )


def _mlp(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1))


class PreferenceRewardModel:
    """An ensemble of reward networks fit to pairwise labels; ``model(inputs) -> (N,)`` rewards.

    The networks are built at the first fit (their input size comes from the data); until then
    the reward is zero. ``version`` grows with every fit, which tells the relabelling callback
    that stored rewards are stale.

    Args:
        kind: ``cnn`` (inputs are ``(N, H, W, 3)`` uint8 frames) or ``mlp`` (``(N, D)`` vectors).
        ensemble: number of networks (each fit on its own bootstrap sample of the pairs).
        image_size: frames are resized to this square before the CNN.
        lr: Adam learning rate.
        accuracy_threshold: stop fitting once the ensemble's training accuracy reaches this.
        max_epochs: upper bound on epochs per fit.
        device: torch device.
        seed: seeds initialisation and bootstrap samples.
    """

    def __init__(self, kind: str = "cnn", ensemble: int = 3, image_size: int = 64,
                 lr: float = 3e-4, accuracy_threshold: float = 0.97, max_epochs: int = 200,
                 device: str = "cpu", seed: int = 0) -> None:
        if kind not in REWARD_MODELS:
            raise ConfigError(f"method.preference.reward_model {kind!r} is not one of {REWARD_MODELS}")
        if ensemble < 1 or image_size < 16 or max_epochs < 1:
            raise ConfigError(
                f"method.preference: ensemble={ensemble}, image_size={image_size}, "
                f"max_epochs={max_epochs}; need ensemble >= 1, image_size >= 16, max_epochs >= 1"
            )
        self.kind, self.size, self.lr = kind, image_size, lr
        self.n_members, self.threshold, self.max_epochs = ensemble, accuracy_threshold, max_epochs
        self.device = device
        self.members: list[nn.Module] = []
        self.version = 0
        self._gen = torch.Generator().manual_seed(seed)
        self._rng = np.random.default_rng(seed)

    def _tensor(self, inputs: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(inputs), device=self.device)
        if self.kind == "mlp":
            return x.float().reshape(len(x), -1)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=True)

    def _build(self, example: torch.Tensor) -> None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self._gen)))
        make = (lambda: _mlp(example.shape[1])) if self.kind == "mlp" else (lambda: _cnn(self.size))
        self.members = [make().to(self.device) for _ in range(self.n_members)]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).squeeze(-1) for m in self.members])  # (members, N)

    @torch.no_grad()
    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        if not self.members:
            return np.zeros(len(inputs), dtype=np.float32)
        out = [self._forward(self._tensor(inputs[i : i + 256])).mean(0)
               for i in range(0, len(inputs), 256)]
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def accuracy(self, first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> float:
        """Share of pairs where the ensemble mean prefers the labelled frame."""
        preferred_first = self(first) > self(second)
        return float(np.mean(preferred_first == (labels == 0)))

    def fit(self, first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Fit every member with the Bradley–Terry loss; label 0: ``first`` preferred.

        Returns ``{"accuracy", "epochs", "pairs"}``.
        """
        if not (len(first) == len(second) == len(labels)) or not len(labels):
            raise ConfigError(f"fit needs equal, non-empty pair arrays, got {len(first)}, "
                              f"{len(second)}, {len(labels)}")
        xa, xb = self._tensor(first), self._tensor(second)
        target = torch.as_tensor(labels == 0, dtype=torch.float32, device=self.device)
        if not self.members:
            self._build(xa)
        optims = [torch.optim.Adam(m.parameters(), lr=self.lr) for m in self.members]
        samples = [torch.as_tensor(self._rng.integers(0, len(labels), len(labels)))
                   for _ in self.members]
        epochs, accuracy = 0, 0.0
        for epochs in range(1, self.max_epochs + 1):  # noqa: B007 - reported below
            for member, optim, idx in zip(self.members, optims, samples, strict=True):
                for batch in idx[torch.randperm(len(idx), generator=self._gen)].split(64):
                    logits = member(xa[batch]).squeeze(-1) - member(xb[batch]).squeeze(-1)
                    loss = F.binary_cross_entropy_with_logits(logits, target[batch])
                    optim.zero_grad()
                    loss.backward()
                    optim.step()
            accuracy = self.accuracy(first, second, labels)
            if accuracy >= self.threshold:
                break
        self.version += 1
        return {"accuracy": accuracy, "epochs": float(epochs), "pairs": float(len(labels))}


class PreferenceCallback(BaseCallback):
    """Query the VLM on a schedule, refit the reward model and have stored transitions relabelled.

    Every ``steps_between_rounds`` env steps (the first after ``first_round_after``), draws
    ``pairs_per_round`` pairs from the last ``capacity`` stored frames, asks the labeller while
    the total ``budget`` of queries lasts, keeps the decided labels and refits the model.

    Args:
        model: the reward model the VecEnv wrapper scores with.
        labeller: anything with ``label(frame_a, frame_b) -> 0 | 1 | None``.
        key: the info entry of the model's inputs (frames or State vectors).
        schedule: ``method.preference`` as a dict.
        seed: pair sampling seed.
    """

    def __init__(self, model: PreferenceRewardModel, labeller: Any, key: str,
                 schedule: dict[str, Any], seed: int = 0) -> None:
        super().__init__()
        self.reward_model, self.labeller, self.key = model, labeller, key
        self.pairs_per_round = int(schedule.get("pairs_per_round", 16))
        self.every = int(schedule.get("steps_between_rounds", 5000))
        self.budget = int(schedule.get("budget", 256))
        if self.pairs_per_round < 1 or self.every < 1 or self.budget < 0:
            raise ConfigError(
                f"method.preference: pairs_per_round={self.pairs_per_round}, "
                f"steps_between_rounds={self.every}, budget={self.budget}; need >= 1, >= 1, >= 0"
            )
        self.next_round = int(schedule.get("first_round_after", 1000))
        self.stored: deque[tuple[np.ndarray, np.ndarray]] = deque(
            maxlen=max(2, int(schedule.get("capacity", 10_000))))
        self.first: list[np.ndarray] = []
        self.second: list[np.ndarray] = []
        self.labels: list[int] = []
        self.asked = self.dropped = self.rounds = 0
        self.fits: list[dict[str, float]] = []
        self.relabeller: Any = None  # VisionRewardCallback: relabels SAC's replay after a fit
        self._rng = np.random.default_rng(seed)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            frame = info.get(FRAME_KEY)
            if frame is not None and info.get(self.key) is not None:
                self.stored.append((frame, info[self.key]))
        if self.num_timesteps >= self.next_round:
            while self.next_round <= self.num_timesteps:
                self.next_round += self.every
            self.query_round()
        return True

    def query_round(self) -> int:
        """Ask for one round of labels and refit; returns the number of labels kept."""
        n = min(self.pairs_per_round, self.budget - self.asked)
        if n <= 0 or len(self.stored) < 2:
            return 0
        kept = 0
        for _ in range(n):
            i, j = self._rng.choice(len(self.stored), size=2, replace=False)
            (fa, xa), (fb, xb) = self.stored[i], self.stored[j]
            self.asked += 1
            label = self.labeller.label(fa, fb)
            if label is None:
                self.dropped += 1
                continue
            self.first.append(xa)
            self.second.append(xb)
            self.labels.append(int(label))
            kept += 1
        self.rounds += 1
        if self.labels:
            stats = self.reward_model.fit(np.stack(self.first), np.stack(self.second),
                                          np.asarray(self.labels))
            self.fits.append(stats)
            if getattr(self, "model", None) is not None:  # outside SB3 (tests) there is no logger
                self.logger.record("rewardgen/preference_accuracy", stats["accuracy"])
                self.logger.record("rewardgen/preference_labels", len(self.labels))
            if self.relabeller is not None:
                self.relabeller.relabel_replay()
        log.info("preference round %d: %d asked, %d kept, %d labels in all", self.rounds, n, kept,
                 len(self.labels))
        return kept


def build_preference(
    task: TaskSpec, job: CandidateJob, venv: Any, device: str, key: str
) -> tuple[PreferenceRewardModel, PreferenceCallback]:
    """The reward model and its query callback for a ``vlm_preference`` job."""
    from rewardgen.llm.vision import VLMLabeller

    pref = dict(job.vision.get("preference", {}))
    model = PreferenceRewardModel(
        kind=str(pref.get("reward_model", "cnn")), ensemble=int(pref.get("ensemble", 3)),
        image_size=int(pref.get("image_size", 64)), lr=float(pref.get("lr", 3e-4)),
        accuracy_threshold=float(pref.get("accuracy_threshold", 0.97)),
        max_epochs=int(pref.get("max_epochs", 200)), device=device, seed=job.seed,
    )
    question = pref.get("question") or task.vision.get("question") or task.description
    llm = LLMConfig(**dict(job.vision.get("llm", {})))
    labeller = VLMLabeller(llm, task, str(question), seed=job.seed)
    return model, PreferenceCallback(model, labeller, key, pref, seed=job.seed)


__all__ = ["PreferenceCallback", "PreferenceRewardModel", "REWARD_MODELS", "build_preference"]
