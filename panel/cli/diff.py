"""`panel diff RUN_A [RUN_B]`: per-persona differences between runs; --fail-on gates CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from panel.pages.diff import FailOn, RunDiff, compare_runs, format_diff
from panel.pages.publish import open_run, open_verdicts, published_run_id
from panel.store.runindex import resolve_run_id

Format = Literal["text", "md", "html", "json"]


def diff_runs(run_a: str, run_b: str | None, runs_dir: Path, site: Path) -> RunDiff:
    """Diff two runs; with one, diff the site's published run (before) against it (after)."""
    before, after = (run_a, run_b) if run_b else (published_run_id(site), run_a)
    before, after = resolve_run_id(runs_dir, before), resolve_run_id(runs_dir, after)
    verdicts = (open_verdicts(runs_dir, before), open_verdicts(runs_dir, after))
    return compare_runs(open_run(runs_dir, before)[0], open_run(runs_dir, after)[0], verdicts)


def diff_cmd(
    run_a: Annotated[str, typer.Argument(help="The earlier run (or, alone, the new run).")],
    run_b: Annotated[str | None, typer.Argument(help="The later run.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    site: Annotated[
        Path, typer.Option("--site", help="Published site (for the one-argument form).")
    ] = Path("site"),
    fmt: Annotated[Format, typer.Option("--format", help="text, md, html or json.")] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 on any flip; on any flip but those on unstable pairs (stable-flip: "
            "pairs whose samples disagree may be noise); or on any change.",
        ),
    ] = None,
) -> None:
    """Show what changed between two runs, persona by persona, and why."""
    diff = diff_runs(run_a, run_b, runs_dir, site)
    typer.echo(format_diff(diff, "json" if as_json else fmt), nl=False)
    if fail_on and diff.fails(fail_on):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff_cmd)
