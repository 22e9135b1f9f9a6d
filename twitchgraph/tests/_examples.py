"""The `Example:` lines of every `twitchgraph` command's help, as a reader copies them.

``test_cli_examples`` runs them all but one; ``test_build_engines`` runs the Spark one beside
the Spark session it already holds (a JVM costs ~15 s to start).
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from twitchgraph.cli import app

SPARK_EXAMPLE = "twitchgraph build --engine spark"


def help_examples() -> list[tuple[str, str]]:
    """(command path, example command line) for every example, as `--help` prints it (rich
    markup rendered: the text a reader copies).

    The examples are taken from click's text of each command, split into commands (a line
    starting with ``twitchgraph`` starts one, other lines continue it).
    """
    found: list[tuple[str, str]] = []

    def walk(command, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (Typer's own copy of Click's Group)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        if "Example:" not in (command.help or ""):
            return
        shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"}).output
        lines, current = [], None
        for raw in shown.split("Example:", 1)[1].splitlines():
            line = raw.strip()
            if not line or line.startswith(("╭", "│", "╰")):
                if current is not None:
                    break
                continue
            if line.startswith("twitchgraph "):
                current = [line]
                lines.append(current)
            elif current is not None:
                current.append(line)
        found.extend((" ".join(path), " ".join(parts)) for parts in lines)

    walk(typer.main.get_command(app), [])
    return found
