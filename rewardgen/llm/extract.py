"""Find the reward program in a model's markdown answer.

Answers come in many shapes: one fenced block, several (an import block, a helper block, the
function; or a first draft and a final version), ``python``/``py``/plain fences, an unclosed fence
of a truncated answer, or bare code between prose. We pick the last block that defines the entry
function, merge in the imports and helpers it uses from the other blocks, and otherwise cut the
code out of the prose. Code that does not parse is still returned: the validator's syntax error
is better feedback for the next prompt than "no code".
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap

_FENCE = re.compile(
    r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S
)
_PYTHON_LANGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
_CODE_START = re.compile(r"^(import\s+\w|from\s+[\w.]+\s+import\s|def\s+\w+\s*\(|@\w)")
_CODE_LINE = re.compile(
    r"^(import\s|from\s+[\w.]+\s+import\s|def\s|@|#|[A-Za-z_]\w*\s*(:[^=]*)?=[^=]|return\b)"
)
_IMPLICIT_IMPORTS = {"np": "import numpy as np", "numpy": "import numpy", "math": "import math"}


def _defines(code: str, entry: str) -> bool:
    return re.search(rf"^[ \t]*def[ \t]+{re.escape(entry)}[ \t]*\(", code, re.M) is not None


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block, in order."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # deep nesting: not a crash
        return None


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _top_level_providers(tree: ast.Module, source: str) -> list[tuple[set[str], str, ast.stmt]]:
    """Top-level imports, functions and constant assignments: (names bound, source, node)."""
    out: list[tuple[set[str], str, ast.stmt]] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef):
            bound = {node.name}
        elif isinstance(node, ast.Assign):
            bound = {t.id for t in node.targets if isinstance(t, ast.Name)}
        else:
            continue
        segment = ast.get_source_segment(source, node)
        if bound and segment:
            if isinstance(node, ast.FunctionDef) and node.decorator_list:
                continue  # keep it simple: decorated helpers are not merged
            out.append((bound, segment, node))
    return out


def _merge_needed(chosen: str, others: list[str]) -> str:
    """Prepend the imports and helpers ``chosen`` uses but does not define, found in ``others``."""
    tree = _parse(chosen)
    if tree is None:
        return chosen
    bound = _bound_names(tree) | set(vars(builtins))
    missing = _used_names(tree) - bound
    providers: list[tuple[set[str], str, ast.stmt]] = []
    for other in others:
        other_tree = _parse(other)
        if other_tree is not None:
            providers.extend(_top_level_providers(other_tree, other))
    added: list[str] = []
    imports: list[str] = []
    while missing:
        name = missing.pop()
        found = next((p for p in providers if name in p[0]), None)
        if found is None:
            if name in _IMPLICIT_IMPORTS:
                imports.append(_IMPLICIT_IMPORTS[name])
            continue
        names, segment, node = found
        providers.remove(found)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(segment)
        else:
            added.append(segment)
            bound |= names
            missing |= (
                _used_names(node) - bound - _bound_names(ast.Module(body=[node], type_ignores=[]))
            )
        bound |= names
    if not added and not imports:
        return chosen
    parts = ["\n".join(dict.fromkeys(imports))] if imports else []
    parts += [textwrap.dedent(s).strip() for s in reversed(added)]
    parts.append(chosen.strip())
    return "\n\n\n".join(p for p in parts if p) + "\n"


def _from_prose(text: str, entry: str) -> str | None:
    """Cut bare code out of prose: code runs up to the entry function's body, plus later helpers."""
    lines = text.replace("\r\n", "\n").split("\n")
    segments: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if current is None:
            if _CODE_START.match(line):
                current = [line]
            continue
        if not stripped or line[0] in " \t" or _CODE_LINE.match(line):
            current.append(line)
        else:
            segments.append(current)
            current = None
            if _CODE_START.match(line):
                current = [line]
    if current is not None:
        segments.append(current)
    codes = ["\n".join(s).strip("\n") for s in segments]
    entry_index = next((i for i, c in enumerate(codes) if _defines(c, entry)), None)
    if entry_index is None:
        return None
    parses = [_parse(c) is not None for c in codes]
    keep = [c for i, c in enumerate(codes) if i == entry_index or (parses[i] and c)]
    code = "\n\n\n".join(keep)
    if _parse(code) is None:
        code = codes[entry_index]
    return code.rstrip() + "\n"


def extract_code(text: str, entry: str = "compute_reward") -> str | None:
    """Return the reward program in ``text``, or None when no ``def <entry>(`` is there.

    Args:
        text: the model's answer (markdown, or bare code, or prose with code in it).
        entry: the function the program must define (``compute_reward`` or ``progress``).

    Example:
        >>> extract_code("Sure!\\n```python\\ndef compute_reward(s, a, p):\\n    return 0.0, {}\\n```")
        'def compute_reward(s, a, p):\\n    return 0.0, {}\\n'
    """
    if not text:
        return None
    blocks = _fenced_blocks(text)
    if blocks:
        codes = [textwrap.dedent(code) for _, code in blocks]
        defining = [i for i, c in enumerate(codes) if _defines(c, entry)]
        if defining:
            chosen_index = defining[-1]
            python_others = [
                codes[i]
                for i, (lang, _) in enumerate(blocks)
                if i != chosen_index and lang in _PYTHON_LANGS and not _defines(codes[i], entry)
            ]
            merged = _merge_needed(codes[chosen_index], python_others)
            return merged.rstrip() + "\n"
    return _from_prose(text, entry)
