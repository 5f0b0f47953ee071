"""The command line: a thin client of the library.

Each command lives in its own module and registers itself on a Typer app; a command parses
options, calls one library function, renders, and maps PanelError to an exit code here.

Commands load lazily: `panel --help` lists them from the short help below without importing
any of them, and `panel X` imports only `panel.cli.X` (and what X needs). The SDKs, the
engine and the page templates therefore cost nothing to commands that never touch them.
tests/architecture/test_public_api.py checks that every short help here is the command's own
first line.
"""

from __future__ import annotations

import shutil
import sys
from importlib import import_module
from typing import Annotated, Any

import typer
import typer._click as click  # typer vendors click: its classes, not the click package's
from typer.core import TyperCommand, TyperGroup

from panel import __version__
from panel.errors import PanelError
from panel.inputs.textsafety import terminal_safe
from panel.redact import redact

# Command name → its one-line help, in --help order. The module is panel.cli.<name>, and it
# defines register(app).
COMMANDS: dict[str, str] = {
    "run": "Run every persona on every tool; stream the verdicts; write `runs/<run-id>/`.",
    "compare": 'Build and render "A vs B": HTML, Markdown and JSON, running the panel for what '
    "is missing.",
    "batch": "Run the panel over a manifest's tools, reusing unchanged verdicts; build its "
    "comparisons.",
    "diff": "Review what changed, page by page and persona by persona, flips first, and why.",
    "publish": "Publish runs' comparison pages onto the site, atomically, gated page by page.",
    "personas": "List, show and lint persona files.",
    "runs": "List runs, newest first: id, when, model, tools × personas, status, cost.",
    "lint": "Check verdicts against the house rules: figures, wording, copies, calibration.",
    "emulator": "Serve the emulator; prints `listening on http://HOST:PORT` once ready.",
}

_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    # Help in rich panels where there is room; below 100 columns (and when piped) the plain
    # click layout, whose help column keeps most of the width (rich's type column squeezes it
    # to a dozen characters at 80).
    "rich_markup_mode": "markdown" if shutil.get_terminal_size().columns >= 100 else None,
}


def command_app(name: str) -> typer.Typer:
    """A Typer app holding just the command `name` (imports its module)."""
    sub = typer.Typer(**_SETTINGS)
    import_module(f"panel.cli.{name}").register(sub)
    return sub


class _LazyGroup(TyperGroup):
    """A click group that imports a command's module only when that command runs."""

    _listing = False  # while the group's own help is drawn: stand-ins carrying the short help

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name])
        group = typer.main.get_group(command_app(cmd_name))
        return group.get_command(ctx, cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="panel",
    cls=_LazyGroup,
    help="Reviewer-panel verdicts for software tools: run a panel, compare, diff, publish.",
    no_args_is_help=True,
    **{**_SETTINGS, "rich_markup_mode": "markdown"},  # the command list wraps, never truncates
)


def _print_version(value: bool) -> None:
    if value:
        print(f"panel {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Reviewer-panel verdicts for software tools: run a panel, compare, diff, publish."""


def main() -> None:
    """Entry point: domain and file-system errors become one line on stderr; exit 2 (a gate: 1)."""
    try:
        app()
    except PanelError as exc:
        print(f"panel: error: {terminal_safe(redact(str(exc)))}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except OSError as exc:
        # The file system said no (disk full, read-only, a file where a folder should be)
        # somewhere no PanelError was raised: still one line and exit 2, never a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"panel: error: {terminal_safe(exc.strerror or str(exc))}{where}", file=sys.stderr)
        raise SystemExit(2) from None
