"""Publishing runs' comparison records onto a site panel owns, gated page by page.

A site is a set of pages, each built from a known set of verdicts (the ledger, `site.py`).
`publish(RUN...)` adds or updates the pages for the records of those runs and keeps every
other page; `--remove PAGE` and `--prune` are the only ways a page leaves. The gates look
only at the pages being added or updated: a flip is a persona whose ship vote differs from the
one that page shows now; a page with a failed, pending or missing reviewer, or with a
synthetic verdict, is refused unless allowed. A refusal names the page, the reviewer and the
command that fixes it, and leaves the site as it was (exit 1, like `panel diff --fail-on`).
With samples or a jury, the ledger keeps every draw behind each verdict and whether it is
stable, and a refusal shows flips on stable verdicts (a real change) apart from flips on
unstable ones (the samples disagree: maybe noise); both need approval.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from panel.aggregate import PairVerdict, flip_stability
from panel.digests import json_digest
from panel.errors import GateRefused, InputError, PublishError
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.yamlsafe import YamlInputError, load_yaml
from panel.lint.report import findings_on, stored_report
from panel.pages.diff import TOOL_PAGE_SUFFIX, RunSide
from panel.pages.records import read_records, safe_child
from panel.pages.render import TEMPLATES, write_index, write_pages
from panel.pages.site import (
    LEGACY_STATE,
    PAGE_SUFFIXES,
    SITE_FILE,
    Approval,
    PageEntry,
    ShownDraw,
    ShownVerdict,
    SiteLedger,
    check_target,
    one_publish_at_a_time,
    read_ledger,
    recover,
    swap_in,
    write_ledger,
)
from panel.pages.sitesettings import SiteSettings
from panel.pages.toolpages import PageRecord, page_tools, read_page_record, run_tool_records
from panel.store.runindex import resolve_run_id

STATE_FILE = SITE_FILE
APPROVALS_MAX_BYTES = 256 * 1024
INCOMPLETE = ("failed", "missing")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Flip(_Frozen):
    tool: str
    persona: str
    before: bool  # what the page shows now
    after: bool
    # "unstable" (either side's samples disagree), "stable" (both sampled and stable), or
    # "unmeasured" (a side drawn once): panel.aggregate.flip_stability.
    stability: str = "unmeasured"


class PageUpdate(_Frozen):
    slug: str
    flips: list[Flip] = Field(default_factory=list)


class PublishReport(_Frozen):
    run_ids: list[str]
    run_id: str | None  # the last run given (None for a publish that only removes)
    site: str
    added: list[str] = Field(default_factory=list)
    updated: list[PageUpdate] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    pages: list[str] = Field(default_factory=list)  # the given runs' pages (added/updated/same)
    site_pages: list[str] = Field(default_factory=list)  # every page on the site now
    previous_run_id: str | None = None
    flips: list[Approval] = Field(default_factory=list)
    unstable_flips: list[Approval] = Field(default_factory=list)  # of `flips`: maybe noise
    accepted: list[Approval] = Field(default_factory=list)
    incomplete: list[str] = Field(default_factory=list)  # pages published with --allow-incomplete
    synthetic: list[str] = Field(default_factory=list)  # pages published with --allow-synthetic
    # House-rule findings on the pages added or updated (panel.lint): warnings, unless
    # --fail-on lint made them a gate.
    lint: dict[str, list[str]] = Field(default_factory=dict)
    restyled: list[str] = Field(default_factory=list)  # kept pages re-rendered in a new frame


@dataclass(frozen=True)
class Candidate:
    """A page as the given runs would show it."""

    record: PageRecord
    run_id: str
    runs_dir: Path
    verdicts: list[ShownVerdict]
    lint: tuple[str, ...] = ()  # house-rule findings on the verdicts it shows


def read_state(site: Path) -> SiteLedger | None:
    """The site's ledger, or None when nothing was published there."""
    return read_ledger(site)


def load_approvals(path: Path) -> list[Approval]:
    """An approvals YAML file: a list of {tool, persona} (safe_load, size-capped)."""
    try:  # a regular file only: a FIFO or /dev/zero would hang the publish
        raw = read_input_file(path, APPROVALS_MAX_BYTES, [Path.cwd()])
    except UnsafeFileError as exc:
        raise PublishError(f"{path}: approvals file not read: {exc}") from None
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


def content_digest(record: PageRecord) -> str:
    """The record as readers see it: without the run id and date that differ on every run."""
    data = record.model_dump(mode="json")
    data["provenance"].pop("run_id")
    data["provenance"].pop("date")
    return json_digest(data)


def shown_verdicts(
    record: PageRecord,
    run: RunSide,
    verdicts: dict[tuple[str, str], PairVerdict] | None = None,
) -> list[ShownVerdict]:
    """Every (tool, persona) the record's page shows, with the result it came from (and, with
    samples or a jury, every draw behind the verdict and whether it is stable)."""
    manifest, results = run
    out = []
    for card in page_tools(record):
        for entry in card.scorecard:
            result = results.get((card.slug, entry.persona))
            pair = (verdicts or {}).get((card.slug, entry.persona))
            drawn = pair is not None and (pair.draws > 1 or bool(manifest.jury))
            out.append(
                ShownVerdict(
                    run_id=manifest.run_id,
                    tool=card.slug,
                    persona=entry.persona,
                    status=entry.status,
                    ship=entry.ship,
                    synthetic=result.synthetic if result else record.provenance.synthetic,
                    digest=json_digest(result.model_dump(mode="json")) if result else None,
                    stable=pair.stable if pair is not None else None,
                    draws=_draws(pair) if pair is not None and drawn else [],
                )
            )
    return out


def _draws(pair: PairVerdict) -> list[ShownDraw]:
    return [
        ShownDraw(
            model=d.model,
            sample=d.sample,
            status=d.status,
            ship=d.ship,
            digest=json_digest(d.model_dump(mode="json")),
        )
        for d in pair.all_draws
    ]


def page_flips(shown: PageEntry | None, verdicts: Sequence[ShownVerdict]) -> list[Flip]:
    """Personas whose ship vote differs from the one the page shows now."""
    if shown is None:
        return []
    now = {(v.tool, v.persona): v for v in shown.verdicts}
    flips = []
    for v in verdicts:
        was = now.get((v.tool, v.persona))
        before = was.ship if was is not None else None
        if was is not None and before is not None and v.ship is not None and before != v.ship:
            how = flip_stability(was.stable, v.stable)
            flips.append(
                Flip(tool=v.tool, persona=v.persona, before=before, after=v.ship, stability=how)
            )
    return flips


def _yes(ship: bool) -> str:
    return "ship" if ship else "not ship"


FLIP_KINDS_NOTE = (
    "a flip on a stable verdict is a real change (every sample agreed, before and after); "
    "a flip on an unstable one may be sampling noise (its samples disagree): rerun it with "
    "more --samples before accepting it"
)


def flip_note(f: Flip) -> str:
    """ " (on an unstable verdict)" / " (on a stable verdict)"; nothing when unmeasured."""
    if f.stability == "unmeasured":
        return ""
    return f" (on {'an' if f.stability == 'unstable' else 'a'} {f.stability} verdict)"


def _fix_for(status: str, run_id: str) -> str:
    if status == "failed":
        return f"`panel run --resume {run_id} --retry-failed`"
    return f"`panel run --resume {run_id}`"


def _refusal(
    flips: dict[str, list[Flip]],
    incomplete: dict[str, list[ShownVerdict]],
    synthetic: dict[str, list[ShownVerdict]],
    run_of: dict[str, str],
    site: Path,
    lint: dict[str, list[str]] | None = None,
) -> str:
    lines: list[str] = []
    missing = list(
        dict.fromkeys(Approval(tool=f.tool, persona=f.persona) for fs in flips.values() for f in fs)
    )
    # A flip shows on its tool's page and on each comparison of it: one line, with its pages.
    pages_of: dict[Flip, list[str]] = {}
    for slug, page_flips_ in flips.items():
        for f in page_flips_:
            pages_of.setdefault(f, []).append(slug)
    by_pages: dict[tuple[str, ...], list[Flip]] = {}
    for f, on in pages_of.items():
        by_pages.setdefault(tuple(on), []).append(f)
    for on_pages, fs in by_pages.items():
        what = "it shows" if len(on_pages) == 1 else "they show"
        lines.append(f"page {', '.join(on_pages)}: {len(fs)} flip(s) against what {what} now")
        lines += [
            f"  {f.tool} × {f.persona}: {_yes(f.before)} -> {_yes(f.after)}{flip_note(f)}"
            for f in fs
        ]
    if any(f.stability != "unmeasured" for f in pages_of):
        lines.append(f"  {FLIP_KINDS_NOTE}")
    if flips:
        runs = " ".join(sorted({run_of[s] for s in flips}))
        lines.append(
            f"  review them with `panel diff {runs} --site {site}`, then publish with "
            "--accept-flips, or list them in an approvals file (--approvals FILE) as:"
        )
        lines += [f"  - tool: {m.tool}\n    persona: {m.persona}" for m in missing[:3]]
    for slug, gaps in incomplete.items():
        for v in gaps:
            what = "pending (no result)" if v.status == "missing" else v.status
            lines.append(
                f"page {slug}: reviewer {v.persona} is {what} on {v.tool}: finish with "
                f"{_fix_for(v.status, v.run_id)}, or publish with --allow-incomplete"
            )
    for slug, fakes in synthetic.items():
        who = ", ".join(sorted({v.persona for v in fakes}))
        lines.append(
            f"page {slug}: synthetic (emulator) verdicts from {who}: run the panel with a real "
            "--model, or publish with --allow-synthetic"
        )
    for slug, found in (lint or {}).items():
        lines.append(
            f"page {slug}: {len(found)} lint finding(s) (house rules); see `panel lint "
            f"{run_of[slug]}`, then fix them or publish without --fail-on lint:"
        )
        lines += [f"  {line}" for line in found]
    total = len({*flips, *incomplete, *synthetic, *(lint or {})})
    return f"publish refused for {total} page(s); the site is unchanged:\n" + "\n".join(lines)


def open_run(runs_dir: Path, run_id: str) -> tuple[RunSide, Path]:
    """(manifest, results) of a run and its records folder, via the run store."""
    from panel.store.runs import RunStore

    store = RunStore.open(runs_dir, run_id)
    return (store.manifest(), store.results()), store.path / "records"


def is_tool_page(slug: str) -> bool:
    return slug.endswith(TOOL_PAGE_SUFFIX)


def run_pages(
    runs_dir: Path, run_id: str, verdicts: Mapping[tuple[str, str], PairVerdict] | None = None
) -> tuple[RunSide, list[PageRecord]]:
    """A run's pages: its comparison records, then a page per tool it reviewed (with the run's
    pair `verdicts`, showing how samples or a jury split, as its comparisons do)."""
    run, records_dir = open_run(runs_dir, run_id)
    comparisons = read_records(records_dir)
    tools, _ = run_tool_records(records_dir.parent, run[0], run[1], comparisons, verdicts)
    return run, [*comparisons, *tools]


def open_verdicts(runs_dir: Path, run_id: str) -> dict[tuple[str, str], PairVerdict]:
    """Each pair's verdict over its draws (stability, every draw), via the run store."""
    from panel.store.runs import RunStore

    return RunStore.open(runs_dir, run_id).verdicts()


def candidates(run_ids: Sequence[str], runs_dir: Path) -> dict[str, Candidate]:
    """The pages the given runs make; a later run wins a page an earlier one has."""
    out: dict[str, Candidate] = {}
    for run_id in run_ids:
        verdicts = open_verdicts(runs_dir, run_id)
        run, records = run_pages(runs_dir, run_id, verdicts)
        if not records:
            raise PublishError(
                f"run {run[0].run_id} has nothing to publish: no comparison records, and no "
                "copy of its tool files to build tool pages from (a run made before copies); "
                f"build a comparison with `panel compare TOOL_A TOOL_B --run {run[0].run_id}`"
            )
        # The findings on each pair's shown draw (the one its page quotes; panel.lint).
        report = stored_report(list(run[1].values()), run_id=run[0].run_id)
        for record in records:
            shown = shown_verdicts(record, run, verdicts)
            found = findings_on(report, [(v.tool, v.persona) for v in shown])
            out[record.slug] = Candidate(record, run[0].run_id, runs_dir, shown, tuple(found))
    return out


def legacy_ledger(site: Path) -> SiteLedger | None:
    """A ledger for a site published before ledgers: rebuilt from its pages' JSON."""
    state = site / LEGACY_STATE
    if not state.is_file() or state.is_symlink():
        return None
    pages: dict[str, PageEntry] = {}
    for path in sorted(site.glob("*.json")):
        if path.is_symlink() or path.name.startswith("."):
            continue
        try:
            record = read_page_record(path)
        except InputError:
            continue
        verdicts = [
            ShownVerdict(
                run_id=record.provenance.run_id,
                tool=card.slug,
                persona=e.persona,
                status=e.status,
                ship=e.ship,
                synthetic=record.provenance.synthetic,
            )
            for card in page_tools(record)
            for e in card.scorecard
        ]
        pages[record.slug] = _entry(
            record, record.provenance.run_id, "", record.provenance.date, verdicts
        )
    try:
        last = json.loads(state.read_bytes()).get("run_id")
    except (OSError, ValueError, AttributeError):
        last = None
    return SiteLedger(
        updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        last_run_id=last if isinstance(last, str) else None,
        pages=pages,
    )


def _entry(
    record: PageRecord,
    run_id: str,
    runs_dir: str,
    when: str,
    verdicts: list[ShownVerdict],
    accepted: Sequence[Approval] = (),
) -> PageEntry:
    return PageEntry(
        slug=record.slug,
        title=record.title,
        run_id=run_id,
        runs_dir=runs_dir,
        published_at=when,
        content_digest=content_digest(record),
        incomplete=any(v.status in INCOMPLETE for v in verdicts),
        synthetic=record.provenance.synthetic or any(v.synthetic for v in verdicts),
        verdicts=verdicts,
        accepted_flips=list(accepted),
    )


def chrome_digest(site: SiteSettings | None) -> str:
    """What every page's frame depends on: the site settings and panel's page templates."""
    templates = {p.name: p.read_text("utf-8") for p in sorted(TEMPLATES.glob("*.j2"))}
    settings = site.model_dump(mode="json") if site else None
    return json_digest({"settings": settings, "templates": templates})


def build_site(
    folder: Path,
    live: Path,
    ledger: SiteLedger,
    fresh: dict[str, PageRecord],
    *,
    write_page: Callable[[PageRecord, Path], object] = write_pages,
    site: SiteSettings | None = None,
    restyle: bool = False,
) -> None:
    """Render the new site into an empty folder: ledger, fresh pages, kept pages, the index.

    A kept page is copied byte for byte, unless `restyle` (the site settings or panel's page
    templates changed since the last publish): then it is re-rendered from its own JSON, so
    every page shows the same frame; its verdicts cannot change that way.
    """
    write_ledger(folder, ledger)
    records: list[PageRecord] = []
    for slug in sorted(ledger.pages):
        if slug in fresh:
            write_page(fresh[slug], folder)
            records.append(fresh[slug])
            continue
        if restyle:
            kept = read_page_record(safe_child(live, f"{slug}.json"))
            write_page(kept, folder)
            records.append(kept)
            continue
        for suffix in PAGE_SUFFIXES:  # a kept page: byte for byte what readers see now
            source = safe_child(live, f"{slug}{suffix}")
            if source.is_file():
                shutil.copy2(source, safe_child(folder, f"{slug}{suffix}"))
        records.append(read_page_record(safe_child(folder, f"{slug}.json")))
    write_index(records, folder, title=_index_title(site), site=site)


def _index_title(site: SiteSettings | None) -> str:
    return site.name if site and site.name else "Tool verdicts"


@one_publish_at_a_time
def publish(
    runs: str | Sequence[str] = (),
    *,
    runs_dir: Path,
    site: Path,
    accept_flips: bool = False,
    approvals_file: Path | None = None,
    allow_incomplete: bool = False,
    allow_synthetic: bool = False,
    remove: Sequence[str] = (),
    prune: bool = False,
    fail_on_lint: bool = False,
    now: datetime | None = None,
    write_page: Callable[[PageRecord, Path, SiteSettings | None], object] = write_pages,
    site_settings: SiteSettings | None = None,
) -> PublishReport:
    """`panel publish RUN...`: add or update those runs' pages, keep the rest, gate per page."""
    run_ids = [runs] if isinstance(runs, str) else list(runs)
    if not run_ids and not remove:
        raise PublishError("nothing to publish: give one or more runs, or --remove PAGE")
    if prune and not run_ids:
        raise PublishError("--prune keeps only the given runs' pages: give one or more runs")
    check_target(site, runs_dir)
    run_ids = [resolve_run_id(runs_dir, r) for r in run_ids]  # `latest`, unique prefixes
    approvals = load_approvals(approvals_file) if approvals_file else []
    fresh = candidates(run_ids, runs_dir)
    recover(site)
    ledger = read_ledger(site) or legacy_ledger(site) or SiteLedger(updated_at="")
    shown = ledger.pages
    unknown = [p for p in remove if p not in shown and p not in fresh]
    if unknown:
        raise PublishError(
            f"no page {unknown[0]} on {site}; its pages are: {', '.join(sorted(shown)) or 'none'}"
        )
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    added: list[PageUpdate] = []
    updated: list[PageUpdate] = []
    unchanged: list[str] = []
    flips: dict[str, list[Flip]] = {}
    incomplete: dict[str, list[ShownVerdict]] = {}
    synthetic: dict[str, list[ShownVerdict]] = {}
    lint: dict[str, list[str]] = {}
    for slug, cand in sorted(fresh.items()):
        if slug in remove:
            continue
        old = shown.get(slug)
        if old is not None and old.content_digest == content_digest(cand.record):
            unchanged.append(slug)
            continue
        page_changes = page_flips(old, cand.verdicts)
        (updated if old else added).append(PageUpdate(slug=slug, flips=page_changes))
        if page_changes:
            flips[slug] = page_changes
        gaps = [v for v in cand.verdicts if v.status in INCOMPLETE]
        if gaps:
            incomplete[slug] = gaps
        fakes = [v for v in cand.verdicts if v.synthetic or cand.record.provenance.synthetic]
        if fakes:
            synthetic[slug] = fakes
        if cand.lint:
            lint[slug] = list(cand.lint)
    accepted_set = set(approvals)
    if not accept_flips:
        flips = {
            s: left
            for s, fs in flips.items()
            if (
                left := [
                    f for f in fs if Approval(tool=f.tool, persona=f.persona) not in accepted_set
                ]
            )
        }
    else:
        flips = {}
    blocked_incomplete = {} if allow_incomplete else incomplete
    blocked_synthetic = {} if allow_synthetic else synthetic
    blocked_lint = lint if fail_on_lint else {}
    if flips or blocked_incomplete or blocked_synthetic or blocked_lint:
        run_of = {s: c.run_id for s, c in fresh.items()}
        raise GateRefused(
            _refusal(flips, blocked_incomplete, blocked_synthetic, run_of, site, blocked_lint)
        )
    changed = {u.slug for u in added + updated}
    dropped = set(remove)
    if prune:
        dropped |= {s for s in shown if s not in fresh}
    pages = {s: e for s, e in shown.items() if s not in dropped}
    # One (tool, persona) flip shows on its tool page and on each comparison: counted once.
    all_flips = list(
        dict.fromkeys(Approval(tool=f.tool, persona=f.persona) for u in updated for f in u.flips)
    )
    unstable = list(
        dict.fromkeys(
            Approval(tool=f.tool, persona=f.persona)
            for u in updated
            for f in u.flips
            if f.stability == "unstable"
        )
    )
    for slug in changed:
        cand = fresh[slug]
        accepted = [
            Approval(tool=f.tool, persona=f.persona)
            for f in page_flips(shown.get(slug), cand.verdicts)
        ]
        pages[slug] = _entry(
            cand.record, cand.run_id, str(cand.runs_dir), when, cand.verdicts, accepted
        )
    removed = sorted(s for s in shown if s in dropped)
    chrome = chrome_digest(site_settings)
    restyle = ledger.chrome_digest != chrome and bool(shown)
    new_ledger = SiteLedger(
        updated_at=when,
        last_run_id=run_ids[-1] if run_ids else ledger.last_run_id,
        previous_run_id=ledger.last_run_id if run_ids else ledger.previous_run_id,
        chrome_digest=chrome,
        pages=dict(sorted(pages.items())),
    )
    if changed or removed or restyle or not (site / SITE_FILE).is_file():
        records = {s: fresh[s].record for s in changed}
        swap_in(
            site,
            lambda folder: build_site(
                folder,
                site,
                new_ledger,
                records,
                write_page=lambda rec, to: write_page(rec, to, site_settings),
                site=site_settings,
                restyle=restyle,
            ),
        )
    return PublishReport(
        run_ids=run_ids,
        run_id=run_ids[-1] if run_ids else None,
        site=str(site),
        added=[u.slug for u in added],
        updated=updated,
        unchanged=unchanged,
        kept=sorted(s for s in pages if s not in fresh),
        removed=removed,
        pages=sorted(s for s in fresh if s not in dropped),
        site_pages=sorted(pages),
        previous_run_id=ledger.last_run_id,
        flips=all_flips,
        unstable_flips=unstable,
        accepted=all_flips,
        incomplete=sorted(s for s in incomplete if s in changed),
        synthetic=sorted(s for s in synthetic if s in changed),
        lint={s: found for s, found in sorted(lint.items()) if s in changed},
        restyled=sorted(s for s in pages if s not in changed) if restyle else [],
    )


def published_run_id(site: Path) -> str:
    """The newest run published on the site (for one-argument `panel diff`)."""
    ledger = read_ledger(site) or legacy_ledger(site)
    if ledger is None or ledger.last_run_id is None:
        if ledger is not None and ledger.pages:
            return sorted(ledger.pages.values(), key=lambda p: p.published_at)[-1].run_id
        raise PublishError(f"nothing published in {site}; give two runs to diff, or pass --site")
    return ledger.last_run_id


__all__ = [
    "STATE_FILE",
    "Approval",
    "PageUpdate",
    "PublishReport",
    "content_digest",
    "flip_note",
    "load_approvals",
    "page_flips",
    "publish",
    "published_run_id",
    "read_state",
]
