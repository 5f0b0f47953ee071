"""`panel publish RUN --site DIR`: render the run's records; refuses unaccepted verdict flips."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panel.pages.publish import publish


def publish_cmd(
    run: Annotated[str, typer.Argument(help="The run to publish.")],
    site: Annotated[Path, typer.Option("--site", help="Site folder (replaced whole).")] = Path(
        "site"
    ),
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    accept_flips: Annotated[
        bool, typer.Option("--accept-flips", help="Publish even if verdicts flipped.")
    ] = False,
    approvals: Annotated[
        Path | None,
        typer.Option("--approvals", help="YAML list of accepted flips: - tool: SLUG, persona: ID"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Publish a run's comparison pages, atomically, gated on flips against the live site."""
    report = publish(
        run, runs_dir=runs_dir, site=site, accept_flips=accept_flips, approvals_file=approvals
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    since = f" (was {report.previous_run_id})" if report.previous_run_id else ""
    typer.echo(f"published run {report.run_id}{since}: {len(report.pages)} page(s) in {site}")
    for flip in report.accepted:
        typer.echo(f"  accepted flip: {flip.tool} × {flip.persona}")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_cmd)
