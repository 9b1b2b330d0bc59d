"""GPU search throughput: Brax PPO on MJX (rl=brax_ppo), env steps/s per candidate, compile
seconds, and the projected wall time of a 5 x 16 x 1M hopper search on this machine.

One candidate (hopper, the offline seed reward traced and exported as the sandbox would) trains
for three epochs; the first includes XLA's compile, the others run compiled. Compile seconds are
the first epoch's time minus a compiled epoch's, plus reset and setup; steps/s come from the
compiled epochs. The projection assumes one compiled program per candidate, candidates one after
another on the one accelerator, and adds the trusted evaluator's C-MuJoCo episodes (measured
here on one CPU core, ``--eval-episodes`` per checkpoint, 10 checkpoints per candidate).

On a CPU (no accelerator visible to JAX) it runs a reduced size and says so: MJX on a CPU is
not a training path, only a check that the pipeline runs.

It must also start on a machine whose Python has only jax and torch: then it names what is
missing and how to install it, and exits with status 2. The last line is the headline::

    gpu_search_projected_h: <hours>

Run: ``python bench/gpu_search.py [--envs 2048] [--steps-per-epoch 1048576]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NEEDED = {
    "jax": "jax",
    "brax": "brax",
    "mujoco": "mujoco",
    "mujoco.mjx": "mujoco-mjx",
    "gymnasium": "gymnasium",
    "torch": "torch",
    "omegaconf": "omegaconf",
    "flatbuffers": "flatbuffers",
    "rewardgen": "rewardgen (this repository)",
}
SEARCH = (5, 16, 1_000_000)  # generations x samples x steps per candidate


def missing_packages() -> list[str]:
    missing = []
    for module, package in NEEDED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=None, help="num_envs (GPU default 2048)")
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=5)
    return parser.parse_args()


def main() -> int:
    args = _args()
    missing = missing_packages()
    if missing:
        print(
            f"gpu_search: cannot run, missing {', '.join(missing)}. Install with: pip install "
            "-e '.[gpu]' (a GPU also needs jax[cuda12]==0.6.2); see docs/gpu.md"
        )
        return 2
    import jax
    from bench_gpu_parts import evaluator_seconds, train_epochs  # noqa: PLC0415

    accelerator = jax.default_backend() != "cpu"
    device = jax.devices()[0].device_kind
    envs = args.envs or (2048 if accelerator else 4)
    per_epoch = args.steps_per_epoch or (2**20 if accelerator else 256)
    size = "full size" if accelerator else "REDUCED size on CPU (not a GPU figure)"
    print(
        f"gpu_search: {device} ({jax.default_backend()}), {size}: {envs} envs, "
        f"{per_epoch} env steps per epoch"
    )
    timing = train_epochs(envs, per_epoch, small=not accelerator)
    eval_s = evaluator_seconds(args.eval_episodes)
    generations, samples, budget = SEARCH
    candidates = generations * samples
    per_candidate = timing["compile_s"] + budget / timing["steps_per_s"] + 10 * eval_s
    projected_h = candidates * per_candidate / 3600
    print(
        f"compile_s: {timing['compile_s']:.1f}  (setup+reset {timing['setup_s']:.1f}, first "
        f"epoch {timing['first_epoch_s']:.1f}, compiled epoch {timing['epoch_s']:.1f})"
    )
    print(f"env_steps_per_s: {timing['steps_per_s']:.0f}  (per candidate, compiled)")
    print(
        f"trusted_eval_s_per_checkpoint: {eval_s:.1f}  ({args.eval_episodes} C-MuJoCo "
        "episodes of up to 1000 steps, one core)"
    )
    print(
        f"projection: {generations}x{samples}x{budget:,} = {candidates * budget / 1e6:.0f}M "
        f"env steps, one program per candidate, candidates in sequence: "
        f"{per_candidate:.0f} s per candidate"
    )
    print(f"gpu_search_projected_h: {projected_h:.2f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
