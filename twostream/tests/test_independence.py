"""twostream is a project of its own: nothing in it imports twitchgraph."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("folder", ["src", "tests", "benchmarks"])
def test_never_imports_twitchgraph(folder: str) -> None:
    files = sorted((PROJECT / folder).rglob("*.py"))
    assert files, f"no sources found in {folder}"
    offenders = [str(f.relative_to(PROJECT)) for f in files if "twitchgraph" in _imported_roots(f)]
    assert offenders == []
