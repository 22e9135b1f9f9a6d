"""No module of twostream imports another in a cycle, read with ast.

First the module-level imports, those that run on import; then also the imports inside
functions, which run late on purpose (torch only when a device is used), so that a cycle cannot
hide in one either, as ``extract`` <-> ``extract_batched`` once did. Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported, and with ``lazy`` those inside its
    functions and classes too."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                found += _imports(node.body, lazy)
            found += _imports(node.orelse, lazy)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(h.body for h in node.handlers)):
                found += _imports(block, lazy)
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            found += _imports(node.body, lazy)
        elif lazy and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found += _imports(node.body, lazy)
    return found


def import_graph(src: Path, package: str, *, lazy: bool = False) -> dict[str, set[str]]:
    """``{module: modules of package it imports at module level}`` for every file under
    ``src/package``; with ``lazy``, inside functions and classes too."""
    paths = {_module_name(src, p): p for p in (src / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")).body, lazy):
            if isinstance(node, ast.Import):
                bases, names = [alias.name for alias in node.names], []
            else:
                base = node.module or ""
                if node.level:  # relative: from the module's own package upwards
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                bases, names = [base], [alias.name for alias in node.names]
            for base in bases:
                # `from pkg import sub` imports the submodule pkg.sub when there is one
                subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in paths]
                targets.update(subs or ([base] if base in paths else []))
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``.

    Examples:
        >>> find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})
        ['a', 'b', 'c', 'a']
        >>> find_cycle({"a": {"b"}, "b": set()}) is None
        True
    """
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_cycle_finder_names_a_cycle():
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"y"}}) == ["y", "z", "y"]
    assert find_cycle({"x": {"y", "z"}, "y": {"z"}, "z": set()}) is None


def test_the_graph_sees_absolute_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from p.sub import b\nimport p.c\n\ndef f():\n    import p.d\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from p import a\n")
    (pkg / "d.py").write_text("from .a import f\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..d import x\nfrom . import e\n")
    (pkg / "sub" / "e.py").write_text("")
    assert import_graph(tmp_path, "p") == {
        "p": set(), "p.a": {"p.sub.b", "p.c"}, "p.c": set(), "p.d": {"p.a"},
        "p.sub": set(), "p.sub.b": {"p.d", "p.sub.e"}, "p.sub.e": set(),
    }
    assert find_cycle(import_graph(tmp_path, "p")) == ["p.a", "p.sub.b", "p.d", "p.a"]
    assert import_graph(tmp_path, "p", lazy=True)["p.a"] == {"p.sub.b", "p.c", "p.d"}


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "with-function-level"])
def test_twostream_has_no_import_cycle(lazy):
    graph = import_graph(SRC, "twostream", lazy=lazy)
    assert {"twostream.flow.methods", "twostream.extract.dataset"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
