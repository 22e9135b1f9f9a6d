"""MkDocs hook: reference pages generated from the code at build time, so they cannot drift.

A page asks for a generated block with one HTML comment on a line of its own:

    <!-- reference: cli twostream.cli:app twostream -->
    <!-- reference: store-schema -->

- ``cli MODULE:APP NAME``: every command of a Typer app, walked through Typer's own Click
  command (``typer.main.get_command``): usage, help text, epilog and a table of arguments and
  options with their types and defaults: what ``--help`` prints, as Markdown.
- ``store-schema``: the tables and columns of a new twitchgraph store (every owner's tables
  created), read back from DuckDB, and the schema version with its migrations.
- ``sim-faults``: the faults the simulated Twitch can inject (``twitchgraph.sim.FAULTS``).
- ``code-map PROJECT``: every module and subpackage under ``PROJECT/src/PROJECT/`` with the
  first sentence of its docstring, read with ``ast`` (nothing is imported), so the map
  follows every move and every docstring edit.

Why a hook and not the mkdocs-click plugin: Typer 0.29 builds its commands on its own vendored
copy of Click (``typer._click``), which mkdocs-click does not accept as a Click command; a hook
needs no package beyond MkDocs and reads the app exactly as ``--help`` does. The checkout's
``src/`` folders go first on ``sys.path``, so the pages describe this checkout's code, not an
installed copy. A marker that cannot be rendered fails the build.
"""

from __future__ import annotations

import ast
import html
import importlib
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_MARKER = re.compile(r"^<!-- reference: (?P<what>[\w-]+)(?P<args>(?: \S+)*) -->$", re.MULTILINE)
_ROOT = Path(__file__).resolve().parents[2]


def on_config(config: Any) -> Any:
    for project in ("twitchgraph", "twostream"):
        src = str(_ROOT / project / "src")
        if src not in sys.path:
            sys.path.insert(0, src)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def render(match: re.Match[str]) -> str:
        what, args = match["what"], match["args"].split()
        try:
            if what == "cli" and len(args) == 2:
                return render_cli(*args)
            if what == "store-schema" and not args:
                return render_store_schema()
            if what == "sim-faults" and not args:
                return render_sim_faults()
            if what == "code-map" and len(args) == 1:
                return render_code_map(args[0])
        except Exception as exc:  # noqa: BLE001  (any failure is a failed docs build)
            raise PluginError(f"{page.file.src_path}: {match[0]}: {exc!r}") from exc
        raise PluginError(f"{page.file.src_path}: unknown reference marker {match[0]}")

    return _MARKER.sub(render, markdown)


# -- the CLI -------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """Text for one Markdown table cell: escaped, on one line."""
    # "\\[" is Rich's escape for a literal bracket in help text ('twitchgraph\\[spark]').
    out = html.escape(" ".join(str(text).replace("\\[", "[").split()), quote=False)
    return out.replace("|", "\\|").replace("*", "\\*")


def _fence(text: str) -> str:
    # Click's "\b" marks a paragraph it must not rewrap; in a code block nothing is rewrapped.
    body = "\n".join(line for line in text.strip("\n").splitlines() if line.strip() != "\b")
    return f"```text\n{body}\n```\n"


def _param_row(param: Any, ctx: Any) -> str | None:
    # get_help_record is Click's own API for one line of --help: (names and type, help text
    # with its [default: ...; required] note); None for a hidden parameter.
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, help_text = record
    names = " / ".join(f"`{n.strip()}`" for n in names.split(" / "))
    return f"| {names} | {_cell(help_text)} |"


def _command_section(cmd: Any, path: list[str], parent: Any) -> list[str]:
    # The parent's Context class: Typer's vendored Click, not the `click` package.
    ctx = type(parent)(cmd, info_name=path[-1], parent=parent)
    out: list[str] = []
    name = " ".join(path)
    level = "#" * min(len(path) + 1, 4)
    out.append(f"{level} `{name}`\n")
    pieces = cmd.collect_usage_pieces(ctx)
    out.append(_fence(f"{name} {' '.join(pieces)}"))
    if cmd.help:  # as --help prints it: Rich's "\\[" is a literal bracket
        out.append(_fence(cmd.help.replace("\\[", "[")))
    rows = [r for r in (_param_row(p, ctx) for p in cmd.get_params(ctx)) if r]
    if rows:
        out.append("| argument / option | description |")
        out.append("|---|---|")
        out.extend(rows)
        out.append("")
    if cmd.epilog:
        out.append(_fence(cmd.epilog))
    for sub_name in getattr(cmd, "commands", {}):
        sub = cmd.commands[sub_name]
        if not getattr(sub, "hidden", False):
            out.extend(_command_section(sub, [*path, sub_name], ctx))
    return out


def render_cli(target: str, name: str) -> str:
    import typer.main

    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    root = typer.main.get_command(app)
    ctx_class = root.context_class
    ctx = ctx_class(root, info_name=name)
    lines = [_fence(root.help or "")] if root.help else []
    lines.append("| command | what it does |")
    lines.append("|---|---|")
    for sub_name, sub in root.commands.items():
        if getattr(sub, "hidden", False):
            continue
        anchor = re.sub(r"[^\w-]", "", f"{name}-{sub_name}".replace(" ", "-")).lower()
        lines.append(f"| [`{name} {sub_name}`](#{anchor}) | "
                     f"{_cell(sub.get_short_help_str(limit=200))} |")
    lines.append("")
    for sub_name, sub in root.commands.items():
        if not getattr(sub, "hidden", False):
            lines.extend(_command_section(sub, [name, sub_name], ctx))
    return "\n".join(lines)


# -- the twitchgraph store -----------------------------------------------------------------


def render_store_schema() -> str:
    from twitchgraph.build.bots import ensure_bot_table
    from twitchgraph.enrich.schema import ensure_enrich_tables
    from twitchgraph.store.db import _MIGRATIONS, SCHEMA_VERSION, open_store

    con = open_store(":memory:")
    try:
        ensure_bot_table(con)
        ensure_enrich_tables(con)
        columns = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall()
    finally:
        con.close()
    tables: dict[str, list[str]] = {}
    for table, column, data_type in columns:
        tables.setdefault(table, []).append(f"`{column}` {data_type.lower()}")
    lines = [f"The current schema version is **{SCHEMA_VERSION}**. Its tables and columns, "
             "as a new store has them:", "",
             "| table | columns |", "|---|---|"]
    lines.extend(f"| `{t}` | {', '.join(cols)} |" for t, cols in tables.items())
    lines += ["", "Migrations (opening an older store applies them in one transaction and "
              "prints one line):", "", "| from | to | what changed |", "|---:|---:|---|"]
    lines.extend(f"| {v} | {v + 1} | {_cell(what)} |"
                 for v, (what, _) in sorted(_MIGRATIONS.items()))
    return "\n".join(lines) + "\n"


# -- the simulator -------------------------------------------------------------------------


def render_sim_faults() -> str:
    from twitchgraph.sim import FAULTS

    lines = ["| fault | what the simulator does |", "|---|---|"]
    lines.extend(f"| `{name}` | {_cell(what)} |" for name, what in FAULTS.items())
    return "\n".join(lines) + "\n"


# -- the code maps -------------------------------------------------------------------------


def _summary(path: Path) -> str:
    """The first sentence of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "`")
    match = re.match(r"(.+?[^.]\.)(\s|$)", first)  # not "..." or "e.g."'s last dot
    return (match[1] if match else first).rstrip(".")


def render_code_map(project: str) -> str:
    root = _ROOT / project / "src" / project
    if not root.is_dir():
        raise ValueError(f"no package folder {root}")
    lines = [f"Every module under `{project}/src/{project}/`, with the first sentence of its "
             "docstring (generated when the site is built).", "",
             "| module | what it does |", "|---|---|"]
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or any(p.startswith(".") for p in rel.parts):
            continue
        if rel == Path("__init__.py"):
            continue
        if path.name == "__init__.py":
            name = f"**`{'/'.join(rel.parts[:-1])}/`**"
        else:
            name = f"`{rel.as_posix()}`"
        lines.append(f"| {name} | {_cell(_summary(path))} |")
    return "\n".join(lines) + "\n"
