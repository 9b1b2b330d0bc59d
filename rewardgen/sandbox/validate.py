"""Layer 1 of isolation: a static policy over the reward program's AST.

Only ``numpy``, ``numpy.linalg`` and ``math`` may be imported, and only the names their reward
program surface allows (``sandbox/surface.py``) may be used from them; no dunder names or
attributes; none of the builtins that reach the interpreter, the file system or the frame stack;
no array attributes that expose raw memory (``view``, ``data``, ``base``, ``tobytes``, ...); no
``dtype=``/``astype`` argument that is not numeric; no statements that catch exceptions, define
classes or match on attributes. This is defence in depth: the program also runs with restricted
builtins and the allowlisted surface, inside a limited worker process.

Type hints are welcome (LLMs write them) but never needed at run time, so they are checked like
any other code and then removed from the returned tree, together with ``typing`` and
``__future__`` imports: nothing in an annotation is ever evaluated.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Collection

from rewardgen.errors import RewardCodeError
from rewardgen.sandbox.aliases import module_aliases, namespace_of, variable_aliases
from rewardgen.sandbox.methods import attribute_refusal, dtype_refusal
from rewardgen.sandbox.surface import (
    NAMESPACES,
    NUMERIC_DTYPE_NAMES,
    allowed_names,
    unavailable_message,
)

ALLOWED_MODULES = frozenset({"numpy", "math"})
# fmt: off
# allowed, then stripped (never imported): hints are never evaluated
HINT_MODULES = frozenset({"typing", "__future__", "numpy.typing"})
MAX_SOURCE_CHARS = 50_000
ENTRY_ARITY = {"compute_reward": 3, "progress": 1}
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
        # numpy's doors to files, C and the interpreter
        "ctypeslib", "lib", "f2py", "distutils", "testing", "load", "save", "savez", "savetxt",
        "loadtxt", "genfromtxt", "fromfile", "tofile", "memmap", "DataSource", "frombuffer",
        "fromregex", "dump", "info", "rec", "setbufsize", "ctypes", "os", "sys", "system",
        "popen", "mro", "setflags", "flags", "set_printoptions", "seterr", "seterrcall",
        # frames, code objects and tracebacks reachable from generators and coroutines
        "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
        "ag_code", "ag_await", "f_globals", "f_locals", "f_back", "f_builtins", "f_code",
        "tb_frame", "tb_next", "co_code", "co_consts", "func_globals", "format_map",
        # NamedTuple internals of the State view
        "_replace", "_make", "_asdict", "_fields",
        # more of numpy's doors: files, output, and modules that hold the interpreter's builtins
        # (np.ma.core.builtins.open, np.ma.core.operator.attrgetter, ...)
        "savez_compressed", "show_config", "show_runtime", "core", "builtins", "inspect",
        "operator", "functools", "warnings", "importlib", "pickle", "subprocess", "socket",
        "signal", "threading", "shutil", "pathlib", "tempfile", "io", "gc", "types",
        # Cython function and closure internals (func_globals is above)
        "func_code", "func_closure", "func_defaults", "func_dict", "cell_contents",
        # array attributes that expose or reinterpret raw memory (an object field laid over
        # bytes forges pointers) or serialise arrays
        "view", "data", "base", "tobytes", "tostring", "dumps", "getfield", "setfield",
    }
)
# the labels reward code knows the surface namespaces by, and the names bound without import
SURFACE_LABELS = {"numpy": "np", "numpy.linalg": "np.linalg", "math": "math"}
MAX_AST_DEPTH = 100  # nesting deeper than this is never needed and overflows recursive visitors
FORBIDDEN_NODES: tuple[type[ast.AST], ...] = tuple(
    node
    for node in (
        ast.Global, ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef, ast.Await, ast.Yield,
        ast.YieldFrom, ast.AsyncFor, ast.AsyncWith, ast.With, ast.Try,
        getattr(ast, "TryStar", None), getattr(ast, "Match", None),
    )
    if node is not None
)
# fmt: on
_TOP_LEVEL = (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.Expr)


def _reject(node: ast.AST, why: str) -> RewardCodeError:
    line = getattr(node, "lineno", "?")
    return RewardCodeError(f"line {line}: {why}")


def _module_allowed(module: str) -> bool:
    parts = module.split(".")
    return parts[0] in ALLOWED_MODULES and not any(
        p.startswith("_") or p in FORBIDDEN_ATTRIBUTES for p in parts[1:]
    )


def _is_hint_import(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module in HINT_MODULES and not node.level
    return isinstance(node, ast.Import) and all(a.name in HINT_MODULES for a in node.names)


def _check_import(node: ast.Import | ast.ImportFrom) -> None:
    if _is_hint_import(node):
        return
    aliases = node.names
    for alias in aliases:
        if alias.asname and alias.asname.startswith("_"):
            raise _reject(node, f"import alias {alias.asname!r} may not start with '_'")
    if isinstance(node, ast.Import):
        for alias in aliases:
            if not _module_allowed(alias.name):
                raise _reject(node, f"import of {alias.name!r} is not allowed (only numpy, math)")
            _check_surface_module(node, alias.name)
        return
    if node.level or not node.module or not _module_allowed(node.module):
        raise _reject(node, f"import from {node.module!r} is not allowed (only numpy, math)")
    for alias in aliases:
        if alias.name == "*":
            raise _reject(node, f"'from {node.module} import *' is not allowed; name what you use")
        if alias.name.startswith("_") or alias.name in FORBIDDEN_ATTRIBUTES:
            raise _reject(node, f"import of {node.module}.{alias.name} is not allowed")
    _check_surface_module(node, node.module)
    for alias in aliases:
        _check_surface_name(node, node.module, alias.name)


def _check_surface_module(node: ast.AST, module: str) -> None:
    if module not in NAMESPACES:
        raise _reject(
            node,
            f"import of {module!r} is not available in reward code; use {', '.join(NAMESPACES)}",
        )


def _check_surface_name(node: ast.AST, module: str, name: str) -> None:
    allowed = allowed_names(module)
    if name not in allowed:
        raise _reject(node, unavailable_message(SURFACE_LABELS[module], name, sorted(allowed)))


def _check_format_call(node: ast.Attribute) -> None:
    """``str.format`` reads attributes (``"{0.__class__}"``); allow it on plain literals only."""
    receiver = node.value
    if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
        raise _reject(node, "'.format' is only allowed on a string literal; use an f-string")
    try:
        fields = list(string.Formatter().parse(receiver.value))
    except ValueError as e:
        raise _reject(node, f"malformed format string {receiver.value!r}: {e}") from e
    for _, name, spec, _ in fields:
        if (name and "." in name) or (spec and "{" in spec):
            raise _reject(node, f"format field {name!r} reads an attribute; use an f-string")


def _check_node(node: ast.AST, entry: str) -> None:
    if isinstance(node, FORBIDDEN_NODES):
        raise _reject(node, f"{type(node).__name__} statements are not allowed in reward code")
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        _check_import(node)
    elif isinstance(node, ast.Name):
        if node.id.startswith("__") or node.id in FORBIDDEN_NAMES:
            raise _reject(node, f"name {node.id!r} is not allowed in reward code")
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("_") or node.attr in FORBIDDEN_ATTRIBUTES:
            raise _reject(node, f"attribute {node.attr!r} is not allowed in reward code")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            # np.mean = ... would also change the trusted fitness code in the same process
            raise _reject(
                node,
                f"attribute assignment to .{node.attr} is not allowed: reward code may not "
                "change modules or shared objects; use a local variable",
            )
        if node.attr == "format":
            _check_format_call(node)
    elif isinstance(node, ast.Constant) and (
        (isinstance(node.value, str) and "__" in node.value)
        or (isinstance(node.value, bytes) and b"__" in node.value)
    ):
        raise _reject(node, "string constants containing '__' are not allowed")
    elif isinstance(node, ast.FunctionDef):
        if node.name.startswith("__") and node.name != entry:
            raise _reject(node, f"function name {node.name!r} may not start with '__'")
    elif isinstance(node, ast.arg) and node.arg.startswith("__"):
        raise _reject(node, f"parameter name {node.arg!r} may not start with '__'")


def _check_depth(tree: ast.Module) -> None:
    """Reject deep nesting iteratively, before any recursive visitor or the compiler sees it.

    ``x = 1+1+...+1`` with 500 terms parses, but a recursive walk over it raises RecursionError,
    which would escape the check (in the loop's own process) as something other than a result.
    """
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise _reject(
                node,
                f"expression nested more than {MAX_AST_DEPTH} levels deep; split it into "
                "named intermediate values",
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_top_level(tree: ast.Module, entry: str) -> None:
    for node in tree.body:
        if isinstance(node, FORBIDDEN_NODES):
            _check_node(node, entry)
        if not isinstance(node, _TOP_LEVEL):
            hint = ""
            if isinstance(node, ast.If):
                hint = "; remove any `if __name__ == '__main__':` test block"
            raise _reject(
                node,
                f"top-level {type(node).__name__} is not allowed; only imports, constants and "
                f"functions{hint}",
            )
        if isinstance(node, ast.Expr) and not (
            isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        ):
            raise _reject(node, "top-level expressions other than docstrings are not allowed")
    entries = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry]
    if not entries:
        raise RewardCodeError(f"no top-level function named {entry!r}; define def {entry}(...)")
    if len(entries) > 1:
        raise RewardCodeError(f"{entry!r} is defined {len(entries)} times; define it once")
    want = ENTRY_ARITY.get(entry)
    args = entries[0].args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    if want is not None and args.vararg is None and not required <= want <= positional:
        expected = "(state, action, prev_state)" if want == 3 else "(state)"
        raise _reject(
            entries[0],
            f"{entry} must accept {expected}; it takes {positional} positional parameters",
        )


def _check_surface(tree: ast.Module, state_fields: Collection[str] | None) -> None:
    """Names from numpy/math on the allowlist, methods on theirs, numeric dtypes, no rebinding.

    Runs on the tree without hints (annotations are never evaluated, so ``np.typing`` may
    appear there). An alias that escapes this (``m = np; m.random``) meets the same allowlist
    at run time; this check gives the reason before a worker starts.
    """
    aliases = module_aliases(tree)
    protected = NUMERIC_DTYPE_NAMES | aliases.keys()
    aliases = variable_aliases(tree, aliases)
    for node in ast.walk(tree):
        bound: str | None = None
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound = node.id
        elif isinstance(node, ast.arg):
            bound = node.arg
        elif isinstance(node, ast.FunctionDef):
            bound = node.name
        if bound is not None and bound in protected:
            raise _reject(node, f"name {bound!r} may not be rebound in reward code; pick another")
        if isinstance(node, ast.Attribute):
            namespace = namespace_of(node.value, aliases)
            inner = node.value  # np.random.seed: the namespace's refusal (np.random) comes first
            parent = (
                namespace_of(inner.value, aliases) if isinstance(inner, ast.Attribute) else None
            )
            if namespace is None and parent is not None and isinstance(inner, ast.Attribute):
                _check_surface_name(inner, parent, inner.attr)
            if namespace is not None:
                _check_surface_name(node, namespace, node.attr)
            elif why := attribute_refusal(node.attr, state_fields):
                raise _reject(node, why)
        elif isinstance(node, ast.Call):
            func = node.func
            on_namespace = isinstance(func, ast.Attribute) and (
                namespace_of(func.value, aliases) is not None
            )
            if why := dtype_refusal(node, on_namespace):
                raise _reject(node, why)


class _StripHints(ast.NodeTransformer):
    """Remove annotations and typing/__future__ imports, so no hint is evaluated or imported."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                arg.annotation = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    def visit_Import(self, node: ast.Import) -> ast.AST:
        return ast.copy_location(ast.Pass(), node) if _is_hint_import(node) else node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        return ast.copy_location(ast.Pass(), node) if _is_hint_import(node) else node


def check_source(
    source: str, entry: str = "compute_reward", state_fields: Collection[str] | None = None
) -> ast.Module:
    """Parse ``source`` and enforce the policy; return the AST to compile (hints removed).

    Args:
        source: the reward program.
        entry: the function it must define.
        state_fields: the task's State field names, the only attribute names besides numpy's,
            math's and the allowlisted methods (``sandbox/methods.py``); None where the task is
            not known (then any name no array, number or container has is taken for a field).

    Raises:
        RewardCodeError: with the line and the rule broken.
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise RewardCodeError(
            f"the reward program is {len(source)} characters; keep it under {MAX_SOURCE_CHARS}"
        )
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise RewardCodeError(f"syntax error at line {e.lineno}: {e.msg}") from e
    except (ValueError, RecursionError, MemoryError) as e:
        raise RewardCodeError(
            f"the reward program cannot be parsed: {type(e).__name__}: {e}"
        ) from e
    _check_depth(tree)
    try:
        _check_top_level(tree, entry)
        for node in ast.walk(tree):
            _check_node(node, entry)
        stripped = _StripHints().visit(tree)
        _check_surface(stripped, state_fields)
        return ast.fix_missing_locations(stripped)
    except RecursionError as e:  # belt and braces: _check_depth should make this unreachable
        raise RewardCodeError(
            "the reward program is nested too deeply to check; split long expressions"
        ) from e
