"""L2R's prompts: the motion template, its parsing, the offline baseline's description."""

from __future__ import annotations

from rewardgen.llm.base import ProposalContext
from rewardgen.llm.offline import OfflineProposer
from rewardgen.methods.l2r import description_of, unfilled_slots
from rewardgen.tasks.spec import load_task


def test_the_description_is_cut_out_of_the_answer_and_bounded():
    text = "Sure!\n[start of description]\n* x_velocity above [NUM: 1.0]\x1b[31m\n[end of description]\nbye"
    assert description_of(text, 100) == "* x_velocity above [NUM: 1.0]"  # escape removed
    assert description_of("no markers at all", 8) == "no marke"


def test_the_offline_baseline_describes_with_the_seed_terms_and_says_so():
    task = load_task("hopper")
    [answer] = OfflineProposer().propose([], 1, ProposalContext(task, 0, 0, stage="motion"))
    described = description_of(answer.text, 4000)
    assert all(name in described for name in task.seed_terms)
    assert "offline baseline" in described and "no language model" in described


def test_unfilled_slots_are_found_and_filled_ones_are_not():
    filled = ("[start of description]\n* Goal in one sentence: hop.\n* x_velocity should be above "
              "[NUM: 1.0] m/s; importance high\n* Actions should be small; importance low\n"
              "[end of description]")
    assert unfilled_slots(filled) == []
    assert unfilled_slots(filled.replace("[NUM: 1.0]", "[NUM: value]")) == ["[NUM: value]"]
    assert unfilled_slots(filled.replace("hop.", "[TEXT]")) == ["[TEXT]"]
    assert unfilled_slots(filled.replace("small", "[small | unconstrained]")) == [
        "[small | unconstrained]"]
    assert unfilled_slots("* <quantity> should be above 1 m") == ["<quantity>"]
    # the offline baseline's description is filled
    task = load_task("hopper")
    [answer] = OfflineProposer().propose([], 1, ProposalContext(task, 0, 0, stage="motion"))
    assert unfilled_slots(answer.text) == []
