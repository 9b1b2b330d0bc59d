"""The CLIP zero-shot reward of VLM-RM (Rocamonde et al. 2023).

With unit-norm embeddings x (frame), g (goal) and b (baseline), d = g - b and
P = alpha * d d^T / ||d||^2 + (1 - alpha) * I, the reward is

    reward = 1 - 1/2 * ||(x - g) P||^2

``alpha = 0`` gives ``x . g`` (plain cosine similarity, since x and g are unit vectors);
``alpha = 1`` keeps only the component of x - g along the goal-baseline direction. g and b are
the means of the (unit) prompt embeddings, normalised again so the alpha = 0 identity holds.

Any open_clip model works: a name (``ViT-bigG-14``, VLM-RM's default; ``ViT-B-32``) or the path of
a model-config JSON, with a pretrained tag (``laion2b_s39b_b160k``, ``openai``) whose weights are
already cached on this machine, a local checkpoint path, or None (random weights, for tests).
Nothing is downloaded: missing weights are a one-line ConfigError naming the settings to fix. Frames are resized keeping their aspect ratio (shorter side to the model's
input size, then a centre crop), in one batched forward pass on the GPU when there is one.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rewardgen.errors import ConfigError

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the formula
def projection(goal: torch.Tensor, baseline: torch.Tensor, alpha: float) -> torch.Tensor:
    """P = alpha * d d^T / ||d||^2 + (1 - alpha) I with d = goal - baseline (both 1-D)."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"method.clip.alpha must be in [0, 1], got {alpha}")
    d = (goal - baseline).reshape(-1, 1)
    dim = d.shape[0]
    eye = torch.eye(dim, dtype=goal.dtype, device=goal.device)
    norm2 = float((d * d).sum())
    if norm2 == 0.0:
        if alpha > 0.0:
            raise ConfigError(
                "goal and baseline prompts embed identically, so the direction d = g - b is "
                "zero; use different baseline prompts or method.clip.alpha=0"
            )
        return eye
    return alpha * (d @ d.T) / norm2 + (1.0 - alpha) * eye


def projected_reward(
    x: torch.Tensor, goal: torch.Tensor, proj: torch.Tensor
) -> torch.Tensor:
    """``1 - 0.5 * ||(x - g) P||^2`` for each row of ``x`` (rows unit-norm, as is ``g``)."""
    y = (x - goal.reshape(1, -1)) @ proj
    return 1.0 - 0.5 * (y * y).sum(dim=-1)


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# ---------------------------------------------------------------- model loading
HF_WEIGHTS = "open_clip_pytorch_model.bin"  # open_clip's file name on the Hugging Face hub
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _model_name(model: str) -> str:
    return Path(model).stem if model.endswith(".json") else model


def _cached_file(tag_cfg: dict[str, Any], cache_dir: str | None) -> tuple[str | None, str]:
    """The tag's checkpoint if it is already on this machine, and where it would come from."""
    hub = str(tag_cfg.get("hf_hub") or "")
    source = ""
    if hub:
        repo, filename = os.path.split(hub)  # "org/model/" means open_clip's default file
        filename = filename or HF_WEIGHTS
        source = f"huggingface.co/{repo} ({filename})"
        names = [filename]  # open_clip tries a .safetensors twin first
        if filename == HF_WEIGHTS:
            names.insert(0, "open_clip_model.safetensors")
        elif filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            names = []
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found, source
    url = str(tag_cfg.get("url") or "")
    if url:
        path = Path(cache_dir or "~/.cache/clip").expanduser() / os.path.basename(url)
        if path.is_file():
            return str(path), url
        source = source or url
    return None, source


def clip_weights(model: str, pretrained: str | None, cache_dir: str | None = None
                 ) -> tuple[str | None, dict[str, Any]]:
    """The checkpoint file of ``pretrained`` on this machine, and the tag's settings.

    Nothing is downloaded: a tag (``laion2b_s39b_b160k``) must already be in the Hugging Face
    cache (``cache_dir``, else ``$HF_HUB_CACHE`` / ``~/.cache/huggingface/hub``) or, for
    URL-only tags, in ``cache_dir`` (else ``~/.cache/clip``); a path must be a file. Returns
    ``(None, {})`` for ``pretrained=None`` (random weights, for tests).

    Raises:
        ConfigError: one line naming the missing weights and the settings that fix it.
    """
    if not pretrained:
        return None, {}
    import open_clip

    name = _model_name(model)
    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path), {}
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained) if not model.endswith(".json") else {}
    if not tag_cfg:
        if os.sep in pretrained or pretrained.endswith(_CHECKPOINT_SUFFIXES):
            raise ConfigError(f"method.clip.pretrained={pretrained!r}: no such checkpoint file")
        tags = [t for n, t in open_clip.list_pretrained() if n == name]
        raise ConfigError(f"method.clip.pretrained={pretrained!r} is neither a checkpoint file nor "
                          f"an open_clip tag of {name!r} (its tags: {tags})")
    found, source = _cached_file(tag_cfg, cache_dir)
    if found is None:
        raise ConfigError(
            f"CLIP weights {name}/{pretrained} are not on this machine and rewardgen downloads "
            f"nothing at run time: put the checkpoint from {source} on disk and set "
            f"method.clip.pretrained=<its path>, or method.clip.cache_dir=<the cache folder "
            "holding it>; on a CPU pick a small model instead, e.g. method.clip.model=ViT-B-32 "
            "method.clip.pretrained=<path of its checkpoint>"
        )
    return found, dict(tag_cfg)


def load_clip(model: str, pretrained: str | None, device: str, cache_dir: str | None = None) -> Any:
    """An open_clip model in eval mode on ``device``, from weights already on this machine.

    Args:
        model: an open_clip model name, or a path to a model-config JSON (its file stem becomes
            the model name).
        pretrained: an open_clip pretrained tag (found in the local cache, see
            :func:`clip_weights`), a local checkpoint path, or None (random).
        device: torch device string.
        cache_dir: where tagged weights are cached.

    Raises:
        ConfigError: unknown model name or tag, weights not on this machine, or an unreadable
            checkpoint.
    """
    try:
        import open_clip
    except ImportError as e:
        raise ConfigError(
            "method=clip needs open_clip: pip install 'rewardgen[vision]'"
        ) from e
    name = model
    if model.endswith(".json"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConfigError(f"method.clip.model={model!r}: no such model-config file")
        open_clip.add_model_config(path)
        name = path.stem
    if name not in open_clip.list_models():
        raise ConfigError(
            f"method.clip.model={model!r} is not an open_clip model; see open_clip.list_models() "
            "(e.g. ViT-B-32, ViT-L-14, ViT-bigG-14) or pass a model-config JSON path"
        )
    checkpoint, tag_cfg = clip_weights(model, pretrained, cache_dir)
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode")
                  if k in tag_cfg}
    try:
        net = open_clip.create_model(
            name, pretrained=checkpoint, device=device,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
            force_preprocess_cfg=preprocess or None,
        )
    except (RuntimeError, OSError, ValueError, KeyError, pickle.UnpicklingError) as e:
        raise ConfigError(
            f"cannot load CLIP weights {pretrained!r} for {name!r}: {e}; use a checkpoint of "
            "that model (open_clip state dict, .bin/.pt/.safetensors)"
        ) from e
    net.eval()
    return net


class _Preprocess:
    """Aspect-preserving resize (shorter side), centre crop, CLIP mean/std — on the device."""

    def __init__(self, net: Any, device: str) -> None:
        cfg = getattr(net.visual, "preprocess_cfg", {}) or {}
        size = getattr(net.visual, "image_size", 224)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.device = device

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(frames, device=self.device).permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[-2:]
        th, tw = self.size
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0.0, 1.0)
        top, left = (nh - th) // 2, (nw - tw) // 2
        x = x[..., top : top + th, left : left + tw]
        return (x - self.mean) / self.std


class RunningNorm:
    """Running mean and variance (Chan et al. parallel update) to normalise rewards."""

    def __init__(self, eps: float = 1e-8) -> None:
        self.mean, self.var, self.count, self.eps = 0.0, 1.0, 0.0, eps

    def update(self, values: np.ndarray) -> None:
        n = float(values.size)
        if n == 0:
            return
        mean, var = float(values.mean()), float(values.var())
        delta, total = mean - self.mean, self.count + n
        m2 = self.var * self.count + var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var, self.count = m2 / total, total

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / np.sqrt(self.var + self.eps)


# ---------------------------------------------------------------- the reward model
class ClipReward:
    """Scores batches of frames by the VLM-RM reward; callable as ``reward(frames) -> (N,)``.

    Args:
        net: an open_clip model (see :func:`load_clip`).
        tokenizer: its tokenizer (``open_clip.get_tokenizer(name)``).
        goal_prompts: descriptions of the goal (their embeddings are averaged).
        baseline_prompts: descriptions of the default state (the direction is g - b).
        alpha: projection strength in [0, 1].
        device: where the forward passes run.
        batch_size: frames per forward pass.
        normalize: return running-normalised rewards (statistics updated on every call).
    """

    def __init__(
        self,
        net: Any,
        tokenizer: Any,
        goal_prompts: Sequence[str],
        baseline_prompts: Sequence[str],
        alpha: float,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = False,
    ) -> None:
        if not goal_prompts:
            raise ConfigError(
                "CLIP reward needs goal prompts: set method.clip.goal_prompts or the task's "
                "vision.goal_prompts"
            )
        if not baseline_prompts and alpha > 0:
            raise ConfigError(
                f"method.clip.alpha={alpha} needs baseline prompts: set "
                "method.clip.baseline_prompts or the task's vision.baseline_prompts, or alpha=0"
            )
        if batch_size < 1:
            raise ConfigError(f"method.clip.batch_size must be at least 1, got {batch_size}")
        self.net, self.tokenizer, self.device = net, tokenizer, device
        self.batch_size = batch_size
        self.alpha = alpha
        self._text_cache: dict[str, torch.Tensor] = {}
        self.goal = unit(self.embed_prompts(goal_prompts).mean(dim=0))
        base = self.embed_prompts(baseline_prompts).mean(0) if baseline_prompts else self.goal
        self.baseline = unit(base)
        self.proj = projection(self.goal, self.baseline, alpha)
        self.preprocess = _Preprocess(net, device)
        self.norm = RunningNorm() if normalize else None

    @classmethod
    def from_config(
        cls, clip: dict[str, Any], vision: dict[str, Any], device: str
    ) -> ClipReward:
        """Build from ``method.clip`` (as a dict) and the task's ``vision`` mapping."""
        import open_clip

        net = load_clip(clip["model"], clip.get("pretrained"), device, clip.get("cache_dir"))
        name = Path(clip["model"]).stem if clip["model"].endswith(".json") else clip["model"]
        goal = clip.get("goal_prompts") or vision.get("goal_prompts") or []
        baseline = clip.get("baseline_prompts") or vision.get("baseline_prompts") or []
        return cls(
            net, open_clip.get_tokenizer(name), list(goal), list(baseline),
            float(clip.get("alpha", 0.5)), device, int(clip.get("batch_size", 64)),
            bool(clip.get("normalize", False)),
        )

    @torch.no_grad()
    def embed_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings, one row per prompt (each prompt encoded once, then cached)."""
        new = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if new:
            tokens = self.tokenizer(new).to(self.device)
            emb = unit(self.net.encode_text(tokens).float())
            self._text_cache.update(zip(new, emb, strict=True))
        return torch.stack([self._text_cache[p] for p in prompts])

    @torch.no_grad()
    def embed_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Unit-norm image embeddings of ``(N, H, W, 3)`` uint8 frames, in batches."""
        out = []
        for start in range(0, len(frames), self.batch_size):
            x = self.preprocess(frames[start : start + self.batch_size])
            out.append(unit(self.net.encode_image(x).float()))
        return torch.cat(out) if out else torch.zeros(0, self.goal.shape[0])

    def raw(self, frames: np.ndarray) -> np.ndarray:
        """The unnormalised VLM-RM reward of each frame (also the vision-judge score)."""
        x = self.embed_frames(frames)
        return projected_reward(x, self.goal, self.proj).cpu().numpy().astype(np.float64)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        rewards = self.raw(frames)
        if self.norm is None:
            return rewards
        self.norm.update(rewards)
        return self.norm(rewards)


def judge_score(reward: ClipReward, frames: np.ndarray) -> float:
    """A rollout's vision-judge fitness: the mean projected similarity over its frames."""
    if len(frames) == 0:
        raise ConfigError("judge_score needs at least one frame")
    return float(reward.raw(frames).mean())


__all__ = [
    "ClipReward",
    "RunningNorm",
    "clip_weights",
    "judge_score",
    "load_clip",
    "projected_reward",
    "projection",
    "unit",
]
