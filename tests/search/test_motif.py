"""method=motif end to end: collect → caption → LLM pairs (once each) → reward model → PPO →
final phase beside the env reward alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from rewardgen.llm.replay import answer_path
from rewardgen.methods.motif import OFFLINE_LABELLER, EpisodeRecord, caption
from rewardgen.search.motif import label_pairs
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import FakeOpenAIServer
from tests.helpers import tiny_config

TINY_MOTIF = [
    "method=motif",
    "method.episodes=5",
    "method.pairs=4",
    "method.states_per_episode=8",
    "method.max_epochs=5",
    "loop.samples=1",
    "loop.generations=1",
    "train.timesteps=128",
    "final.enabled=false",
]
_LINE = re.compile(r"- ([a-z ]+?)(?: \(.*?\))?: (?:mean )?(-?[0-9.e+-]+)")


def caption_values(caption: str) -> dict[str, float]:
    """``label -> first number`` of each caption line."""
    return {label: float(value) for label, value in _LINE.findall(caption)}


def behaviour_answerer(line: str) -> Any:
    """A judge that sees only the captions (behaviour) and prefers the larger ``line``."""

    def answer(body: dict[str, Any], index: int) -> str:
        text = body["messages"][-1]["content"]
        first = text.split("Episode 2:")[0].split("Episode 1:")[-1]
        second = text.split("Episode 2:")[-1]
        a, b = caption_values(first)[line], caption_values(second)[line]
        choice = '"none"' if a == b else (1 if a > b else 2)
        return f'The {line} is {a} against {b}.\n{{"choice": {choice}}}'

    return answer


def _check_run(root: Path, labels_from: str) -> dict[str, Any]:
    summary = json.loads((root / "summary.json").read_text())
    assert summary["method"] == "motif" and summary["statuses"] == {"ok": 1}, summary
    assert summary["best"]["fitness"] is not None
    assert summary["motif"]["labels_from"] == labels_from
    events = [json.loads(x)["event"] for x in (root / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert {"motif_captioned", "motif_labelled", "motif_fitted", "best_updated"} <= set(events)
    episodes = json.loads((root / "motif" / "episodes.json").read_text())["episodes"]
    assert len(episodes) == 5 and all(e["caption"].startswith("- ") for e in episodes)
    for name in (
        "preferences.json",
        "reward_model.json",
        "reward_model.safetensors",
        "episodes/episodes.npz",
    ):
        assert (root / "motif" / name).is_file(), name
    cand = root / "gen_000" / "cand_00"
    job = json.loads((cand / "train.job.json").read_text())
    options = job["reward_options"]
    assert job["reward_kind"] == "motif" and options["coefficient"] == 0.1
    assert options["env_reward"] == "sparse" and options["env_coefficient"] == 1.0
    assert options["count_exponent"] == 3.0
    assert (cand / "policy.zip").is_file() and (root / "best" / "policy.zip").is_file()
    return summary


def test_motif_trains_end_to_end_through_the_openai_server(tmp_path: Path) -> None:
    """One request per pair, captions without the fitness, and the final phase with the
    native-reward-only baseline."""
    with FakeOpenAIServer(answerer=behaviour_answerer("pole angle")) as server:
        llm = [
            "llm=openai",
            f"llm.base_url={server.base_url}",
            "llm.api_key=secret-test-key",
            "llm.model=fake-llm",
            f"llm.cache_dir={tmp_path}/cache",
        ]
        cfg = tiny_config(*TINY_MOTIF, *llm, "final.enabled=true", "final.baselines=[native]")
        summary = run(cfg, tmp_path / "run", False)
        requests = server.chat_requests
        assert len(requests) == 4  # 4 pairs, each asked once (Motif)
        assert all(r.body["temperature"] == 0.1 for r in requests)
        texts = [r.body["messages"][-1]["content"] for r in requests]
        assert not any("duration" in t or "time limit" in t for t in texts)  # the fitness
        # asked again (a resume, a second run): every answer comes from the cache
        root = tmp_path / "run"
        label_pairs(
            cfg,
            load_task(cfg.task),
            [
                e["caption"]
                for e in json.loads((root / "motif" / "episodes.json").read_text())["episodes"]
            ],
            [],
            tmp_path / "r2",
            tmp_path / "again",
        )
        assert len(server.chat_requests) == 4
    _check_run(root, "llm")
    prefs = json.loads((root / "motif" / "preferences.json").read_text())
    assert prefs["labeller"] == "openai:fake-llm" and prefs["requests"] == 4
    assert prefs["pairs_kept"] == 4 and not prefs["both_orders"]
    assert all(len(p["answers"]) == 1 and p["backward"] is None for p in prefs["pairs"])
    assert summary["motif"]["usage"]["total_tokens"] > 0
    fitted = json.loads((root / "motif" / "reward_model.json").read_text())
    assert fitted["validation_pairs"] == 0 and fitted["epochs"] == 5  # 4 pairs: 0 held out
    final = json.loads((root / "final" / "summary.json").read_text())
    assert set(final["variants"]) == {"generated", "native"} and final["seeds"] == [1000]
    assert final["motif_env_reward"] == "sparse" and summary["final"]["seeds"] == [1000]
    assert all(v["n_ok"] == 1 for v in final["variants"].values())
    report = (root / "report.html").read_text()
    assert "<b>Motif:</b> 5 episodes" in report and "openai:fake-llm" in report
    assert "asked once each, 4 kept" in report
    for path in root.rglob("*.json"):
        assert "secret-test-key" not in path.read_text(), path


def test_motif_replay_end_to_end_on_hopper(tmp_path: Path) -> None:
    """llm=replay: "none" is a tie (0.5); an unreadable answer is asked again (Motif's retry)."""
    replay = tmp_path / "answers"
    replay.mkdir()
    answers = [
        '{"choice": 1}',  # pair 0: episode 1: label 0
        '{"choice": 2}',  # pair 1: episode 2: label 1
        '{"choice": "none"}',  # pair 2: a tie: 0.5, kept
        "I cannot tell.",
        '{"choice": 2}',
    ]  # pair 3: unreadable, then asked again
    for k, text in enumerate(answers):
        answer_path(replay, k, 0).write_text(f"Reasoning.\n{text}\n")
    cfg = tiny_config(
        *TINY_MOTIF,
        "task=hopper",
        "llm=replay",
        f"llm.replay_dir={replay}",
        "train.max_episode_steps=32",
    )
    summary = run(cfg, tmp_path / "run", False)
    _check_run(tmp_path / "run", "llm")
    pairs = json.loads((tmp_path / "run" / "motif" / "preferences.json").read_text())["pairs"]
    assert [p["label"] for p in pairs] == [0.0, 1.0, 0.5, 1.0]
    assert len(pairs[3]["answers"]) == 2
    assert summary["motif"]["pairs_kept"] == 4 and summary["motif"]["ties"] == 1
    prompt = (replay / "gen_000.prompt.md").read_text()
    assert "Episode 1:" in prompt and "forward" not in prompt.split("Episode 1:")[1]
    assert "So, which episode" in (replay / "gen_004.prompt.md").read_text()
    # a resume of the finished run collects and trains nothing again
    again = run(cfg, tmp_path / "run", False)
    events = [
        json.loads(x)["event"] for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    ]
    assert events.count("candidate_started") == 1 and again["best"] == summary["best"]


def _hopper_episodes(n: int) -> list[EpisodeRecord]:
    task = load_task("hopper")
    env = task.make_env()
    env.action_space.seed(0)
    episodes = []
    for k in range(n):
        env.reset(seed=k)
        builder = task.state_builder(env)
        states, ended, truncated = [builder.build()], False, False
        while not (ended or truncated):
            _, _, ended, truncated, _ = env.step(env.action_space.sample())
            states.append(builder.build())
        fitness = float(states[-1].x_position - states[0].x_position)
        episodes.append(EpisodeRecord(states, fitness, len(states) - 1, bool(ended)))
    env.close()
    return episodes


def test_offline_no_longer_equals_an_llm_that_sees_behaviour_only(tmp_path: Path) -> None:
    """The captions carry no fitness, so a labeller that reads them cannot sort by it: its
    labels follow the behaviour it judges, and llm=offline (the fitness) is another labeller."""
    task = load_task("hopper")
    episodes = _hopper_episodes(12)
    captions = [caption(task, ep, float(ep.states[0].dt)) for ep in episodes]
    fitness = [ep.fitness for ep in episodes]
    base = [*TINY_MOTIF, "task=hopper", "method.episodes=12", "method.pairs=30"]
    with FakeOpenAIServer(answerer=behaviour_answerer("mean torso height")) as server:
        llm = [
            "llm=openai",
            f"llm.base_url={server.base_url}",
            "llm.api_key=k",
            "llm.model=fake-llm",
            f"llm.cache_dir={tmp_path}/cache",
        ]
        by_llm, _ = label_pairs(
            tiny_config(*base, *llm),
            task,
            captions,
            fitness,
            tmp_path / "a",
            tmp_path / "a" / "motif",
        )
    by_fitness, _ = label_pairs(
        tiny_config(*base, "llm=offline"),
        task,
        captions,
        fitness,
        tmp_path / "b",
        tmp_path / "b" / "motif",
    )
    assert [(i, j) for i, j, _ in by_llm] == [(i, j) for i, j, _ in by_fitness]
    heights = [caption_values(c)["mean torso height"] for c in captions]
    for i, j, label in by_llm:  # what the judge saw decides, to the last pair
        assert label == (0.5 if heights[i] == heights[j] else float(heights[j] > heights[i]))
    differ = sum(a[2] != b[2] for a, b in zip(by_llm, by_fitness, strict=True))
    assert 0 < differ < len(by_llm)


def test_motif_offline_labels_by_the_trusted_fitness(tmp_path: Path) -> None:
    cfg = tiny_config(*TINY_MOTIF, "task=ant", "llm=offline")
    kept, stats = label_pairs(
        cfg,
        load_task("ant"),
        ["a", "b", "c", "d", "e"],
        [1.0, 3.0, 2.0, 2.0, 0.5],
        tmp_path,
        tmp_path / "motif",
    )
    saved = json.loads((tmp_path / "motif" / "preferences.json").read_text())
    assert saved["labeller"] == OFFLINE_LABELLER and saved["labels_from"] == "fitness"
    assert stats["requests"] == 0 and stats["usage"] is None
    fitness = [1.0, 3.0, 2.0, 2.0, 0.5]
    for i, j, label in kept:  # Motif's score annotator: ties are labels of 0.5
        assert label == (0.5 if fitness[i] == fitness[j] else float(fitness[j] > fitness[i]))
    assert len(kept) == 4 and stats["pairs_kept"] == 4


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("method.pairs=100", r"method.pairs=100 exceeds the 10 distinct pairs"),
        ("method.threshold_percentile=120", r"method.threshold_percentile=120.0 must lie in"),
        ("method.episodes=1", r"method.episodes=1 must be at least 2"),
        ("method.coefficient=-1", r"method.coefficient=-1.0 must be at least 0"),
        ("method.validation_share=1", r"method.validation_share=1.0 must lie in \[0, 1\)"),
        ("method.env_reward=dense", r"method.env_reward='dense' is not one of"),
        ("loop.samples=2", r"loop.samples=2 does not apply to method=motif"),
    ],
)
def test_motif_config_errors_are_one_line(tmp_path: Path, override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run(tiny_config(*TINY_MOTIF, override), tmp_path / "run", False)
    assert not (tmp_path / "run").exists()


def test_motif_keys_belong_to_motif() -> None:
    from rewardgen.cli.app import CONF_DIR
    from rewardgen.cli.check import check_command_line
    from rewardgen.config import MotifMethodConfig, RewardGenConfig

    with pytest.raises(
        ConfigError, match="method.pairs is a key of method=motif, not of method=eureka"
    ):
        check_command_line(["method.pairs=3"], CONF_DIR, "config", RewardGenConfig)
    cfg = tiny_config("method=motif")
    assert isinstance(cfg.method, MotifMethodConfig) or cfg.method._metadata.object_type is (
        MotifMethodConfig
    )
    assert "preference" not in cfg.method and "clip" not in cfg.method
