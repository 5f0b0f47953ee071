"""`panel publish RUN... --site DIR`: add or update those runs' pages, keep the rest, gated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from panel.pages.publish import PublishReport, flip_note, publish


def _summary(report: PublishReport) -> list[str]:
    flips = sum(len(u.flips) for u in report.updated)
    head = (
        f"published run{'s' if len(report.run_ids) > 1 else ''} "
        f"{', '.join(report.run_ids) or '(none)'} to {report.site}: "
        f"{len(report.added)} added, {len(report.updated)} updated ({flips} flip(s)), "
        f"{len(report.unchanged)} unchanged, {len(report.kept)} kept, "
        f"{len(report.removed)} removed; {len(report.site_pages)} page(s) on the site"
    )
    lines = [head]
    lines += [f"  added     {slug}" for slug in report.added]
    for update in report.updated:
        lines.append(f"  updated   {update.slug}")
        lines += [
            f"    accepted flip: {f.tool} × {f.persona}: "
            f"{'ship' if f.before else 'not ship'} -> {'ship' if f.after else 'not ship'}"
            + flip_note(f)
            for f in update.flips
        ]
    lines += [f"  removed   {slug}" for slug in report.removed]
    lines += [f"  published incomplete: {slug}" for slug in report.incomplete]
    lines += [f"  published synthetic: {slug}" for slug in report.synthetic]
    return lines


def publish_cmd(
    runs: Annotated[
        list[str] | None, typer.Argument(help="The runs whose pages to add or update.")
    ] = None,
    site: Annotated[
        Path, typer.Option("--site", help="Site folder (panel's own: it holds .panel-site.json).")
    ] = Path("site"),
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    accept_flips: Annotated[
        bool, typer.Option("--accept-flips", help="Publish even if verdicts on pages flipped.")
    ] = False,
    approvals: Annotated[
        Path | None,
        typer.Option("--approvals", help="YAML list of accepted flips: - tool: SLUG, persona: ID"),
    ] = None,
    allow_incomplete: Annotated[
        bool,
        typer.Option("--allow-incomplete", help="Publish pages with failed or pending reviewers."),
    ] = False,
    allow_synthetic: Annotated[
        bool, typer.Option("--allow-synthetic", help="Publish pages with emulator verdicts.")
    ] = False,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Remove this page from the site.")
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove every page the given runs do not have.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Publish runs' comparison pages onto the site, atomically, gated page by page.

    Exit 0 published; 1 refused by a gate (flips, incomplete or synthetic pages; the site is
    unchanged); 2 an error (an unsafe --site, a missing run, a bad approvals file).
    """
    report = publish(
        runs or [],
        runs_dir=runs_dir,
        site=site,
        accept_flips=accept_flips,
        approvals_file=approvals,
        allow_incomplete=allow_incomplete,
        allow_synthetic=allow_synthetic,
        remove=remove or [],
        prune=prune,
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    for line in _summary(report):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_cmd)
