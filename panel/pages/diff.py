"""What changed between two runs, or between the site and a run, page by page and persona by
persona, and why: the editor's review before publishing.

This module is the data model and the comparison, pure (no I/O); `diffformat.py` renders it
(text, Markdown, HTML, JSON) and `diffsource.py` reads runs, copies and the site's ledger.
Kinds per tool × persona: flip (both sides have a verdict and ship changed), changed
(confidence, headline, quote, rubric answers, or status/error class), added, removed.

Every change belongs to one page (`Change.page`): a comparison page that shows its tool, else
the tool's own page. `RunDiff.changes` is ordered as an editor reads it: flips first, then the
other changes, each by page, then persona (panel order), then tool. A new kind of finding
(lint, stability) is a new field on RunDiff plus a section in `diffformat.SECTIONS`.

With samples or a jury, each flip says whether it is on a stable or an unstable pair
(`Change.stability`, panel.aggregate.flip_stability, from each side's `stable`): an unstable
flip may be sampling noise, a stable one is a real change; `--fail-on stable-flip` gates only
the flips the samples do not explain away.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from panel.aggregate import PairVerdict, flip_stability
from panel.lint.report import stored_report
from panel.lintformat import LintReport
from panel.pages.records import ship_pct
from panel.pages.why import Copies, FieldChange, Why, explain
from panel.runformat import PairResult, RunManifest

Kind = Literal["flip", "changed", "added", "removed"]
FailOn = Literal["flip", "stable-flip", "change", "lint"]
FlipStability = Literal["stable", "unstable", "unmeasured"]
Verdicts = Mapping[tuple[str, str], PairVerdict]
# Each pair's `stable` (PairVerdict.stable, the ledger's ShownVerdict.stable): None when the
# pair was drawn once, so its noise is unmeasured.
Stable = Mapping[tuple[str, str], bool | None]
Results = Mapping[tuple[str, str], PairResult]
RunSide = tuple[RunManifest, Results]
PageKind = Literal["comparison", "tool"]
PageStatus = Literal["new", "updated", "unchanged", "in_run"]
CONFIDENCE_EPSILON = 0.005  # below this a confidence move is float noise, not a change
TOOL_PAGE_SUFFIX = "--verdict"  # a tool's own page: <tool-slug>--verdict


def tool_page_slug(tool_slug: str) -> str:
    """The slug of a tool's own page (tool slugs never hold '--', so it never collides)."""
    return f"{tool_slug}{TOOL_PAGE_SUFFIX}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Snapshot(_Frozen):
    """The parts of a PairResult a reader can see."""

    status: str
    ship: bool | None = None
    confidence: float | None = None
    headline: str | None = None
    quote: str | None = None
    rubric: dict[str, str] = Field(default_factory=dict)
    error_class: str | None = None


class WordOp(_Frozen):
    op: Literal["equal", "delete", "insert"]
    text: str


class Change(_Frozen):
    tool: str  # tool slug
    tool_name: str
    persona: str
    kind: Kind
    before: Snapshot | None
    after: Snapshot | None
    page: str = ""  # the page this change is reviewed under (a comparison, else the tool page)
    fields: list[str] = Field(default_factory=list)  # which visible fields changed
    headline_diff: list[WordOp] = Field(default_factory=list)
    quote_diff: list[WordOp] = Field(default_factory=list)
    rubric_changed: list[str] = Field(default_factory=list)  # question ids
    # On a flip: "unstable" when either side's samples disagree (maybe noise), "stable" when
    # both sides were sampled and agree with themselves, "unmeasured" otherwise; None when the
    # diff was not given the sides' stability.
    stability: FlipStability | None = None


class ToolShift(_Frozen):
    tool: str
    tool_name: str
    before_pct: int | None
    after_pct: int | None
    page: str = ""


class PageRef(_Frozen):
    """A page of the site (or one a run would make): what it is and which tools it shows."""

    slug: str
    title: str
    kind: PageKind
    tools: list[str]  # tool slugs, in page order


class PageDiff(_Frozen):
    """One page and what would change on it."""

    slug: str
    title: str
    kind: PageKind
    status: PageStatus  # site diffs: new/updated/unchanged; run diffs: in_run
    flips: int = 0
    changes: int = 0  # every change on the page, flips included
    tools: list[str] = Field(default_factory=list)


class Summary(_Frozen):
    flips: int
    changed: int
    added: int
    removed: int
    unchanged: int
    stable_flips: int = 0  # flips on pairs sampled stable on both sides
    unstable_flips: int = 0  # flips on pairs whose samples disagree on either side


class LintItem(_Frozen):
    """A house-rule finding in the later run (panel.lint; docs/lint.md)."""

    check: str
    tool: str | None  # tool slug; None for a finding about a persona across the run
    persona: str | None
    message: str
    new: bool  # the earlier run has no such finding


class RunDiff(_Frozen):
    format: Literal[1] = 1
    run_a: str  # the run before (site diffs: the site's newest published run)
    run_b: str
    against: Literal["runs", "site"] = "runs"
    site: str | None = None
    changes: list[Change]
    tools: list[ToolShift]
    pages: list[PageDiff] = Field(default_factory=list)
    summary: Summary
    why: list[Why]
    lint: list[LintItem] = Field(default_factory=list)  # findings in run b, warnings by default

    def fails(self, on: FailOn) -> bool:
        """True when the diff holds a difference of the kind --fail-on names."""
        if on == "lint":
            return bool(self.lint)
        if on == "flip":
            return self.summary.flips > 0
        if on == "stable-flip":  # every flip but those the samples say may be noise
            return self.summary.flips > self.summary.unstable_flips
        return bool(self.changes)


def _snapshot(result: PairResult) -> Snapshot:
    return Snapshot(
        status=result.status,
        ship=result.ship,
        confidence=result.confidence,
        headline=result.headline,
        quote=result.quote,
        rubric=dict(result.rubric),
        error_class=result.error_class,
    )


def word_diff(before: str | None, after: str | None) -> list[WordOp]:
    """A word-level diff (difflib) as equal/delete/insert runs."""
    a, b = (before or "").split(), (after or "").split()
    ops: list[WordOp] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(WordOp(op="equal", text=" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            ops.append(WordOp(op="delete", text=" ".join(a[i1:i2])))
        if j2 > j1:
            ops.append(WordOp(op="insert", text=" ".join(b[j1:j2])))
    return ops


def _compare_pair(
    slug: str, name: str, persona: str, a: PairResult, b: PairResult, page: str
) -> Change | None:
    fields: list[str] = []
    if a.status != b.status:
        fields.append("status")
    elif a.status != "ok" and a.error_class != b.error_class:
        fields.append("error_class")
    flip = a.status == b.status == "ok" and a.ship != b.ship
    if a.status == b.status == "ok":
        if flip:
            fields.append("ship")
        if abs((a.confidence or 0.0) - (b.confidence or 0.0)) >= CONFIDENCE_EPSILON:
            fields.append("confidence")
        if a.headline != b.headline:
            fields.append("headline")
        if a.quote != b.quote:
            fields.append("quote")
    rubric: list[str] = []
    if a.status == b.status == "ok":  # a failed side has no answers; its status says it all
        rubric = sorted(q for q in {*a.rubric, *b.rubric} if a.rubric.get(q) != b.rubric.get(q))
    if rubric:
        fields.append("rubric")
    if not fields:
        return None
    return Change(
        tool=slug,
        tool_name=name,
        persona=persona,
        kind="flip" if flip else "changed",
        before=_snapshot(a),
        after=_snapshot(b),
        page=page,
        fields=fields,
        headline_diff=word_diff(a.headline, b.headline) if "headline" in fields else [],
        quote_diff=word_diff(a.quote, b.quote) if "quote" in fields else [],
        rubric_changed=rubric,
    )


def stable_of(verdicts: Verdicts) -> dict[tuple[str, str], bool | None]:
    """Each pair's `stable` from its verdict over its draws (RunStore.verdicts)."""
    return {pair: v.stable for pair, v in verdicts.items()}


def _marked(change: Change | None, stable: tuple[Stable, Stable] | None) -> Change | None:
    """A flip marked stable, unstable or unmeasured from both sides' stability."""
    if change is None or change.kind != "flip" or stable is None:
        return change
    key = (change.tool, change.persona)
    how = flip_stability(stable[0].get(key), stable[1].get(key))
    return change.model_copy(update={"stability": how})


def _compare_key(
    key: tuple[str, str], name: str, before: PairResult | None, after: PairResult | None, page: str
) -> Change | None:
    slug, persona = key
    if (before is None) != (after is None):  # a verdict only one side has
        return Change(
            tool=slug,
            tool_name=name,
            persona=persona,
            kind="added" if before is None else "removed",
            before=_snapshot(before) if before else None,
            after=_snapshot(after) if after else None,
            page=page,
        )
    if before is not None and after is not None:
        return _compare_pair(slug, name, persona, before, after, page)
    return None


def _tool_pct(slug: str, results: Results) -> int | None:
    ours = [
        r for (s, _), r in results.items() if s == slug and r.status == "ok" and r.ship is not None
    ]
    return ship_pct(sum(1 for r in ours if r.ship), len(ours))


def _ordered(
    changes: list[Change], pages: Sequence[PageRef], personas: Sequence[str]
) -> list[Change]:
    """Flips first, then the rest; each by page, persona (panel order), tool (page order)."""
    page_rank = {p.slug: i for i, p in enumerate(pages)}
    tool_rank = {(p.slug, t): i for p in pages for i, t in enumerate(p.tools)}
    persona_rank = {pid: i for i, pid in enumerate(personas)}

    def key(c: Change) -> tuple[int, int, str, int, str, str]:
        return (
            0 if c.kind == "flip" else 1,
            page_rank.get(c.page, len(page_rank)),
            c.page,
            persona_rank.get(c.persona, len(persona_rank)),
            c.persona,
            f"{tool_rank.get((c.page, c.tool), 0):04d}{c.tool}",
        )

    return sorted(changes, key=key)


def _page_diffs(
    pages: Sequence[PageRef], changes: list[Change], status: Mapping[str, PageStatus]
) -> list[PageDiff]:
    return [
        PageDiff(
            slug=p.slug,
            title=p.title,
            kind=p.kind,
            status=status.get(p.slug, "in_run"),
            flips=sum(1 for c in changes if c.page == p.slug and c.kind == "flip"),
            changes=sum(1 for c in changes if c.page == p.slug),
            tools=list(p.tools),
        )
        for p in pages
    ]


def _summary(changes: list[Change], compared: int) -> Summary:
    """Counts per tool × persona: a verdict shown on several pages counts once."""
    distinct = {(c.tool, c.persona): c for c in changes}.values()
    counts = {
        k: sum(1 for c in distinct if c.kind == k) for k in ("flip", "changed", "added", "removed")
    }
    return Summary(
        flips=counts["flip"],
        changed=counts["changed"],
        added=counts["added"],
        removed=counts["removed"],
        unchanged=compared - counts["flip"] - counts["changed"],
        stable_flips=sum(1 for c in distinct if c.stability == "stable"),
        unstable_flips=sum(1 for c in distinct if c.stability == "unstable"),
    )


def persona_order(*manifests: RunManifest) -> list[str]:
    """Panel order: the personas of the later run, then any only the earlier one had."""
    out: list[str] = []
    for m in reversed(manifests):
        out += [p for p in m.inputs.personas if p not in out]
    return out


def _lint_keys(report: LintReport) -> list[tuple[tuple[str, ...], LintItem]]:
    out: list[tuple[tuple[str, ...], LintItem]] = []
    for v in report.verdicts:
        for f in v.findings:
            item = LintItem(
                check=f.check, tool=v.tool, persona=v.persona, message=f.message, new=True
            )
            out.append(((f.check, v.tool, v.persona, f.field, f.text), item))
    for r in report.run:
        who = ",".join(f"{p.tool}/{p.persona}" for p in r.pairs)
        item = LintItem(check=r.check, tool=r.tool, persona=r.persona, message=r.message, new=True)
        out.append(((r.check, r.tool or "", r.persona or "", who), item))
    return out


def lint_items(before: Results, after: Results) -> list[LintItem]:
    """The later side's findings (stored per verdict, run-level recomputed), each marked new
    or not against the earlier side's."""
    seen = {key for key, _ in _lint_keys(stored_report(list(before.values()), run_id=None))}
    found = _lint_keys(stored_report(list(after.values()), run_id=None))
    return [item.model_copy(update={"new": key not in seen}) for key, item in found]


def compare_runs(
    a: RunSide,
    b: RunSide,
    *,
    pages: Sequence[PageRef] = (),
    copies: Copies = (None, None),
    verdicts: tuple[Verdicts, Verdicts] | None = None,
) -> RunDiff:
    """Every tool × persona difference from run a (before) to run b (after).

    `pages`: the comparison pages to review changes under (a tool on none of them is reviewed
    under its own page); `copies`: each run's copy of its inputs, so "why" names fields;
    `verdicts`: both runs' pair verdicts (RunStore.verdicts), so flips are marked stable or
    unstable.
    """
    stable = (stable_of(verdicts[0]), stable_of(verdicts[1])) if verdicts is not None else None
    (ma, ra), (mb, rb) = a, b
    names = {slug: r.tool for (slug, _), r in {**ra, **rb}.items()}
    home: dict[str, str] = {}
    for page in sorted(pages, key=lambda p: p.slug):
        for slug in page.tools:
            home.setdefault(slug, page.slug)
    all_pages = list(pages) + [
        PageRef(slug=tool_page_slug(s), title=names[s], kind="tool", tools=[s])
        for s in sorted(names)
        if s not in home
    ]
    changes = [
        c
        for key in sorted(set(ra) | set(rb))
        if (
            c := _marked(
                _compare_key(
                    key,
                    names[key[0]],
                    ra.get(key),
                    rb.get(key),
                    home.get(key[0], tool_page_slug(key[0])),
                ),
                stable,
            )
        )
        is not None
    ]
    tools = [
        ToolShift(
            tool=s,
            tool_name=names[s],
            before_pct=_tool_pct(s, ra),
            after_pct=_tool_pct(s, rb),
            page=home.get(s, tool_page_slug(s)),
        )
        for s in sorted(names)
    ]
    ordered = _ordered(changes, all_pages, persona_order(ma, mb))
    return RunDiff(
        run_a=ma.run_id,
        run_b=mb.run_id,
        changes=ordered,
        tools=tools,
        pages=_page_diffs(
            [p for p in all_pages if any(c.page == p.slug for c in changes)], changes, {}
        ),
        summary=_summary(changes, len(set(ra) & set(rb))),
        why=explain(ma, mb, copies),
        lint=lint_items(a[1], b[1]),
    )


@dataclass(frozen=True)
class PageSides:
    """One page as the site shows it now (`before`) and as publishing would make it."""

    page: PageRef
    status: PageStatus
    before: dict[tuple[str, str], PairResult]
    after: dict[tuple[str, str], PairResult]
    # Each side's pair stability (the ledger's for what the page shows, the run's verdicts
    # for what it would show); None: not known, flips are left unmarked.
    stable: tuple[Stable, Stable] | None = None


def compare_site(
    site: str,
    run_a: str,
    after: RunManifest,
    pages: Sequence[PageSides],
    why: list[Why],
) -> RunDiff:
    """What publishing a run would change on the site, page by page (each against what it shows)."""
    changes: list[Change] = []
    tools: list[ToolShift] = []
    compared: set[tuple[str, str]] = set()
    for side in pages:
        names = {slug: r.tool for (slug, _), r in {**side.before, **side.after}.items()}
        for key in sorted(set(side.before) | set(side.after)):
            change = _marked(
                _compare_key(
                    key, names[key[0]], side.before.get(key), side.after.get(key), side.page.slug
                ),
                side.stable,
            )
            if change is not None:
                changes.append(change)
        compared |= set(side.before) & set(side.after)
        tools += [
            ToolShift(
                tool=s,
                tool_name=names.get(s, s),
                before_pct=_tool_pct(s, side.before) if side.before else None,
                after_pct=_tool_pct(s, side.after),
                page=side.page.slug,
            )
            for s in side.page.tools
        ]
    refs = [s.page for s in pages]
    return RunDiff(
        run_a=run_a,
        run_b=after.run_id,
        against="site",
        site=site,
        changes=_ordered(changes, refs, list(after.inputs.personas)),
        tools=tools,
        pages=_page_diffs(refs, changes, {s.page.slug: s.status for s in pages}),
        summary=_summary(changes, len(compared)),
        why=why,
        # What readers would see: the findings on the verdicts of the pages being compared.
        lint=lint_items(
            {k: v for side in pages for k, v in side.before.items()},
            {k: v for side in pages for k, v in side.after.items()},
        ),
    )


__all__ = [
    "Change",
    "FailOn",
    "FieldChange",
    "FlipStability",
    "LintItem",
    "PageDiff",
    "PageRef",
    "PageSides",
    "RunDiff",
    "RunSide",
    "Snapshot",
    "ToolShift",
    "Why",
    "WordOp",
    "compare_runs",
    "compare_site",
    "persona_order",
    "stable_of",
    "tool_page_slug",
    "word_diff",
]
