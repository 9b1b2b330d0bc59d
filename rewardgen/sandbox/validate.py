"""Layer 1 of isolation: a static policy over the reward program's AST.

Only ``numpy`` and ``math`` may be imported; no dunder names or attributes; none of the builtins
that reach the interpreter, the file system or the frame stack. This is defence in depth: the
program also runs with restricted builtins, inside a limited worker process.
"""

from __future__ import annotations

import ast

from rewardgen.errors import RewardCodeError

ALLOWED_MODULES = frozenset({"numpy", "math"})
FORBIDDEN_NAMES = frozenset(
    {
        "exec", "eval", "compile", "open", "input", "breakpoint", "help", "exit", "quit",
        "__import__", "__builtins__", "__loader__", "__spec__", "globals", "locals", "vars",
        "getattr", "setattr", "delattr", "hasattr", "dir", "type", "object", "super",
        "memoryview", "bytearray", "classmethod", "staticmethod", "property", "id", "print",
        "os", "sys", "subprocess", "socket", "importlib", "builtins", "ctypes", "signal",
    }
)
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "ctypeslib", "lib", "f2py", "distutils", "testing", "load", "save", "savez", "savetxt",
        "loadtxt", "genfromtxt", "fromfile", "tofile", "memmap", "DataSource", "frombuffer",
        "ctypes", "os", "sys", "system", "popen", "gi_frame", "f_globals", "f_locals", "f_back",
        "tb_frame", "cr_frame", "ag_frame", "func_globals", "mro", "setflags", "flags",
        "set_printoptions", "seterr", "seterrcall", "_replace", "_make", "_asdict", "_fields",
    }
)
FORBIDDEN_NODES = (ast.Global, ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef, ast.Await,
                   ast.Yield, ast.YieldFrom, ast.AsyncFor, ast.AsyncWith, ast.With, ast.Try)


def _reject(node: ast.AST, why: str) -> RewardCodeError:
    line = getattr(node, "lineno", "?")
    return RewardCodeError(f"line {line}: {why}")


def check_source(source: str, entry: str = "compute_reward") -> ast.Module:
    """Parse ``source`` and enforce the policy; return the AST.

    Raises:
        RewardCodeError: with the line and the rule broken.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise RewardCodeError(f"syntax error at line {e.lineno}: {e.msg}") from e
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN_NODES):
            raise _reject(node, f"{type(node).__name__} statements are not allowed in reward code")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    raise _reject(node, f"import of {alias.name!r} is not allowed (only numpy, math)")
        elif isinstance(node, ast.ImportFrom):
            if node.module not in ALLOWED_MODULES or node.level:
                raise _reject(node, f"import from {node.module!r} is not allowed (only numpy, math)")
            for alias in node.names:
                if alias.name.startswith("_") or alias.name in FORBIDDEN_ATTRIBUTES:
                    raise _reject(node, f"import of {node.module}.{alias.name} is not allowed")
        elif isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in FORBIDDEN_NAMES:
                raise _reject(node, f"name {node.id!r} is not allowed in reward code")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRIBUTES:
                raise _reject(node, f"attribute {node.attr!r} is not allowed in reward code")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "__" in node.value:
            raise _reject(node, "string constants containing '__' are not allowed")
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)) and isinstance(node, ast.FunctionDef):
            if node.name.startswith("_") and node.name != entry:
                raise _reject(node, f"function name {node.name!r} may not start with '_'")
    entries = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry]
    if not entries:
        raise RewardCodeError(f"no top-level function named {entry!r}")
    if len(entries) > 1:
        raise RewardCodeError(f"{entry!r} is defined {len(entries)} times; define it once")
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.Expr)):
            raise _reject(node, f"top-level {type(node).__name__} is not allowed; only imports, constants and functions")
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            raise _reject(node, "top-level expressions other than docstrings are not allowed")
    return tree
