"""ICPL rankings (fitness, file, terminal) and human text, as they reach the next prompt."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rewardgen.config import FeedbackConfig
from rewardgen.errors import ConfigError
from rewardgen.preference import (
    check_feedback_config,
    collect_feedback,
    rank_candidates,
)
from rewardgen.results import CandidateResult
from rewardgen.store import CandidateRecord


def _records() -> list[CandidateRecord]:
    def ok(i: int, fitness: float) -> CandidateRecord:
        src = f"def compute_reward(state, action, prev_state):\n    return {i}.0, {{}}  # r{i}\n"
        return CandidateRecord(1, i, src, CandidateResult(status="ok", fitness=fitness))

    failed = CandidateRecord(1, 3, None, CandidateResult(status="failed", reason="boom"))
    return [ok(0, 1.0), ok(1, 3.0), ok(2, 2.0), failed]


def _dirs(tmp_path):
    return lambda r: tmp_path / r.label


def test_fitness_ranking_goes_into_the_next_prompt_with_winner_and_loser_code(tmp_path):
    text = collect_feedback(FeedbackConfig(preference="fitness"), [_records()], _dirs(tmp_path))
    assert text is not None
    assert "gen_001/cand_01 > gen_001/cand_02 > gen_001/cand_00" in text
    assert "Most preferred reward (gen_001/cand_01)" in text and "# r1" in text
    assert "Least preferred reward (gen_001/cand_00)" in text and "# r0" in text


def test_file_ranking_reads_labels_best_first(tmp_path):
    ranking = tmp_path / "ranking.txt"
    ranking.write_text("gen_001/cand_02\ngen_001/cand_00\n")
    order = rank_candidates(_records(), "file", _dirs(tmp_path), preference_file=str(ranking))
    assert [r.index for r in order] == [2, 0, 1]  # the unranked one goes last
    ranking.write_text("gen_009/cand_00\n")
    with pytest.raises(ConfigError, match="names none of"):
        rank_candidates(_records(), "file", _dirs(tmp_path), preference_file=str(ranking))


def test_config_errors_name_the_fix(tmp_path):
    check_feedback_config(FeedbackConfig(preference="vlm"))  # the judge checks its endpoint
    with pytest.raises(ConfigError, match="has not judged"):
        rank_candidates(_records(), "vlm", _dirs(tmp_path))
    with pytest.raises(ConfigError, match="preference=file needs feedback.preference_file"):
        check_feedback_config(FeedbackConfig(preference="file"))
    with pytest.raises(ConfigError, match="feedback.mode=file needs feedback.human_file"):
        check_feedback_config(FeedbackConfig(mode="file"))
    with pytest.raises(ConfigError, match="feedback.mode='chat' is not one of"):
        check_feedback_config(FeedbackConfig(mode="chat"))


def test_terminal_ranking_and_text_through_a_real_stdin_pipe(tmp_path):
    """A person answers in a terminal: a child process reads the ranking and text from stdin."""
    (tmp_path / "gen_001" / "cand_01").mkdir(parents=True)
    (tmp_path / "gen_001" / "cand_01" / "video.mp4").write_bytes(b"\0")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from rewardgen.config import FeedbackConfig
        from tests.test_preference import _records
        cfg = FeedbackConfig(mode="interactive", preference="human")
        from rewardgen.preference import collect_feedback
        text = collect_feedback(
            cfg, [_records()], lambda r: Path({str(tmp_path)!r}) / r.label)
        print("RESULT" + repr(text))
    """)
    answer = "The middle one falls over at the end.\n\n0 1\n1 0 2\n"  # text, a bad order, a good one
    proc = subprocess.run([sys.executable, "-c", script], input=answer, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "rollout: " + str(tmp_path / "gen_001" / "cand_01" / "video.mp4") in proc.stdout
    assert "Please name each of 0..2 exactly once." in proc.stdout
    result = proc.stdout.split("RESULT", 1)[1]
    assert "The middle one falls over at the end." in result
    assert "gen_001/cand_01 > gen_001/cand_00 > gen_001/cand_02" in result
