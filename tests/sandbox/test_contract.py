"""The sandbox contract's text rule: no terminal control, no markup, from untrusted strings."""

from __future__ import annotations

import doctest
import io
import json
import logging
import unicodedata

import pytest
from rich.console import Console
from rich.text import Text

from rewardgen.runs.records import CandidateResult
from rewardgen.sandbox import contract
from rewardgen.sandbox.contract import CleanFormatter, clean_text, markup_safe

# What an attacker put into a reason: rich markup, a window title (OSC 0), a clipboard write
# (OSC 52), erase-line, a carriage return, a bidi override and a lone surrogate.
HOSTILE = ("[/x] [bold red]red[/] \x1b]0;pwn\x07 \x1b]52;c;aGk=\x07 \x1b[2Kerased\roverwrite "
           "\u202eevil\u202c \ud800 end")


def _controls(text: str) -> list[str]:
    """Characters a terminal or a bidi renderer acts on (all but newline and tab)."""
    return [c for c in text if c not in "\n\t" and (unicodedata.category(c) in ("Cc", "Cs")
                                                     or 0x202A <= ord(c) <= 0x202E
                                                     or 0x2066 <= ord(c) <= 0x2069)]


def test_doctest_examples() -> None:
    failed, attempted = doctest.testmod(contract)
    assert attempted >= 5 and failed == 0


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("title\x1b]0;pwned\x07!", "title!"),
        ("clip\x1b]52;c;aGk=\x1b\\board", "clipboard"),  # OSC ended by ST
        ("\x1b[2K\x1b[1;31mred\x1b[0m", "red"),  # CSI: erase line, SGR
        ("\x9b2Kc1 csi\x9d0;t\x9c", "c1 csi"),  # the same with C1 introducers
        ("bell\x07 back\x08space del\x7f nul\x00", "bell backspace del nul"),
        ("cr\roverwrite", "croverwrite"),
        ("\u202eevil\u202c \u2066iso\u2069", "evil iso"),
        ("lone \ud800 \udfff", "lone \ufffd \ufffd"),
        ("kept: é ü 漢字 — \u200d emoji 🙂", "kept: é ü 漢字 — \u200d emoji 🙂"),
        ("open \x1b]0;no terminator\nnext", "open \nnext"),  # an unterminated OSC ends at its line
    ],
)
def test_clean_text_removes_control_and_keeps_content(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    assert not _controls(clean_text(raw))


def test_newlines_kept_or_folded() -> None:
    text = "Traceback:\r\n  line\tone\u2028two"
    assert clean_text(text) == "Traceback:\n  line\tone\ntwo"
    assert clean_text(text, keep_newlines=False) == "Traceback:   line one two"


def test_clean_text_output_is_valid_utf8() -> None:
    clean_text(HOSTILE).encode("utf-8")  # a lone surrogate would raise UnicodeEncodeError
    with pytest.raises(UnicodeEncodeError):
        HOSTILE.encode("utf-8")


def test_markup_safe_prints_literally_through_rich() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=200)
    console.print(f"reason: {markup_safe(HOSTILE)}")
    printed = out.getvalue()
    assert "[/x] [bold red]red[/]" in printed
    assert "\x1b" not in printed and "\x07" not in printed and not _controls(printed.strip())
    assert Text.from_markup(markup_safe("[bold]x[/]")).plain == "[bold]x[/]"


def test_clean_formatter_cleans_message_arguments_and_exceptions() -> None:
    record = logging.LogRecord("rewardgen", logging.WARNING, __file__, 1, "candidate: %s",
                               (HOSTILE,), None)
    try:
        raise ValueError("in the traceback \x1b]0;pwn\x07")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = CleanFormatter("%(levelname)s: %(message)s").format(record)
    assert line.startswith("WARNING: candidate: [/x] [bold red]red[/]")
    assert "ValueError: in the traceback " in line and "\n" in line  # traceback kept
    assert not _controls(line)


def test_from_dict_cleans_what_the_reward_program_controls() -> None:
    raw = json.loads(json.dumps({  # through JSON, as a result.json on disk
        "status": "failed",
        "reason": HOSTILE + "\nsecond line",
        "traceback": "Traceback:\n  File x\n" + HOSTILE,
        "component_stats": {"\x1b]0;pwn\x07speed\n": [1.0]},
        "evaluations": [{"fitness": 1.0, "components": {"[/x]\x1b[2K": 2.0}}, {"fitness": 2.0}],
    }))
    result = CandidateResult.from_dict(raw)
    assert result.reason.startswith("[/x] [bold red]red[/]") and "\n" not in result.reason
    assert result.reason.endswith("end second line")
    assert result.traceback.startswith("Traceback:\n  File x\n")
    assert list(result.component_stats) == ["speed "]
    assert result.evaluations == [{"fitness": 1.0, "components": {"[/x]": 2.0}}, {"fitness": 2.0}]
    for text in (result.reason, result.traceback):
        assert not _controls(text)
        text.encode("utf-8")
