"""Which names in a reward program stand for the surface namespaces (``np``, ``np.linalg``, ``math``).

The static check (``validate.py``) resolves ``np.x``, ``la.norm`` (``from numpy import linalg as
la``) and ``m.random`` (``m = np``) to the namespace they name, so each meets that namespace's
allowlist and its reason; every other attribute meets the method allowlist (``methods.py``).
"""

from __future__ import annotations

import ast

from rewardgen.sandbox.surface import NAMESPACES

PREBOUND = {"np": "numpy", "numpy": "numpy", "math": "math"}  # bound without an import


def module_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> surface namespace ("numpy", "numpy.linalg", "math") bound by imports."""
    aliases = dict(PREBOUND)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module in NAMESPACES:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if target in NAMESPACES:  # from numpy import linalg
                    aliases[alias.asname or alias.name] = target
    return aliases


def variable_aliases(tree: ast.Module, aliases: dict[str, str]) -> dict[str, str]:
    """``aliases`` plus the variables only ever assigned a namespace (``m = np``), so that
    ``m.random`` meets the namespace's allowlist and its reason, not the method allowlist's."""
    out = dict(aliases)
    for _ in range(3):  # short chains: a = np; b = a
        stores: dict[str, int] = {}
        to_namespace: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                stores[node.id] = stores.get(node.id, 0) + 1
            elif isinstance(node, ast.arg):
                stores[node.arg] = stores.get(node.arg, 0) + 1
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                namespace = namespace_of(node.value, out)
                if isinstance(target, ast.Name) and namespace is not None:
                    to_namespace.setdefault(target.id, []).append(namespace)
        found = {
            name: targets[0]
            for name, targets in to_namespace.items()
            if len(set(targets)) == 1 and stores.get(name) == len(targets)
        }
        if found.items() <= out.items():
            break
        out.update(found)
    return out


def namespace_of(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The surface namespace ``node`` evaluates to (``np``, ``np.linalg``), if it is one."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        parent = namespace_of(node.value, aliases)
        if parent is not None and f"{parent}.{node.attr}" in NAMESPACES:
            return f"{parent}.{node.attr}"
    return None
