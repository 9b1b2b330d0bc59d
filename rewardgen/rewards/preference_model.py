"""The VLM preference reward of RL-VLM-F (Wang et al. 2024).

While the policy trains, pairs of stored frames are sent to a vision-language model which says
which frame better achieves the goal (:class:`~rewardgen.llm.vision.VLMLabeller`); answers of
"no preference" and identical pairs are dropped. An ensemble of reward networks with RL-VLM-F's
shapes — on frames, its conv stack (kernels 5, 3, 3, 3; channels 16, 32, 64, 128; strides
3, 2, 2, 2; no padding), flattened (spatial layout kept), one linear layer and tanh; on the State
view, three LeakyReLU layers of 256 and tanh — is fit to the labels with the Bradley–Terry loss
(P[a preferred to b] = sigmoid(r(a) - r(b))), stopping early once the training accuracy exceeds a
threshold. The ensemble's mean, in [-1, 1], is the reward; after every update the stored
transitions are relabelled (PPO's current rollout, SAC's whole replay buffer) by the callbacks in
train/vision.py.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError
from rewardgen.runs.records import CandidateJob
from rewardgen.tasks.spec import TaskSpec
from rewardgen.vision.render import FRAME_KEY

log = logging.getLogger(__name__)
REWARD_MODELS = ("cnn", "mlp")
# RL-VLM-F's gen_image_net (reward_model.py, conv_net.py): padding 0, ReLU, no batch norm.
CONV_KERNELS = (5, 3, 3, 3)
CONV_CHANNELS = (16, 32, 64, 128)
CONV_STRIDES = (3, 2, 2, 2)
MLP_HIDDEN, MLP_LAYERS = 256, 3  # RL-VLM-F's gen_net (reward_model_H, reward_model_layers)
BATCH_SIZES = {"cnn": 64, "mlp": 128}  # RL-VLM-F's train_batch_size (image / state rewards)


def conv_output_size(image_size: int) -> int:
    """Side of the conv stack's output for a square input (0 when the input is too small)."""
    size = image_size
    for kernel, stride in zip(CONV_KERNELS, CONV_STRIDES, strict=True):
        if size < kernel:
            return 0
        size = (size - kernel) // stride + 1
    return size


def _fanin_init(weight: torch.Tensor) -> None:
    bound = 1.0 / math.sqrt(float(np.prod(weight.shape[1:])))
    nn.init.uniform_(weight, -bound, bound)


def _cnn(image_size: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for out, kernel, stride in zip(CONV_CHANNELS, CONV_KERNELS, CONV_STRIDES, strict=True):
        conv = nn.Conv2d(channels, out, kernel, stride=stride)
        _fanin_init(conv.weight)
        nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # Conv2d has a bias by default
        layers += [conv, nn.ReLU()]
        channels = out
    side = conv_output_size(image_size)
    last = nn.Linear(channels * side * side, 1)
    nn.init.uniform_(last.weight, -1e-3, 1e-3)  # RL-VLM-F's init_w
    nn.init.uniform_(last.bias, -1e-3, 1e-3)
    return nn.Sequential(*layers, nn.Flatten(), last, nn.Tanh())


def _mlp(dim: int) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(MLP_LAYERS):
        layers += [nn.Linear(dim, MLP_HIDDEN), nn.LeakyReLU()]
        dim = MLP_HIDDEN
    return nn.Sequential(*layers, nn.Linear(dim, 1), nn.Tanh())


class PreferenceRewardModel:
    """An ensemble of reward networks fit to pairwise labels; ``model(inputs) -> (N,)`` rewards.

    The networks are built at the first fit (their input size comes from the data); until then
    the reward is zero. They and their Adam optimiser persist across fits, as in RL-VLM-F.
    ``version`` grows with every fit, which tells the relabelling callback that stored rewards
    are stale.

    Args:
        kind: ``cnn`` (inputs are ``(N, H, W, 3)`` uint8 frames) or ``mlp`` (``(N, D)`` vectors).
        ensemble: number of networks.
        image_size: frames are resized to this square before the CNN (at least 47, the conv
            stack's smallest input).
        lr: Adam learning rate.
        accuracy_threshold: stop fitting once the members' mean training accuracy exceeds this.
        max_epochs: upper bound on epochs per fit (RL-VLM-F's ``reward_update``).
        bootstrap: fit each member on its own bootstrap sample of the pairs (our option);
            RL-VLM-F gives every member all pairs, each in its own random order.
        device: torch device.
        seed: seeds initialisation, shuffling and bootstrap samples.
    """

    def __init__(self, kind: str = "cnn", ensemble: int = 3, image_size: int = 224,
                 lr: float = 3e-4, accuracy_threshold: float = 0.97, max_epochs: int = 10,
                 bootstrap: bool = False, device: str = "cpu", seed: int = 0) -> None:
        if kind not in REWARD_MODELS:
            raise ConfigError(f"method.preference.reward_model {kind!r} is not one of {REWARD_MODELS}")
        if ensemble < 1 or max_epochs < 1:
            raise ConfigError(
                f"method.preference: ensemble={ensemble}, max_epochs={max_epochs}; need "
                "ensemble >= 1, max_epochs >= 1"
            )
        if kind == "cnn" and conv_output_size(image_size) < 1:
            raise ConfigError(
                f"method.preference.image_size={image_size} is too small for RL-VLM-F's conv "
                f"stack (kernels {CONV_KERNELS}, strides {CONV_STRIDES}); use 47 or more"
            )
        self.kind, self.size, self.lr = kind, image_size, lr
        self.n_members, self.threshold, self.max_epochs = ensemble, accuracy_threshold, max_epochs
        self.bootstrap, self.device = bootstrap, device
        self.batch_size = BATCH_SIZES[kind]
        self.members: list[nn.Module] = []
        self.optim: torch.optim.Optimizer | None = None
        self.version = 0
        self._gen = torch.Generator().manual_seed(seed)
        self._rng = np.random.default_rng(seed)

    def compact(self, inputs: np.ndarray) -> np.ndarray:
        """Inputs as the networks read them, stored small: frames resized to ``image_size``
        (uint8), State vectors as float32. Compact inputs pass through unchanged."""
        x = np.asarray(inputs)
        if self.kind == "mlp":
            return x.astype(np.float32, copy=False).reshape(len(x), -1)
        if x.shape[1:3] == (self.size, self.size):
            return x.astype(np.uint8, copy=False)
        out = [self._resize(torch.as_tensor(x[i : i + 256])) for i in range(0, len(x), 256)]
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size, 3), np.uint8)

    def _resize(self, frames: torch.Tensor) -> np.ndarray:
        y = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(self.size, self.size),
                          mode="bilinear", align_corners=False, antialias=True)
        return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def _tensor(self, compact: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(compact, device=self.device)
        if self.kind == "mlp":
            return x.float()
        return x.permute(0, 3, 1, 2).float() / 255.0

    def _build(self, example: np.ndarray) -> None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self._gen)))
        make = (lambda: _mlp(example.shape[1])) if self.kind == "mlp" else (lambda: _cnn(self.size))
        self.members = [make().to(self.device) for _ in range(self.n_members)]
        params = [p for m in self.members for p in m.parameters()]
        self.optim = torch.optim.Adam(params, lr=self.lr)  # one optimiser, as in RL-VLM-F

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).squeeze(-1) for m in self.members])  # (members, N)

    @torch.no_grad()
    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        if not self.members:
            return np.zeros(len(inputs), dtype=np.float32)
        out = [self._forward(self._tensor(self.compact(inputs[i : i + 256]))).mean(0)
               for i in range(0, len(inputs), 256)]
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def accuracy(self, first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> float:
        """Share of pairs where the ensemble mean prefers the labelled frame."""
        preferred_first = self(first) > self(second)
        return float(np.mean(preferred_first == (labels == 0)))

    def fit(self, first: np.ndarray, second: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Fit every member with the Bradley–Terry loss; label 0: ``first`` preferred.

        Each epoch, as in RL-VLM-F's ``train_reward``, walks every member through its pairs in
        its own random order in batches (64 pairs of frames, 128 of vectors), the members'
        losses summed under one optimiser; it stops once the members' mean accuracy over the
        epoch exceeds the threshold. Returns ``{"accuracy", "epochs", "pairs"}``.
        """
        if not (len(first) == len(second) == len(labels)) or not len(labels):
            raise ConfigError(f"fit needs equal, non-empty pair arrays, got {len(first)}, "
                              f"{len(second)}, {len(labels)}")
        xa, xb = self.compact(first), self.compact(second)
        target = torch.as_tensor(np.asarray(labels) == 0, dtype=torch.float32)
        if not self.members:
            self._build(xa)
        assert self.optim is not None
        n = len(target)
        samples = [torch.as_tensor(self._rng.integers(0, n, n)) if self.bootstrap
                   else torch.arange(n) for _ in self.members]
        epochs, accuracy = 0, 0.0
        for epochs in range(1, self.max_epochs + 1):  # noqa: B007 - reported below
            orders = [idx[torch.randperm(n, generator=self._gen)] for idx in samples]
            correct = [0] * len(self.members)
            for start in range(0, n, self.batch_size):
                loss = torch.zeros((), device=self.device)
                for k, (member, order) in enumerate(zip(self.members, orders, strict=True)):
                    batch = order[start : start + self.batch_size].numpy()
                    logits = (member(self._tensor(xa[batch])).squeeze(-1)
                              - member(self._tensor(xb[batch])).squeeze(-1))
                    want = target[batch].to(self.device)
                    loss = loss + F.binary_cross_entropy_with_logits(logits, want)
                    correct[k] += int(((logits >= 0).float() == want).sum())
                self.optim.zero_grad()
                loss.backward()
                self.optim.step()
            accuracy = float(np.mean(correct)) / n
            if accuracy > self.threshold:
                break
        self.version += 1
        return {"accuracy": accuracy, "epochs": float(epochs), "pairs": float(n)}


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
        self.pairs_per_round = int(schedule.get("pairs_per_round", 40))
        self.every = int(schedule.get("steps_between_rounds", 4000))
        self.budget = int(schedule.get("budget", 20_000))
        if self.pairs_per_round < 1 or self.every < 1 or self.budget < 0:
            raise ConfigError(
                f"method.preference: pairs_per_round={self.pairs_per_round}, "
                f"steps_between_rounds={self.every}, budget={self.budget}; need >= 1, >= 1, >= 0"
            )
        self.next_round = int(schedule.get("first_round_after", 10_000))
        self.stored: deque[tuple[np.ndarray, np.ndarray]] = deque(
            maxlen=max(2, int(schedule.get("capacity", 10_000))))
        self.first: list[np.ndarray] = []
        self.second: list[np.ndarray] = []
        self.labels: list[int] = []
        self.asked = self.dropped = self.rounds = 0
        self.fits: list[dict[str, float]] = []
        self.relabeller: Any = None  # VisionRewardCallback: relabels SAC's whole replay buffer
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
            self.first.append(self.reward_model.compact(xa[None])[0])
            self.second.append(self.reward_model.compact(xb[None])[0])
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
        image_size=int(pref.get("image_size", 224)), lr=float(pref.get("lr", 3e-4)),
        accuracy_threshold=float(pref.get("accuracy_threshold", 0.97)),
        max_epochs=int(pref.get("max_epochs", 10)), bootstrap=bool(pref.get("bootstrap", False)),
        device=device, seed=job.seed,
    )
    question = pref.get("question") or task.vision.get("question") or task.description
    llm = LLMConfig(**dict(job.vision.get("llm", {})))
    temperature = pref.get("temperature", 0.0)
    labeller = VLMLabeller(
        llm, task, str(question), seed=job.seed,
        temperature=None if temperature is None else float(temperature),
        stage2=str(pref.get("stage2", "text")), summary_model=pref.get("summary_model"),
        parse=str(pref.get("label_parse", "strict")),
    )
    return model, PreferenceCallback(model, labeller, key, pref, seed=job.seed)


__all__ = ["PreferenceCallback", "PreferenceRewardModel", "REWARD_MODELS", "build_preference"]
