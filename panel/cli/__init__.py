"""The command line: a thin client of the library.

Each command lives in its own module and registers itself on the app; a command parses
options, calls one library function, renders, and maps PanelError to an exit code here.
"""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from panel.errors import PanelError

app = typer.Typer(
    name="panel",
    help="Reviewer-panel verdicts for software tools: run a panel, compare, diff, publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings reflow as paragraphs
)

# Command modules, in --help order. Each defines register(app).
_COMMANDS = ["run", "compare", "batch", "diff", "publish", "personas", "emulator"]


def _register_all() -> None:
    for name in _COMMANDS:
        try:
            module = import_module(f"panel.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"panel.cli.{name}":
                continue  # command not built yet
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: domain errors become one clear line on stderr and exit code 2."""
    try:
        app()
    except PanelError as exc:
        print(f"panel: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
