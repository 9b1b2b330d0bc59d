"""ReplayProposer: prompt/answer files, waiting, and recorded run directories."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rewardgen.errors import ConfigError, LLMError
from rewardgen.llm.base import ProposalContext
from rewardgen.llm.replay import ReplayProposer, answer_path
from rewardgen.tasks.spec import load_task

MESSAGES = [
    {"role": "system", "content": "You write reward functions."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Hop forward."},
            {"type": "image_url", "image_url": {"url": "x"}},
        ],
    },
]


def _ctx(generation: int) -> ProposalContext:
    return ProposalContext(task=load_task("hopper"), generation=generation, seed=0)


def test_prompt_written_and_answers_read(tmp_path: Path) -> None:
    (tmp_path / "gen_002.answer_00.md").write_text("answer zero")
    (tmp_path / "gen_002.answer_02.md").write_text("answer two")
    proposer = ReplayProposer(tmp_path)
    completions = proposer.propose(MESSAGES, 4, _ctx(2))
    assert [c.text for c in completions] == ["answer zero", "answer two"]
    prompt = (tmp_path / "gen_002.prompt.md").read_text()
    assert "## SYSTEM\n\nYou write reward functions." in prompt
    assert "## USER\n\nHop forward." in prompt and "[image_url omitted]" in prompt
    assert "gen_002.answer_00.md ... gen_002.answer_03.md" in prompt
    assert proposer.is_llm and proposer.usage.requests == 1


def test_missing_answer_names_the_file_to_write(tmp_path: Path) -> None:
    expected = str(answer_path(tmp_path, 7, 0)).replace(".", r"\.")
    with pytest.raises(
        LLMError, match=f"no answer for generation 7: write the model's answer to {expected}"
    ):
        ReplayProposer(tmp_path).propose(MESSAGES, 2, _ctx(7))
    assert (tmp_path / "gen_007.prompt.md").is_file()


def test_waits_for_an_answer_written_later(tmp_path: Path) -> None:
    def write_soon() -> None:
        time.sleep(0.3)
        answer_path(tmp_path, 0, 0).write_text("late answer")

    writer = threading.Thread(target=write_soon)
    writer.start()
    completions = ReplayProposer(tmp_path, wait_s=5.0).propose(MESSAGES, 1, _ctx(0))
    writer.join()
    assert [c.text for c in completions] == ["late answer"]


def test_waits_for_every_answer_pasted_one_by_one(tmp_path: Path) -> None:
    def paste_slowly() -> None:
        for k in range(3):
            time.sleep(0.4)
            answer_path(tmp_path, 0, k).write_text(f"answer {k}")

    writer = threading.Thread(target=paste_slowly)
    writer.start()
    completions = ReplayProposer(tmp_path, wait_s=20.0).propose(MESSAGES, 3, _ctx(0))
    writer.join()
    assert [c.text for c in completions] == ["answer 0", "answer 1", "answer 2"]


def test_done_file_goes_on_with_the_answers_so_far(tmp_path: Path) -> None:
    answer_path(tmp_path, 1, 0).write_text("only answer")

    def finish_soon() -> None:
        time.sleep(0.4)
        (tmp_path / "gen_001.done").write_text("")

    writer = threading.Thread(target=finish_soon)
    writer.start()
    start = time.monotonic()
    completions = ReplayProposer(tmp_path, wait_s=30.0).propose(MESSAGES, 4, _ctx(1))
    writer.join()
    assert [c.text for c in completions] == ["only answer"]
    assert time.monotonic() - start < 10.0  # the done file, not the 30 s wait, ended it
    assert "create gen_001.done" in (tmp_path / "gen_001.prompt.md").read_text()


def test_gives_up_after_the_wait(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(LLMError, match="after waiting 0.2s"):
        ReplayProposer(tmp_path, wait_s=0.2).propose(MESSAGES, 1, _ctx(0))
    assert 0.2 <= time.monotonic() - start < 2.0


def test_recorded_run_directory_is_replayed_untouched(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "gen_000" / "cand_00").mkdir(parents=True)
    (run / "gen_000" / "cand_01").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / "gen_000" / "cand_00" / "response.md").write_text("recorded 0")
    (run / "gen_000" / "cand_01" / "response.md").write_text("recorded 1")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    proposer = ReplayProposer(run)
    assert [c.text for c in proposer.propose(MESSAGES, 2, _ctx(0))] == ["recorded 0", "recorded 1"]
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    with pytest.raises(
        LLMError,
        match=r"no answer for generation 1: .*gen_001/cand_00/response\.md is missing \(it has gen_000\)",
    ):
        proposer.propose(MESSAGES, 2, _ctx(1))


def test_needs_a_directory() -> None:
    with pytest.raises(ConfigError, match="llm.replay_dir"):
        ReplayProposer("")
