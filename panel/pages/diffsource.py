"""Where a diff's two sides come from: two runs, or the site as readers see it and a run.

`diff_runs(A, B)` reads both runs, their comparison pages and their copies of their inputs
(so "why" names files and fields). `diff_site(RUN)` answers "what would publishing RUN change
on the site": every page RUN would add or update, each against the verdicts that page shows
now (the site's ledger, the results read back from the runs it names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from panel.errors import PublishError, RunStoreError
from panel.pages.diff import (
    PageRef,
    PageSides,
    PageStatus,
    Results,
    RunDiff,
    compare_runs,
    compare_site,
)
from panel.pages.publish import (
    candidates,
    content_digest,
    is_tool_page,
    legacy_ledger,
    open_run,
    open_verdicts,
)
from panel.pages.records import read_records
from panel.pages.site import PageEntry, ShownVerdict, read_ledger
from panel.pages.toolpages import PageRecord, page_tools
from panel.pages.why import Why, explain
from panel.runformat import PairResult, RunManifest
from panel.store.runindex import resolve_run_id
from panel.store.runinputs import InputCopy, read_input_copy


def page_ref(record: PageRecord) -> PageRef:
    cards = page_tools(record)
    kind = "tool" if is_tool_page(record.slug) else "comparison"
    return PageRef(slug=record.slug, title=record.title, kind=kind, tools=[c.slug for c in cards])


def _copy(runs_dir: Path, run_id: str, manifest: RunManifest) -> InputCopy:
    return read_input_copy(runs_dir.resolve() / run_id, manifest.inputs)


def diff_runs(runs_dir: Path, run_a: str, run_b: str) -> RunDiff:
    """Two runs, reviewed under run b's comparison pages (else each tool's own page)."""
    a, b = resolve_run_id(runs_dir, run_a), resolve_run_id(runs_dir, run_b)
    side_a, _ = open_run(runs_dir, a)
    side_b, records_b = open_run(runs_dir, b)
    pages = [page_ref(r) for r in read_records(records_b)]
    copies = (_copy(runs_dir, a, side_a[0]), _copy(runs_dir, b, side_b[0]))
    verdicts = (open_verdicts(runs_dir, a), open_verdicts(runs_dir, b))
    return compare_runs(side_a, side_b, pages=pages, copies=copies, verdicts=verdicts)


class _Runs:
    """Runs read once each while a site diff looks up what its pages show."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.seen: dict[tuple[str, str], tuple[RunManifest, Results] | None] = {}
        self.where: dict[str, Path] = {}  # run id -> the runs folder it was found in

    def get(self, runs_dir: str, run_id: str) -> tuple[RunManifest, Results] | None:
        """The run, from the runs folder the ledger names, else this diff's --runs-dir."""
        for where in dict.fromkeys([runs_dir, str(self.runs_dir)]):
            if not where:
                continue
            key = (where, run_id)
            if key not in self.seen:
                try:
                    self.seen[key] = open_run(Path(where), run_id)[0]
                except (RunStoreError, OSError):
                    self.seen[key] = None
            found = self.seen[key]
            if found is not None:
                self.where[run_id] = Path(where)
                return found
        return None


def _as_result(v: ShownVerdict, name: str) -> PairResult | None:
    """A verdict the ledger records whose run is gone: what readers see of it (vote, status)."""
    status = {"ship": "ok", "not_ship": "ok", "failed": "failed", "declined": "refused"}
    if v.status not in status:
        return None
    return PairResult.model_validate(
        {
            "tool": name,
            "tool_slug": v.tool,
            "persona": v.persona,
            "status": status[v.status],
            "ship": v.ship,
            "pair_key": v.digest or "unknown",
            "synthetic": v.synthetic,
            "model": "unknown",
            "finished_at": "",
        }
    )


def _shown_now(
    entry: PageEntry, runs: _Runs, names: dict[str, str]
) -> dict[tuple[str, str], PairResult]:
    out: dict[tuple[str, str], PairResult] = {}
    for v in entry.verdicts:
        run = runs.get(entry.runs_dir, v.run_id)
        result = run[1].get((v.tool, v.persona)) if run else None
        if result is None:
            result = _as_result(v, names.get(v.tool, v.tool))
        if result is not None:
            out[(v.tool, v.persona)] = result
    return out


def _why_between(
    befores: Sequence[tuple[RunManifest, InputCopy]], after: tuple[RunManifest, InputCopy]
) -> list[Why]:
    out: list[Why] = []
    seen: set[tuple[str, str]] = set()
    for manifest, copy in befores:
        for w in explain(manifest, after[0], (copy, after[1])):
            if w.input == "tool" and (w.before is None or w.after is None):
                continue  # a tool only one of the runs has explains no verdict on a page
            if (w.input, w.key) not in seen:
                seen.add((w.input, w.key))
                out.append(w)
    return out


def diff_site(runs_dir: Path, site: Path, run: str = "latest") -> RunDiff:
    """What publishing `run` would change on the site, page by page."""
    run_id = resolve_run_id(runs_dir, run)
    ledger = read_ledger(site) or legacy_ledger(site)
    if ledger is None:
        raise PublishError(
            f"nothing published in {site} yet; give two runs to diff, or pass --site"
        )
    fresh = candidates([run_id], runs_dir)
    (manifest, results), _ = open_run(runs_dir, run_id)
    runs = _Runs(runs_dir)
    sides: list[PageSides] = []
    befores: dict[str, tuple[RunManifest, InputCopy]] = {}
    for slug, cand in sorted(fresh.items(), key=lambda kv: (is_tool_page(kv[0]), kv[0])):
        ref = page_ref(cand.record)
        names = {c.slug: c.name for c in page_tools(cand.record)}
        after = {
            (v.tool, v.persona): results[(v.tool, v.persona)]
            for v in cand.verdicts
            if (v.tool, v.persona) in results
        }
        entry = ledger.pages.get(slug)
        # Flips against what the page shows: stable or not by the ledger's record of it.
        stable_after = {(v.tool, v.persona): v.stable for v in cand.verdicts}
        if entry is None:
            sides.append(PageSides(page=ref, status="new", before={}, after=after))
            continue
        stable_before = {(v.tool, v.persona): v.stable for v in entry.verdicts}
        status: PageStatus = (
            "unchanged" if entry.content_digest == content_digest(cand.record) else "updated"
        )
        sides.append(
            PageSides(
                page=ref,
                status=status,
                before=_shown_now(entry, runs, names),
                after=after,
                stable=(stable_before, stable_after),
            )
        )
        for rid in {v.run_id for v in entry.verdicts} - set(befores):
            before = runs.get(entry.runs_dir, rid)
            if before is not None and rid != run_id:
                befores[rid] = (before[0], _copy(runs.where[rid], rid, before[0]))
    why = _why_between(list(befores.values()), (manifest, _copy(runs_dir, run_id, manifest)))
    shown = ledger.last_run_id or "(none)"
    return compare_site(str(site), shown, manifest, sides, why)


__all__ = ["diff_runs", "diff_site", "page_ref"]
