"""`panel lint RUN` / `panel lint --results FILE TOOL_FILE...`: verdicts against the house rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panel.cli.options import JsonOpt
from panel.errors import ConfigError
from panel.inputs.textsafety import terminal_safe
from panel.lint.report import format_report
from panel.lint.sources import lint_file, lint_run


def lint_cmd(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="The run (id, unique prefix or latest); with --results, the tool files (or "
            "folders) its verdicts review."
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results", help="A results file in the documented format (one result per line)."
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Check verdicts against the house rules: figures, wording, copies, calibration.

    Recomputes every finding (docs/lint.md) and changes nothing. Exit 0 when there are none,
    1 when there are findings, 2 on an error (no such run, an unreadable file).
    """
    args = targets or []
    if results is not None:
        if not args:
            raise ConfigError("--results FILE needs the tool files its verdicts review")
        report = lint_file(results, [Path(a) for a in args])
    else:
        if len(args) != 1:
            raise ConfigError("give one run (id, prefix or latest), or --results FILE TOOL_FILE...")
        report = lint_run(runs_dir, args[0])
    if json_out:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(terminal_safe(format_report(report)), nl=False)
    raise typer.Exit(1 if report.counts.findings else 0)


def register(app: typer.Typer) -> None:
    app.command("lint")(lint_cmd)
