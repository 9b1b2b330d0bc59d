"""Frames/s of render + CLIP score: one batched forward pass per vector step vs one frame at a time.

    python bench/clip_throughput.py [--model ViT-B-32 --pretrained openai] [--envs 8 --steps 20]

Without --model a small randomly initialised CLIP (a model-config JSON written to a temporary
folder) is used, so the benchmark runs offline; weights do not change the cost. Both variants run
in the same process on the same envs, interleaved; the last line is ``clip_batched_speedup: <x>``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.vision.render import ensure_headless_gl, render_vec_env

ensure_headless_gl()

SMALL = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 224, "layers": 6, "width": 384, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 2},
}


def main() -> None:
    import torch

    from rewardgen.rewards.clip import ClipReward
    from rewardgen.tasks.spec import load_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="humanoid_kneel")
    parser.add_argument("--model", default=None)
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = args.model
    if model is None:
        model = str(Path(tempfile.mkdtemp()) / "bench-small-clip.json")
        Path(model).write_text(json.dumps(SMALL))
    task = load_task(args.task)
    cfg = {"model": model, "pretrained": args.pretrained, "batch_size": args.envs, "alpha": 0.5}
    reward = ClipReward.from_config(cfg, task.vision, device)

    def make() -> object:
        return task.make_env(render_mode="rgb_array", width=args.size, height=args.size)

    venv = DummyVecEnv([make] * args.envs)  # type: ignore[list-item]
    venv.reset()
    actions = np.zeros((args.envs, *venv.action_space.shape), dtype=np.float32)

    def run(batched: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            venv.step(actions)
            frames = render_vec_env(venv)
            if batched:
                reward(frames)
            else:
                for frame in frames:
                    reward(frame[None])
        if device == "cuda":
            torch.cuda.synchronize()
        return args.steps * args.envs / (time.perf_counter() - t0)

    run(True)  # warm-up (GL contexts, kernels)
    batched, single = [], []
    for _ in range(args.repeats):
        batched.append(run(True))
        single.append(run(False))
    b, s = float(np.median(batched)), float(np.median(single))
    print(f"device: {device}  model: {Path(model).name}  envs: {args.envs}  frame: {args.size}px")
    print(f"batched render+score: {b:.1f} frames/s")
    print(f"one frame at a time:  {s:.1f} frames/s")
    print(f"clip_batched_speedup: {b / s:.2f}")
    venv.close()


if __name__ == "__main__":
    main()
