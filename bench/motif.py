"""Motif at a small budget: fitness of PPO on env + intrinsic reward minus PPO on the native reward.

For each seed, ``method=motif`` runs whole (32 random-policy episodes collected and captioned,
``--pairs`` pairs labelled, the reward model fit, PPO trained through the executor and measured
by the trusted evaluator), and the native reward trains on the same seed and budget. The labels
come from the trusted fitness (``llm=offline``): no language model can be reached here, so this
measures the intrinsic-reward machinery with a perfect labeller, not an LLM's judgement.

It also prints what a label costs: estimated prompt tokens per request (4 characters per token;
one request per pair, as Motif asks) for a default caption (ant) and a task-declared one (hopper), and the
seconds per pair of our own labelling path against the loopback OpenAI server (no model time),
uncached and from the cache. The last line is the headline::

    motif_minus_native_fitness_<unit>: <mean motif fitness - mean native fitness>

Run: ``python bench/motif.py [--task hopper] [--timesteps 16384] [--seeds 0 1] [--pairs 50]``
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from rewardgen.config import register_configs  # noqa: E402
from rewardgen.resources import resource_dir  # noqa: E402


def _config(overrides: list[str]):  # noqa: ANN202 - a DictConfig
    register_configs()
    with initialize_config_dir(str(resource_dir("conf")), version_base="1.3"):
        return compose("config", overrides=overrides)


def label_cost(tmp: Path) -> list[str]:
    """Prompt tokens per request and our seconds per pair (loopback server, then cache)."""
    from rewardgen.config import LLMConfig
    from rewardgen.llm.client import OpenAIProposer
    from rewardgen.methods.motif import EpisodeRecord, PairLabeller, caption, pair_messages
    from rewardgen.prompts import estimate_tokens
    from rewardgen.runs.records import CandidateJob
    from rewardgen.tasks.spec import load_task
    from rewardgen.worker.evaluate import _eval_env, run_episode
    from tests.fakes.openai_server import FakeOpenAIServer

    lines = ["task      caption          prompt tokens/request  requests/pair"]
    texts: list[str] = []
    for name in ("ant", "hopper"):
        task = load_task(name)
        job = CandidateJob(task=name, out_dir=str(tmp), max_episode_steps=200)
        env = _eval_env(task, job)
        env.action_space.seed(0)
        sample = env.action_space.sample
        eps = [run_episode(task, env, lambda obs, s=sample: s(), k) for k in range(4)]
        env.close()
        records = [
            EpisodeRecord(e["states"], e["fitness"], e["length"], e["ended_early"]) for e in eps
        ]
        dt = float(records[0].states[0].dt)
        caps = [caption(task, r, dt, 200) for r in records]
        tokens = statistics.mean(
            estimate_tokens("".join(m["content"] for m in pair_messages(task, a, b)))
            for a, b in zip(caps, caps[1:], strict=False)
        )
        kind = "declared" if task.captions else "default"
        lines.append(f"{name:9s} {kind:16s} {tokens:21.0f}  {1:13d}")
        if name == "ant":
            texts = caps
    pairs = [(texts[i % 4], texts[(i + 1) % 4] + f"\n- pair {i}") for i in range(20)]
    with FakeOpenAIServer(answerer=lambda body, i: '{"choice": 1}') as server:
        cfg = LLMConfig(
            provider="openai",
            base_url=server.base_url,
            model="fake",
            cache_dir=str(tmp / "cache"),
            temperature=0.0,
        )
        for label in ("uncached", "cached"):
            labeller = PairLabeller(OpenAIProposer(cfg), load_task("ant"))
            start = time.monotonic()
            for a, b in pairs:
                labeller.label(a, b)
            per = (time.monotonic() - start) / len(pairs)
            lines.append(
                f"labelling path ({label}, loopback server): {per * 1000:.1f} ms/pair, "
                f"{len(server.chat_requests)} requests so far"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="hopper")
    parser.add_argument("--timesteps", type=int, default=16_384)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--max-epochs", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from rewardgen.cli.app import run
    from rewardgen.config import as_sandbox_config
    from rewardgen.executors import make_executor
    from rewardgen.jobs import training_job
    from rewardgen.tasks.spec import load_task

    with tempfile.TemporaryDirectory(prefix="bench-motif-") as tmp_name:
        tmp = Path(tmp_name)
        cost = label_cost(tmp)
        common = [
            f"task={args.task}",
            f"train.timesteps={args.timesteps}",
            f"train.eval_freq={args.timesteps // 4}",
            "train.eval_episodes=3",
            "report.enabled=false",
            "llm=offline",
            "final.enabled=false",
        ]
        motif, native, overhead, train_s = [], [], [], []
        for seed in args.seeds:
            cfg = _config(
                [
                    *common,
                    "method=motif",
                    f"seed={seed}",
                    "method.episodes=32",
                    f"method.pairs={args.pairs}",
                    f"method.max_epochs={args.max_epochs}",
                ]
            )
            start = time.monotonic()
            summary = run(cfg, tmp / f"motif_{seed}", False)
            wall = time.monotonic() - start
            motif.append(float(summary["best"]["fitness"]))
            train_s.append(float(summary["train_wall_time_s"]))
            overhead.append(wall - train_s[-1])
        cfg = _config(common)
        executor = make_executor(cfg.executor, as_sandbox_config(cfg.sandbox), cfg.rl, "cpu")
        jobs = [
            training_job(cfg, str(tmp / f"native_{s}"), None, "native", seed=s) for s in args.seeds
        ]
        results = executor.run(jobs)
        native = [float(r.fitness) for r in results if r.ok and r.fitness is not None]
        if len(native) != len(args.seeds):
            raise SystemExit(f"native trainings failed: {[r.reason for r in results]}")
    print(
        f"{args.task}, PPO {args.timesteps} env steps, seeds {args.seeds}; motif: 32 random-"
        f"policy episodes, {args.pairs} pairs labelled by the trusted fitness (llm=offline)"
    )
    for line in cost:
        print(line)
    print(f"load average (1 min) at the end {os.getloadavg()[0]:.2f}")
    print("reward   fitness per seed (trusted evaluator)       mean")
    for name, values in (("native", native), ("motif", motif)):
        print(
            f"{name:8s} {'  '.join(f'{v:8.3f}' for v in values):40s} {statistics.mean(values):8.3f}"
        )
    print(
        f"motif steps before RL (collect, caption, label, fit): {statistics.mean(overhead):.0f} s "
        f"per run; its training + evaluation: {statistics.mean(train_s):.0f} s"
    )
    unit = load_task(args.task).fitness.unit
    print(
        f"motif_minus_native_fitness_{unit}: {statistics.mean(motif) - statistics.mean(native):.3f}"
    )


if __name__ == "__main__":
    main()
