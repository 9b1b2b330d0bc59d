"""Reward reflection, failure summaries, human feedback."""

from __future__ import annotations

import pytest

from rewardgen.config import FeedbackConfig
from rewardgen.errors import ConfigError
from rewardgen.methods.feedback import failure_summary, human_feedback, reward_reflection
from rewardgen.runs.records import CandidateResult
from rewardgen.runs.store import CandidateRecord


def _trained() -> CandidateRecord:
    result = CandidateResult(
        status="ok",
        fitness=2.0,
        evaluations=[
            {"timesteps": 100, "fitness": 1.0, "success_rate": 0.0, "length": 50},
            {"timesteps": 200, "fitness": 3.0, "success_rate": 0.5, "length": 70},
        ],
        component_stats={"forward": [1.0, 4.0], "ctrl": [-0.5, -0.25]},
    )
    return CandidateRecord(0, 0, "src", result)


def test_reflection_lists_components_with_max_mean_min():
    text = reward_reflection(_trained(), "forward distance", eval_freq=100)
    assert "forward: [1.00, 4.00], Max: 4.00, Mean: 2.50, Min: 1.00" in text
    assert "ctrl: [-0.50, -0.25], Max: -0.25, Mean: -0.38, Min: -0.50" in text
    assert "task_score: [1.00, 3.00]" in text
    assert "success_rate: [0.00, 0.50]" in text
    assert "episode_length: [50.00, 70.00]" in text
    assert "every 100 environment steps" in text and "forward distance" in text


def test_reflection_without_the_score_for_icpl():
    text = reward_reflection(_trained(), "forward distance", eval_freq=100, show_score=False)
    assert "forward: [1.00, 4.00]" in text and "episode_length: [50.00, 70.00]" in text
    for hidden in ("task_score", "success_rate", "task score", "forward distance", "3.00"):
        assert hidden not in text, hidden


def test_failure_summary_includes_reason_and_traceback_tail_and_is_bounded():
    records = [
        CandidateRecord(1, i, None, CandidateResult(status="failed", reason=f"boom {i}",
                                                    traceback="Traceback\n  line 3\nZeroDivisionError: x"))
        for i in range(50)
    ]
    records.append(_trained())
    text = failure_summary(records, limit_chars=1000)
    assert "gen_001/cand_00: failed: boom 0" in text
    assert "ZeroDivisionError: x" in text
    assert "more failures" in text
    assert len(text) < 1200
    assert "cand_00: ok" not in text


def test_human_feedback_from_text_and_file(tmp_path):
    path = tmp_path / "fb.txt"
    path.write_text("  hop higher  \n")
    assert human_feedback(FeedbackConfig(human="too slow", human_file=str(path))) == "too slow\nhop higher"
    assert human_feedback(FeedbackConfig()) is None
    with pytest.raises(ConfigError, match="does not exist"):
        human_feedback(FeedbackConfig(human_file=str(tmp_path / "missing.txt")))
