"""method=motif end to end: collect → caption → LLM pairs (both orders) → reward model → PPO."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from rewardgen.llm.replay import answer_path
from rewardgen.methods.motif import OFFLINE_LABELLER
from rewardgen.search.motif import label_pairs
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import FakeOpenAIServer
from tests.helpers import tiny_config

TINY_MOTIF = ["method=motif", "method.episodes=5", "method.pairs=4", "method.states_per_pair=8",
              "method.max_epochs=5", "method.ensemble=2", "train.timesteps=128"]
_PROGRESS = re.compile(r"progress \(.*?\): (-?[0-9.e+-]+)")


def progress_answerer(body: dict[str, Any], index: int) -> str:
    """A judge that reads both captions and prefers the episode with more progress."""
    text = body["messages"][-1]["content"]
    first, second = (float(v) for v in _PROGRESS.findall(text)[:2])
    choice = '"none"' if first == second else (1 if first > second else 2)
    return f"Episode progress {first} vs {second}.\n{{\"choice\": {choice}}}"


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
    for name in ("preferences.json", "reward_model.json", "reward_model.safetensors",
                 "episodes/episodes.npz"):
        assert (root / "motif" / name).is_file(), name
    cand = root / "gen_000" / "cand_00"
    job = json.loads((cand / "train.job.json").read_text())
    assert job["reward_kind"] == "motif" and job["reward_options"]["coefficient"] == 0.1
    assert (cand / "policy.zip").is_file() and (root / "best" / "policy.zip").is_file()
    return summary


def test_motif_trains_end_to_end_through_the_openai_server(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=progress_answerer) as server:
        llm = ["llm=openai", f"llm.base_url={server.base_url}", "llm.api_key=secret-test-key",
               "llm.model=fake-llm", f"llm.cache_dir={tmp_path}/cache"]
        cfg = tiny_config(*TINY_MOTIF, *llm)
        summary = run(cfg, tmp_path / "run", False)
        requests = server.chat_requests
        assert len(requests) == 8  # 4 pairs, each in both orders
        assert all(r.body["temperature"] == 0 for r in requests)
        texts = [r.body["messages"][-1]["content"] for r in requests]
        for forward, backward in zip(texts[::2], texts[1::2], strict=True):  # swapped order
            a, b = _PROGRESS.findall(forward)[:2]
            assert _PROGRESS.findall(backward)[:2] == [b, a]
        # asked again (a resume, a second run): every answer comes from the cache
        root = tmp_path / "run"
        label_pairs(cfg, load_task(cfg.task), [e["caption"] for e in json.loads(
            (root / "motif" / "episodes.json").read_text())["episodes"]], [], tmp_path / "r2",
            tmp_path / "again")
        assert len(server.chat_requests) == 8
    _check_run(root, "llm")
    prefs = json.loads((root / "motif" / "preferences.json").read_text())
    assert prefs["labeller"] == "openai:fake-llm" and prefs["requests"] == 8
    assert prefs["pairs_kept"] + prefs["pairs_dropped"] == 4 and prefs["pairs_kept"] >= 1
    assert all(len(p["answers"]) == 2 for p in prefs["pairs"])
    assert summary["motif"]["usage"]["total_tokens"] > 0
    report = (root / "report.html").read_text()
    assert "<b>Motif:</b> 5 episodes" in report and "openai:fake-llm" in report
    for path in root.rglob("*.json"):
        assert "secret-test-key" not in path.read_text(), path


def test_motif_replay_end_to_end_on_hopper(tmp_path: Path) -> None:
    """llm=replay: answers from files; order-dependent and "none" answers are kept out."""
    replay = tmp_path / "answers"
    replay.mkdir()
    answers = ['{"choice": 1}', '{"choice": 2}',  # pair 0: episode 1 both times: kept
               '{"choice": 2}', '{"choice": 1}',  # pair 1: episode 2 both times: kept
               '{"choice": 1}', '{"choice": 1}',  # pair 2: position bias: dropped
               '{"choice": "none"}', '{"choice": 2}']  # pair 3: no preference: dropped
    for k, text in enumerate(answers):
        answer_path(replay, k, 0).write_text(f"Reasoning.\n{text}\n")
    cfg = tiny_config(*TINY_MOTIF, "task=hopper", "llm=replay", f"llm.replay_dir={replay}",
                      "train.max_episode_steps=32")
    summary = run(cfg, tmp_path / "run", False)
    _check_run(tmp_path / "run", "llm")
    labels = [p["label"] for p in json.loads(
        (tmp_path / "run" / "motif" / "preferences.json").read_text())["pairs"]]
    assert labels == [0, 1, None, None]
    assert summary["motif"]["pairs_kept"] == 2
    assert "Episode 1:" in (replay / "gen_000.prompt.md").read_text()
    # a resume of the finished run collects and trains nothing again
    again = run(cfg, tmp_path / "run", False)
    events = [json.loads(x)["event"] for x in
              (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert events.count("candidate_started") == 1 and again["best"] == summary["best"]


def test_motif_offline_labels_by_the_trusted_fitness(tmp_path: Path) -> None:
    cfg = tiny_config(*TINY_MOTIF, "task=ant", "llm=offline")
    kept, stats = label_pairs(cfg, load_task("ant"), ["a", "b", "c", "d", "e"],
                              [1.0, 3.0, 2.0, 2.0, 0.5], tmp_path, tmp_path / "motif")
    saved = json.loads((tmp_path / "motif" / "preferences.json").read_text())
    assert saved["labeller"] == OFFLINE_LABELLER and saved["labels_from"] == "fitness"
    assert stats["requests"] == 0 and stats["usage"] is None
    fitness = [1.0, 3.0, 2.0, 2.0, 0.5]
    for i, j, label in kept:
        assert (fitness[i] > fitness[j]) == (label == 0)
    assert all((p["label"] is None) == (fitness[p["first"]] == fitness[p["second"]])
               for p in saved["pairs"])


@pytest.mark.parametrize(("override", "match"), [
    ("method.pairs=100", r"method.pairs=100 exceeds the 10 distinct pairs"),
    ("method.threshold_percentile=120", r"method.threshold_percentile=120.0 must lie in"),
    ("method.episodes=1", r"method.episodes=1 must be at least 2"),
    ("method.coefficient=-1", r"method.coefficient=-1.0 must be at least 0"),
])
def test_motif_config_errors_are_one_line(tmp_path: Path, override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run(tiny_config(*TINY_MOTIF, override), tmp_path / "run", False)
    assert not (tmp_path / "run").exists()


def test_motif_keys_belong_to_motif() -> None:
    from rewardgen.cli.app import CONF_DIR
    from rewardgen.cli.check import check_command_line
    from rewardgen.config import MotifMethodConfig, RewardGenConfig

    with pytest.raises(ConfigError, match="method.pairs is a key of method=motif, not of "
                                          "method=eureka"):
        check_command_line(["method.pairs=3"], CONF_DIR, "config", RewardGenConfig)
    cfg = tiny_config("method=motif")
    assert isinstance(cfg.method, MotifMethodConfig) or cfg.method._metadata.object_type is (
        MotifMethodConfig)
    assert "preference" not in cfg.method and "clip" not in cfg.method
