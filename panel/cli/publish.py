"""`panel publish RUN... --site DIR`: add or update those runs' pages, keep the rest, gated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from panel.cli.options import SiteSettingsOpt
from panel.inputs.textsafety import terminal_safe
from panel.pages.publish import PublishReport, flip_note, is_tool_page, publish
from panel.pages.sitesettings import find_site_settings


def _counts(report: PublishReport, tool_pages: bool) -> str:
    def mine(slugs: list[str]) -> int:
        return sum(1 for s in slugs if is_tool_page(s) == tool_pages)

    updated = [u for u in report.updated if is_tool_page(u.slug) == tool_pages]
    flips = sum(len(u.flips) for u in updated)
    return (
        f"{mine(report.added)} added, {len(updated)} updated ({flips} flip(s)), "
        f"{mine(report.unchanged)} unchanged, {mine(report.kept)} kept, "
        f"{mine(report.removed)} removed"
    )


def _summary(report: PublishReport) -> list[str]:
    head = (
        f"published run{'s' if len(report.run_ids) > 1 else ''} "
        f"{', '.join(report.run_ids) or '(none)'} to {report.site}: "
        f"comparisons {_counts(report, False)}; tool pages {_counts(report, True)}; "
        f"{len(report.site_pages)} page(s) on the site"
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
    for slug, found in report.lint.items():
        lines.append(f"  lint warnings on {slug} (house rules; --fail-on lint blocks them):")
        lines += [f"    {terminal_safe(line)}" for line in found]
    if report.restyled:
        lines.append(
            f"  re-rendered {len(report.restyled)} kept page(s) in the new frame "
            "(site settings or page templates changed; their verdicts did not)"
        )
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
    fail_on: Annotated[
        Literal["lint"] | None,
        typer.Option(
            "--fail-on", help="lint: refuse pages whose verdicts have lint findings (warnings)."
        ),
    ] = None,
    site_settings: SiteSettingsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Publish runs' comparison pages onto the site, atomically, gated page by page.

    Exit 0 published; 1 refused by a gate (flips, incomplete or synthetic pages, lint findings
    with --fail-on lint; the site is unchanged); 2 an error (an unsafe --site, a missing run,
    a bad approvals file).
    """
    try:
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
            fail_on_lint=fail_on == "lint",
            site_settings=find_site_settings(site_settings),
        )
    except KeyboardInterrupt:
        # The swap is one step: whichever side of it Ctrl-C fell on, the site is whole. Only
        # the two-rename fallback has a moment without one, which the next publish repairs.
        state = "holds the pages from before or after it" if site.exists() else "is missing"
        typer.echo(f"publish interrupted: {site} {state}; publish again to finish", err=True)
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    for line in _summary(report):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_cmd)
