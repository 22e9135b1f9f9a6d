"""The two packages are independent systems: neither may import the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(
    ("package", "other"), [("twostream", "twitchgraph"), ("twitchgraph", "twostream")]
)
def test_packages_never_import_each_other(package: str, other: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files, f"no sources found for {package}"
    offenders = [str(f.relative_to(SRC)) for f in files if other in _imported_roots(f)]
    assert offenders == []
