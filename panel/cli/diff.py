"""`panel diff [RUN_A [RUN_B]]`: an editor's review of what changed; --fail-on gates CI.

No run: what publishing the newest run would change on the site. One run: what publishing it
would change (a run that makes no pages is compared with the site's newest run). Two runs:
run A against run B. Colour on a terminal, plain when piped (or NO_COLOR); lines wrap.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.text import Text

from panel.errors import PublishError
from panel.pages.diff import FailOn, RunDiff
from panel.pages.diffformat import Style, format_diff, review_lines
from panel.pages.diffsource import diff_runs, diff_site
from panel.pages.publish import candidates, published_run_id
from panel.store.runindex import resolve_run_id

Format = Literal["text", "md", "html", "json"]
COLOURS = {
    "title": "bold",
    "heading": "bold underline",
    "page": "bold cyan",
    "muted": "dim",
    "flip": "bold magenta",
    "changed": "yellow",
    "added": "green",
    "removed": "red",
    "del": "red strike",
    "ins": "bold green",
    "field": "bold",
}


def review(runs_dir: Path, site: Path, run_a: str | None, run_b: str | None) -> RunDiff:
    """The diff the arguments ask for (see the module docstring)."""
    if run_a and run_b:
        return diff_runs(runs_dir, run_a, run_b)
    run = resolve_run_id(runs_dir, run_a or "latest")
    if not candidates_of(runs_dir, run):  # no pages to review: the run against the site's run
        return diff_runs(runs_dir, published_run_id(site), run)
    return diff_site(runs_dir, site, run)


def candidates_of(runs_dir: Path, run: str) -> bool:
    try:
        return bool(candidates([run], runs_dir))
    except PublishError:  # a run with nothing to publish
        return False


def _print_review(diff: RunDiff) -> None:
    console = Console(highlight=False, soft_wrap=True)
    coloured = console.is_terminal and not os.environ.get("NO_COLOR") and console.color_system
    if not coloured:
        sys.stdout.write(format_diff(diff, "text"))
        return
    width = max(60, min(console.width, 120))
    for line in review_lines(diff, Style(width=width, markers=False)):
        text = Text()
        for chunk, style in line:
            text.append(chunk, style=COLOURS.get(style, ""))
        console.print(text)


def diff_cmd(
    run_a: Annotated[
        str | None, typer.Argument(help="The earlier run; alone: the run to publish.")
    ] = None,
    run_b: Annotated[str | None, typer.Argument(help="The later run.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    site: Annotated[
        Path, typer.Option("--site", help="Published site (for the zero- and one-run forms).")
    ] = Path("site"),
    fmt: Annotated[Format, typer.Option("--format", help="text, md, html or json.")] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 on any flip; on any flip but those on unstable pairs (stable-flip: "
            "pairs whose samples disagree may be noise); on any change; or on any lint finding "
            "in the later run.",
        ),
    ] = None,
) -> None:
    """Review what changed, page by page and persona by persona, flips first, and why."""
    diff = review(runs_dir, site, run_a, run_b)
    if fmt == "text" and not as_json:
        _print_review(diff)
    else:
        typer.echo(format_diff(diff, "json" if as_json else fmt), nl=False)
    if fail_on and diff.fails(fail_on):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff_cmd)
