"""Vision judges in the loop: CLIP scores and VLM tournaments as fitness, VLM preference feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardgen.cli.app import run
from rewardgen.errors import ConfigError
from rewardgen.search.judge import (
    FRAMES_FILE,
    JUDGE_DIR,
    TOURNAMENT_FILE,
    check_judge_config,
    representative,
)
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    image_urls,
    is_preference_request,
    markdown,
    preference_answerer,
)
from tests.helpers import tiny_config
from tests.rewards.test_preference_model import pole_left

pytest.importorskip("open_clip")

RENDER = ["method.render.width=48", "method.render.height=48", "loop.judge_episodes=1",
          "final.enabled=false"]
UPRIGHT = """import numpy as np


def compute_reward(state, action, prev_state):
    upright = float(np.exp(-5.0 * abs(state.pole_angle)))
    return upright, {"upright": upright}
"""
TOPPLE = """import numpy as np


def compute_reward(state, action, prev_state):
    tilt = float(abs(state.pole_angle)) + 0.1 * float(state.cart_position)
    return tilt, {"tilt": tilt}
"""


def _results(root: Path, generation: int) -> dict[str, dict[str, Any]]:
    out = {}
    for cand in sorted((root / f"gen_{generation:03d}").glob("cand_*")):
        out[f"gen_{generation:03d}/{cand.name}"] = json.loads((cand / "result.json").read_text())
    return out


def test_representative_frames_end_with_the_last() -> None:
    frames = [np.full((2, 2, 3), i, dtype=np.uint8) for i in range(10)]
    assert representative(frames, 1)[:, 0, 0, 0].tolist() == [9]
    picked = representative(frames, 3)[:, 0, 0, 0].tolist()
    assert picked[-1] == 9 and len(picked) == 3 and picked == sorted(picked)


def test_judge_config_errors_name_the_fix() -> None:
    task = load_task("inverted_pendulum")
    with pytest.raises(ConfigError, match="loop.judge='mood' is not one of"):
        check_judge_config(tiny_config("loop.judge=mood"), task)
    with pytest.raises(ConfigError, match="has no vision.goal_prompts"):
        check_judge_config(tiny_config("loop.judge=clip"), task)
    with pytest.raises(ConfigError, match="set train.save_policy=true"):
        check_judge_config(tiny_config("loop.judge=clip", "train.save_policy=false"), task)
    with pytest.raises(ConfigError, match="must both be at least 1"):
        check_judge_config(tiny_config("loop.judge_frames=0"), task)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OPENAI_API_KEY", raising=False)
        mp.delenv("OPENAI_BASE_URL", raising=False)
        with pytest.raises(ConfigError, match="needs a vision chat model"):
            check_judge_config(tiny_config("loop.judge=vlm", "llm.base_url=null"), task)
        with pytest.raises(ConfigError, match="needs a vision chat model"):
            check_judge_config(tiny_config("feedback.preference=vlm"), task)


def test_clip_judge_needs_its_weights_on_disk_before_any_training(tmp_path: Path) -> None:
    cfg = tiny_config("loop.judge=clip", "task=humanoid_kneel",
                      f"method.clip.cache_dir={tmp_path / 'empty'}")
    with pytest.raises(ConfigError, match="ViT-bigG-14/laion2b_s39b_b160k are not on this "
                                          "machine"):
        check_judge_config(cfg, load_task("humanoid_kneel"))


def test_clip_judge_is_the_fitness_of_every_trained_candidate(tmp_path: Path) -> None:
    from tests.rewards.test_clip import tiny_model_config

    model = tiny_model_config(tmp_path)
    cfg = tiny_config(
        "loop.judge=clip", *RENDER, "llm=offline", "loop.generations=1",
        f"method.clip.model={model}", "method.clip.pretrained=null",
        "method.clip.goal_prompts=[a pole balanced upright]", "method.clip.baseline_prompts=[a pole]",
    )
    root = tmp_path / "run"
    run(cfg, root, False)
    results = _results(root, 0)
    ok = {k: r for k, r in results.items() if r["status"] == "ok"}
    assert ok, results
    judge_seeds = []
    for label, result in ok.items():
        judge = json.loads((root / label / JUDGE_DIR / "judge.json").read_text())
        assert judge["judge"] == "clip" and judge["episodes"] == 1
        assert result["fitness"] == pytest.approx(judge["score"])
        entry = [e for e in result["evaluations"] if e.get("judge") == "clip"]
        assert len(entry) == 1 and entry[0]["task_fitness"] is not None
        # secret rollout seeds, drawn after the generation trained, recorded in both files
        assert entry[0]["seeds"] == judge["seeds"] and len(judge["seeds"]) == 1
        assert judge["seeds"] != [int(cfg.seed)]
        judge_seeds.append(judge["seeds"])
        assert -1.0 <= result["fitness"] <= 1.0
    assert all(s == judge_seeds[0] for s in judge_seeds)  # one set for the generation
    best = json.loads((root / "best" / "result.json").read_text())
    assert best["fitness"] == pytest.approx(max(r["fitness"] for r in ok.values()))
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    judged = [e for e in events if e["event"] == "candidate_judged"]
    assert {(e["generation"], e["index"]) for e in judged} == {
        (0, int(k[-2:])) for k in ok}


def _code_or_vlm(vlm: Any) -> Any:
    def answer(body: dict[str, Any], index: int) -> str:
        if is_preference_request(body):
            return vlm(body, index)
        return markdown(UPRIGHT if index % 2 == 0 else TOPPLE)

    return answer


def test_vlm_judge_selects_by_the_vlm_and_feeds_its_ranking_back(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=_code_or_vlm(preference_answerer(pole_left))) as server:
        cfg = tiny_config(
            "loop.judge=vlm", "feedback.preference=vlm", *RENDER, "llm=openai",
            f"llm.base_url={server.base_url}", "llm.model=fake-vlm",
            f"llm.cache_dir={tmp_path}/cache",
        )
        root = tmp_path / "run"
        run(cfg, root, False)
        assert any(image_urls(r.body) for r in server.chat_requests), "the VLM was never asked"
    for generation in (0, 1):
        tournament = json.loads((root / f"gen_{generation:03d}" / TOURNAMENT_FILE).read_text())
        comparisons, rates = tournament["comparisons"], tournament["win_rates"]
        assert comparisons and set(rates) >= set(_results(root, generation)) - {
            k for k, r in _results(root, generation).items() if r["status"] != "ok"}
        for c in comparisons:  # the recorded winners are the loopback judge's choices
            first = np.load(root / c["first"] / JUDGE_DIR / FRAMES_FILE)["frames"][0, 0]
            second = np.load(root / c["second"] / JUDGE_DIR / FRAMES_FILE)["frames"][0, 0]
            assert c["label"] == pole_left(first, second)
    gen0 = json.loads((root / "gen_000" / TOURNAMENT_FILE).read_text())
    assert gen0["incumbent"] is None
    assert any(c["label"] is not None for c in gen0["comparisons"]), "the VLM never chose"
    for label, result in _results(root, 0).items():
        if result["status"] == "ok":
            assert result["fitness"] == pytest.approx(gen0["win_rates"][label])
    gen1 = json.loads((root / "gen_001" / TOURNAMENT_FILE).read_text())
    assert gen1["incumbent"] == gen0["ranking"][0]  # the VLM's winner was selected
    champion = gen1["ranking"][0]  # the incumbent is listed first, so a tie keeps it
    best = json.loads((root / "best" / "result.json").read_text())
    assert best["fitness"] == pytest.approx(
        json.loads((root / champion / "result.json").read_text())["fitness"])
    prompt = json.dumps(json.loads((root / "gen_001" / "messages.json").read_text()))
    assert "Preference (vlm)" in prompt and " > ".join(gen0["ranking"]) in prompt
