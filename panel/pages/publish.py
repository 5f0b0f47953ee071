"""Publishing a run's comparison records as a static site, gated on the diff readers would see.

The site folder is owned by panel: every publish replaces it whole. Pages are rendered into a
temp folder beside it and swapped in by rename (old -> backup, new -> site, backup removed),
so a failure at any point leaves the previous site as it was. `DIR/.panel-published.json`
says which run is live, so `panel diff RUN` (one argument) diffs against what readers see.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from panel.digests import digest
from panel.errors import PublishError, RunStoreError
from panel.inputs.yamlsafe import YamlInputError, load_yaml
from panel.pages.diff import RunDiff, RunSide, compare_runs
from panel.pages.records import ComparisonRecord, read_records, record_json, write_atomic
from panel.pages.render import write_index, write_pages

STATE_FILE = ".panel-published.json"
APPROVALS_MAX_BYTES = 256 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approval(_Frozen):
    """One reviewed flip an editor accepts: `- tool: <slug>` / `  persona: <id>`."""

    tool: str
    persona: str


class PublishState(_Frozen):
    """What the site currently shows: written inside the site, swapped in with it."""

    format: Literal[1] = 1
    run_id: str  # relative to the runs folder it was published from
    runs_dir: str
    published_at: str
    previous_run_id: str | None = None
    records: dict[str, str]  # record slug -> sha256 of its JSON
    accepted_flips: list[Approval] = Field(default_factory=list)


class PublishReport(_Frozen):
    run_id: str
    site: str
    pages: list[str]  # record slugs
    previous_run_id: str | None
    flips: list[Approval]
    accepted: list[Approval]


def read_state(site: Path) -> PublishState | None:
    """The site's publish state, or None when nothing was published there."""
    path = site / STATE_FILE
    if not path.is_file() or path.is_symlink():
        return None
    try:
        return PublishState.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise PublishError(f"{path}: unreadable publish state: {exc}") from None


def load_approvals(path: Path) -> list[Approval]:
    """An approvals YAML file: a list of {tool, persona} (safe_load, size-capped)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PublishError(f"{path}: cannot read approvals file: {exc.strerror}") from None
    try:
        data: Any = load_yaml(raw, max_bytes=APPROVALS_MAX_BYTES).data
        if not isinstance(data, list):
            raise ValueError("expected a list of entries like '- tool: SLUG' / '  persona: ID'")
        return [Approval.model_validate(item) for item in data]
    except YamlInputError as exc:
        raise PublishError(f"{path}: invalid approvals file: {exc.message}") from None
    except ValueError as exc:
        raise PublishError(f"{path}: invalid approvals file: {exc}") from None


def unaccepted_flips(
    diff: RunDiff, accept_all: bool, approvals: Sequence[Approval]
) -> tuple[list[Approval], list[Approval]]:
    """(all flips, the flips nobody accepted)."""
    flips = [Approval(tool=c.tool, persona=c.persona) for c in diff.changes if c.kind == "flip"]
    if accept_all:
        return flips, []
    approved = set(approvals)
    return flips, [f for f in flips if f not in approved]


def _refusal(run_id: str, previous: str, diff: RunDiff, missing: list[Approval], site: Path) -> str:
    lines = []
    for c in diff.changes:
        if c.kind == "flip" and Approval(tool=c.tool, persona=c.persona) in missing:
            before = "ship" if c.before and c.before.ship else "not ship"
            after = "ship" if c.after and c.after.ship else "not ship"
            lines.append(f"  {c.tool} × {c.persona}: {before} -> {after}")
    return (
        f"run {run_id} flips {len(missing)} verdict(s) against the published run {previous}:\n"
        + "\n".join(lines)
        + f"\nreview them with `panel diff {run_id} --site {site}`, then publish with "
        "--accept-flips, or list them in an approvals file (--approvals FILE) as:\n"
        + "".join(f"  - tool: {m.tool}\n    persona: {m.persona}\n" for m in missing[:3])
    ).rstrip()


def render_site(
    folder: Path,
    records: Sequence[ComparisonRecord],
    state: PublishState,
    *,
    write_page: Callable[[ComparisonRecord, Path], object] = write_pages,
) -> None:
    """Render every record, the index and the state file into an empty folder."""
    for record in records:
        write_page(record, folder)
    write_index(records, folder, title="Tool comparisons")
    write_atomic(folder / STATE_FILE, state.model_dump_json(indent=2) + "\n")


def swap_in(site: Path, render: Callable[[Path], None]) -> None:
    """Render into a temp folder beside `site`, then swap it in; on failure `site` is untouched."""
    if site.is_symlink() or (site.exists() and not site.is_dir()):
        raise PublishError(f"{site} is a symlink or not a folder; refusing to replace it")
    parent = site.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=parent, prefix=f".{site.name}.new-"))
    try:
        os.chmod(fresh, 0o755)  # noqa: S103 - mkdtemp's 0700 would hide the site from a web server
        render(fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    backup = parent / f".{site.name}.old-{secrets.token_hex(4)}"
    had_site = site.exists()
    if had_site:
        os.rename(site, backup)
    try:
        os.rename(fresh, site)
    except BaseException:
        if had_site:
            os.rename(backup, site)
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if had_site:
        shutil.rmtree(backup, ignore_errors=True)


def publish_records(
    run: RunSide,
    records: Sequence[ComparisonRecord],
    *,
    site: Path,
    runs_dir: Path,
    previous: RunSide | None,
    accept_flips: bool = False,
    approvals: Sequence[Approval] = (),
    now: datetime | None = None,
    write_page: Callable[[ComparisonRecord, Path], object] = write_pages,
) -> PublishReport:
    """Gate on flips against `previous` (the live run), then swap the rendered site in."""
    manifest = run[0]
    if not records:
        raise PublishError(
            f"run {manifest.run_id} has no comparison records; build them with "
            f"`panel compare TOOL_A TOOL_B --run {manifest.run_id}` first"
        )
    flips: list[Approval] = []
    missing: list[Approval] = []
    if previous is not None and previous[0].run_id != manifest.run_id:
        diff = compare_runs(previous, run)
        flips, missing = unaccepted_flips(diff, accept_flips, approvals)
        if missing:
            raise PublishError(_refusal(manifest.run_id, previous[0].run_id, diff, missing, site))
    state = PublishState(
        run_id=manifest.run_id,
        runs_dir=str(runs_dir),
        published_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        previous_run_id=previous[0].run_id if previous else None,
        records={r.slug: digest(record_json(r)) for r in records},
        accepted_flips=flips,
    )
    swap_in(site, lambda folder: render_site(folder, records, state, write_page=write_page))
    return PublishReport(
        run_id=manifest.run_id,
        site=str(site),
        pages=[r.slug for r in records],
        previous_run_id=state.previous_run_id,
        flips=flips,
        accepted=flips,
    )


def open_run(runs_dir: Path, run_id: str) -> tuple[RunSide, Path]:
    """(manifest, results) of a run and its records folder, via the run store."""
    from panel.store.runs import RunStore

    store = RunStore.open(runs_dir, run_id)
    return (store.manifest(), store.results()), store.path / "records"


def publish(
    run_id: str,
    *,
    runs_dir: Path,
    site: Path,
    accept_flips: bool = False,
    approvals_file: Path | None = None,
) -> PublishReport:
    """`panel publish`: the run's records, gated on flips against the site's live run."""
    run, records_dir = open_run(runs_dir, run_id)
    records = read_records(records_dir)
    approvals = load_approvals(approvals_file) if approvals_file else []
    state = read_state(site)
    previous: RunSide | None = None
    if state is not None and state.run_id != run_id:
        try:
            previous = open_run(runs_dir, state.run_id)[0]
        except RunStoreError as exc:
            if not accept_flips:
                raise PublishError(
                    f"the live run {state.run_id} cannot be read ({exc}), so flips cannot be "
                    "checked; pass --accept-flips to publish anyway"
                ) from None
    return publish_records(
        run,
        records,
        site=site,
        runs_dir=runs_dir,
        previous=previous,
        accept_flips=accept_flips,
        approvals=approvals,
    )


def published_run_id(site: Path) -> str:
    """The run id the site shows (for one-argument `panel diff`)."""
    state = read_state(site)
    if state is None:
        raise PublishError(f"nothing published in {site}; give two runs to diff, or pass --site")
    return state.run_id


__all__ = [
    "STATE_FILE",
    "Approval",
    "PublishReport",
    "PublishState",
    "load_approvals",
    "publish",
    "publish_records",
    "published_run_id",
    "read_state",
    "swap_in",
]
