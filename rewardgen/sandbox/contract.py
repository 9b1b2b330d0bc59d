"""The sandbox contract: the names and limits shared by both sides of a worker, and what may
cross from untrusted code to the operator's eyes.

The constants (the file name reward programs are compiled under, the component and text limits)
and the traceback trimmers live here once; the worker, the child, the training code, the output
check and the parent's validation of reported results all import them from this module.

Every string a reward program (or an LLM) controls — failure reasons, tracebacks, component
names, answers — is data. Before rich, the report, a log file or the next prompt sees it, it goes
through :func:`clean_text` (no terminal control and nothing invisible: escape sequences, and
every control, format, surrogate, private-use and unassigned character) and, where rich parses
markup, :func:`markup_safe`; component names also through :func:`component_name`.
"""

from __future__ import annotations

import logging
import re
import traceback
import unicodedata

PROGRAM_FILENAME = "<reward program>"  # generated code is compiled under this name
MAX_COMPONENTS = 64  # more named components than this is a flood, not a reward decomposition
MAX_COMPONENT_NAME = 100  # characters per component name
MAX_REASON_CHARS = 300  # a one-line reason
MAX_TRACEBACK_CHARS = 4000  # a trimmed traceback shown to the LLM
RESULT_LIMIT_MB = 64  # a larger result.json from a worker is not read
CALL_BUDGET_GRACE_S = 1.0  # reward-program time in training before sandbox.call_budget_s applies
# |reward| per step above this is beyond float32, the type SB3 stores rewards in: training
# turns it into inf, then NaN ("Expected parameter loc ... nan")
MAX_REWARD_MAGNITUDE = 3.4e38
LARGE_REWARD = 1e6  # a training breakdown after rewards this large is blamed on their scale
TAIL_FRAMES = 3  # frames kept after the reward program's own in a trimmed traceback

# ESC-introduced sequences: CSI (ESC [ ... final byte), OSC/DCS/SOS/PM/APC strings (up to BEL
# or ST; an unterminated one to the end of its line), two-character escapes (ESC 7, ESC c, ...).
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
    # the same with C1 introducers (CSI 0x9b, OSC 0x9d, DCS 0x90, SOS 0x98, PM 0x9e, APC 0x9f)
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
)
_LINE_BREAKS = re.compile(r"\r\n|[\n\u2028\u2029]")
# C0 (but \t, \n), DEL and C1 controls: the whole of category Cc, found fast in ASCII text
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# removed from non-ASCII text: Cc (controls), Cf (format: Unicode tags U+E0000-E007F, zero-width
# spaces and joiners, bidi embeddings/overrides/isolates/marks, soft hyphen, word joiner, BOM,
# ...), Cs (lone surrogates), Co (private use) and Cn (unassigned): invisible, or shown as
# nothing, or read differently from what they are (a terminal, a log reader, an LLM)
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")  # only these runs are looked up one by one
# what a component name may hold after cleaning (worker side: anything else is refused)
COMPONENT_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def clean_text(s: str, *, keep_newlines: bool = True) -> str:
    """``s`` without anything a terminal, a log reader, a bidi renderer or an LLM would read
    differently from what a person sees.

    Removes ANSI/OSC escape sequences whole (a window title, an OSC 52 clipboard write, an
    erase-line), then every character of Unicode category Cc, Cf, Cs, Co or Cn: controls, format
    characters (tag characters, which spell invisible ASCII; zero-width spaces and joiners; bidi
    controls; the soft hyphen), lone surrogates, private-use and unassigned code points.
    Printable text, including non-ASCII letters, marks and emoji, stays as it is.

    Args:
        s: untrusted text (a non-str is turned into one first).
        keep_newlines: keep ``\\n`` and ``\\t`` (tracebacks, prompts); when False they become a
            space, for one-line fields (reasons, component names, table cells).

    Examples:
        >>> clean_text("ok\\x1b]0;pwned\\x07 done\\x1b[2K")
        'ok done'
        >>> clean_text("a\\u202eb\\x07c\\ud800\\u200bd\\U000e0041\\U000e0042")
        'abcd'
        >>> clean_text("line 1\\r\\nline 2\\tend")
        'line 1\\nline 2\\tend'
        >>> clean_text("line 1\\nline 2\\tend", keep_newlines=False)
        'line 1 line 2 end'
    """
    if not isinstance(s, str):
        s = str(s)
    s = _ESCAPE_SEQUENCE.sub("", s)
    s = _LINE_BREAKS.sub("\n" if keep_newlines else " ", s)
    if not keep_newlines:
        s = s.replace("\t", " ")
    s = _CONTROLS.sub("", s)
    return s if s.isascii() else _NON_ASCII.sub(_visible, s)


def _visible(match: re.Match[str]) -> str:
    category = unicodedata.category
    return "".join(c for c in match.group() if category(c) not in _REMOVED_CATEGORIES)


def component_name(name: object, limit: int = MAX_COMPONENT_NAME) -> str:
    """A reported component name as the parent shows it: cleaned, then every run of characters
    outside letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``, at most ``limit`` long.

    Example:
        >>> component_name("fwd\\U000e0049\\U000e0047[bold] speed\\u200b$")
        'fwd_bold_speed_'
    """
    text = _NOT_IN_NAME.sub("_", clean_text(str(name), keep_newlines=False))
    return text[:limit] or "_"


def markup_safe(s: str, *, keep_newlines: bool = True, max_chars: int | None = None) -> str:
    """:func:`clean_text`, then rich's markup escaped: for an f-string that rich will print.

    Args:
        s: untrusted text.
        keep_newlines: as for :func:`clean_text`.
        max_chars: cut the cleaned text to this length before escaping (a table cell), so
            neither an escape sequence nor a markup escape is cut in half.

    Examples:
        >>> markup_safe("[/x] [bold red]boom\\x1b[2K")
        '\\\\[/x] \\\\[bold red]boom'
        >>> markup_safe("\\x1b]0;t\\x07[b]" + "x" * 10, max_chars=5)
        '\\\\[b]xx'
    """
    from rich.markup import escape  # imported here: workers load this module without rich

    return escape(clean_text(s, keep_newlines=keep_newlines)[:max_chars])


class CleanFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose lines pass :func:`clean_text` (log files, stderr).

    Log records carry reasons and exception messages from candidates; this keeps escape
    sequences out of ``rewardgen.log`` and the terminal whatever a call site formats into them. Used by
    ``conf/hydra/job_logging/rewardgen.yaml`` and the non-Hydra entry points.
    """

    def format(self, record: logging.LogRecord) -> str:
        return clean_text(super().format(record))


# ---------------------------------------------------------------- one-line reasons, tracebacks
def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` on one line of at most ``limit`` characters (whitespace runs become a space)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def magnitude_reason(value: float, limit: float | None = None) -> str:
    """Why a reward of ``value`` per step is a problem and what to change, in one clause.

    Example:
        >>> magnitude_reason(1e308, MAX_REWARD_MAGNITUDE)
        'reward magnitude reached 1e308 per step, beyond the float32 range (3.4e38) the learner stores rewards in: scale the components'
    """
    shown = f"{abs(value):.3g}".replace("e+", "e")
    beyond = (f", beyond the float32 range ({limit:.2g}) the learner stores rewards in"
              .replace("e+", "e") if limit is not None else "")
    return f"reward magnitude reached {shown} per step{beyond}: scale the components"


def exception_message(exc: BaseException) -> str:
    """``str(exc)`` of an exception the reward program raised, or a placeholder when formatting
    it fails (a deeply nested argument makes its repr raise RecursionError)."""
    try:
        return str(exc)
    except Exception as e:  # noqa: BLE001 - the reward program controls what str() does
        return f"<its message could not be formatted: {type(e).__name__}>"


def tail(text: str, limit: int = MAX_TRACEBACK_CHARS) -> str:
    """The end of a long text (stderr, a traceback), marked as cut."""
    text = text.strip()
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def trimmed_traceback(exc: BaseException) -> str:
    """Frames inside the reward program plus the last few frames: what the LLM can act on."""
    frames = traceback.extract_tb(exc.__traceback__)
    keep = [
        i
        for i, f in enumerate(frames)
        if f.filename == PROGRAM_FILENAME or i >= len(frames) - TAIL_FRAMES
    ]
    lines = ["Traceback (most recent call last):\n"]
    last = -1
    for i in keep:
        if i != last + 1:
            lines.append("  ...\n")
        lines.extend(traceback.format_list([frames[i]]))
        last = i
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def program_traceback(exc: BaseException, source: str | None) -> str:
    """The frames of ``exc`` (and its causes) that ran inside the reward program, with code.

    What the LLM needs to fix its program is where *its* code failed, not SB3's call stack.
    Returns an empty string when no reward-program frame is involved (e.g. a NaN return value).
    """
    lines = source.splitlines() if source else []
    for link in reversed(_chain(exc)):
        frames = [
            f for f in traceback.extract_tb(link.__traceback__) if f.filename == PROGRAM_FILENAME
        ]
        if not frames:
            continue
        out = ["Traceback (reward program frames only):"]
        for frame in frames:
            out.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
            lineno = frame.lineno or 0
            if 0 < lineno <= len(lines):
                out.append(f"    {lines[lineno - 1].strip()}")
        out.extend(traceback.format_exception_only(type(link), link)[-1:])
        return "\n".join(line.rstrip("\n") for line in out)
    return ""


def short_traceback(exc: BaseException, max_frames: int = 6,
                    max_chars: int = MAX_TRACEBACK_CHARS) -> str:
    """The innermost ``max_frames`` frames of ``exc``'s traceback, capped at ``max_chars``."""
    frames = traceback.extract_tb(exc.__traceback__)[-max_frames:]
    text = "".join(
        ["Traceback (innermost frames):\n"]
        + traceback.format_list(frames)
        + traceback.format_exception_only(type(exc), exc)
    )
    return text if len(text) <= max_chars else "..." + text[-max_chars:]
