"""VLM image queries: data URLs, two-stage questions, label parsing, cache, no-preference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardgen.config import LLMConfig
from rewardgen.errors import ConfigError, LLMError
from rewardgen.llm.vision import (
    VLMLabeller,
    decode_data_url,
    frame_digest,
    image_data_url,
    parse_label,
)
from rewardgen.tasks.spec import load_task
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    image_urls,
    preference_answerer,
    server_error,
)


def brighter(first: np.ndarray, second: np.ndarray) -> int | None:
    """The judge of the loopback VLM: the brighter frame wins; equal brightness, no preference."""
    if first.mean() == second.mean():
        return None
    return 0 if first.mean() > second.mean() else 1


def frame(value: int, size: int = 8) -> np.ndarray:
    out = np.full((size, size, 3), value, dtype=np.uint8)
    out[0, 0] = (value * 7) % 256  # not quite uniform, so PNG has something to encode
    return out


def labeller(server: FakeOpenAIServer, tmp_path: Path, **overrides: object) -> VLMLabeller:
    cfg = LLMConfig(provider="openai", model="fake-vlm", base_url=server.base_url, api_key="t",
                    cache_dir=str(tmp_path / "cache"), max_retries=0, backoff_initial_s=0.0)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return VLMLabeller(cfg, load_task("humanoid_kneel"), "kneel on both knees", seed=0)


def test_data_url_round_trip_and_digest() -> None:
    f = np.random.default_rng(0).integers(0, 255, size=(6, 5, 3), dtype=np.uint8)
    url = image_data_url(f)
    assert url.startswith("data:image/png;base64,")
    np.testing.assert_array_equal(decode_data_url(url), f)
    assert frame_digest(f) == frame_digest(f.copy()) != frame_digest(f[::-1])


@pytest.mark.parametrize(("answer", "label"), [
    ("0", 0), ("1", 1), ("-1", None), ("Image 1 is closer.\n0", 0),
    ("Answer: 1", 1), ("I cannot tell.", None), ("", None), ("1.5", None),
])
def test_parse_label(answer: str, label: int | None) -> None:
    assert parse_label(answer) == label


@pytest.mark.parametrize(("answer", "label"), [
    ("0", 0), ("1\n", 1), (" 1 ", 1), ("-1", None), ("Image 1 is closer.\n0", None),
    ("Answer: 1", None), ("2", None), ("", None),
])
def test_strict_parse_reads_the_first_line_as_rl_vlm_f_does(answer: str, label: int | None) -> None:
    assert parse_label(answer, strict=True) == label


def test_two_stage_image_questions_and_labels(tmp_path: Path) -> None:
    """RL-VLM-F's protocol: stage 1 asks about both images, stage 2 is a text-only query that
    is given the analysis; both at temperature 0, whatever the run's llm.temperature."""
    with FakeOpenAIServer(answerer=preference_answerer(brighter)) as server:
        vlm = labeller(server, tmp_path, temperature=1.0)
        assert vlm.label(frame(200), frame(50)) == 0
        assert vlm.label(frame(10), frame(90)) == 1
        assert vlm.label(frame(50), frame(50)) is None  # identical: dropped without a request
        assert len(server.chat_requests) == 4 and vlm.queries == 2
        assert all(r.body["temperature"] == 0 for r in server.chat_requests)
        first, second = (r.body for r in server.chat_requests[:2])
        assert len(first["messages"]) == 1
        parts = first["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
        assert parts[0]["text"].endswith("Image 1:") and parts[2]["text"] == "Image 2:"
        assert "The goal is kneel on both knees. Is there any difference" in parts[4]["text"]
        assert len(image_urls(first)) == 2
        assert image_urls(second) == []  # stage 2 is text only
        assert [m["role"] for m in second["messages"]] == ["system", "user"]
        assert all(isinstance(m["content"], str) for m in second["messages"])
        summary = second["messages"][1]["content"]
        assert summary.startswith("Based on the text below to the questions:")
        assert "Image 1 has mean brightness" in summary and "[verdict 0]" in summary  # stage 1
        assert "Reply a single line of 0 if the goal is better achieved in Image 1" in summary
        assert vlm.usage.requests == 4


def test_chat_stage2_and_run_temperature_are_options(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(brighter)) as server:
        cfg = LLMConfig(provider="openai", model="fake-vlm", base_url=server.base_url,
                        api_key="t", cache=False, max_retries=0, temperature=0.7)
        vlm = VLMLabeller(cfg, load_task("humanoid_kneel"), "to kneel", temperature=None,
                          stage2="chat", parse="lenient")
        assert vlm.label(frame(200), frame(50)) == 0
        second = server.chat_requests[1].body
        assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
        assert len(image_urls(second)) == 2  # the label question continues the image chat
        assert all(r.body["temperature"] == 0.7 for r in server.chat_requests)


def test_summary_model_answers_stage_2(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(brighter)) as server:
        cfg = LLMConfig(provider="openai", model="fake-vlm", base_url=server.base_url,
                        api_key="t", cache=False, max_retries=0)
        vlm = VLMLabeller(cfg, load_task("humanoid_kneel"), "to kneel",
                          summary_model="fake-text")
        assert vlm.label(frame(10), frame(90)) == 1
        assert [r.body["model"] for r in server.chat_requests] == ["fake-vlm", "fake-text"]
        assert vlm.usage.requests == 2


def test_labeller_option_errors(tmp_path: Path) -> None:
    cfg = LLMConfig(provider="openai", model="m", base_url="http://127.0.0.1:9", api_key="t")
    with pytest.raises(ConfigError, match="stage2='both' is not one of"):
        VLMLabeller(cfg, load_task("humanoid_kneel"), "to kneel", stage2="both")
    with pytest.raises(ConfigError, match="label_parse='fuzzy' is not one of"):
        VLMLabeller(cfg, load_task("humanoid_kneel"), "to kneel", parse="fuzzy")


def test_labels_are_cached_across_labellers(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(brighter)) as server:
        assert labeller(server, tmp_path).label(frame(200), frame(50)) == 0
        again = labeller(server, tmp_path)
        assert again.label(frame(200), frame(50)) == 0
        assert len(server.chat_requests) == 2 and again.queries == 0


def test_no_preference_answer_is_none(tmp_path: Path) -> None:
    with FakeOpenAIServer(answerer=preference_answerer(lambda a, b: None)) as server:
        assert labeller(server, tmp_path, cache=False).label(frame(1), frame(2)) is None


def test_server_failure_is_llm_error(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        server.script(server_error(500))
        with pytest.raises(LLMError, match=r"answered HTTP 500 \(a server error\) after 1 tries"):
            labeller(server, tmp_path).label(frame(1), frame(2))
