"""The import graph of rewardgen (module-level and lazy imports): no cycle, layers in one direction."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import rewardgen

PACKAGE = Path(rewardgen.__file__).parent
LOWER = ("rewardgen.config", "rewardgen.errors", "rewardgen.runs", "rewardgen.sandbox",
         "rewardgen.tasks")
UPPER = ("rewardgen.search", "rewardgen.executors", "rewardgen.reporting", "rewardgen.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else module


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            g.add_edges_from((name, t) for t in targets if t in modules and t != name)
    return g


def test_no_module_imports_itself_through_others(graph: nx.DiGraph) -> None:
    assert list(nx.simple_cycles(graph)) == []


def test_lower_layers_never_import_the_search_executors_or_reporting(graph: nx.DiGraph) -> None:
    wrong = [(a, b) for a, b in graph.edges if a.startswith(LOWER) and b.startswith(UPPER)]
    assert wrong == []


def test_packages_depend_in_one_direction(graph: nx.DiGraph) -> None:
    packages = nx.DiGraph()
    packages.add_edges_from((_package(a), _package(b)) for a, b in graph.edges
                            if _package(a) != _package(b))
    # runs/records.py cleans reasons with the sandbox contract, a leaf module
    packages.remove_edge("rewardgen.runs", "rewardgen.sandbox")
    leaf = [b for a, b in graph.edges if a.startswith("rewardgen.sandbox.contract")]
    assert leaf == [] or all(b.startswith(("rewardgen.errors", "rewardgen.sandbox.contract")) for b in leaf)
    assert list(nx.simple_cycles(packages)) == []


def test_no_module_is_over_400_lines() -> None:
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}
