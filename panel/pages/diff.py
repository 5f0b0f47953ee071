"""What changed between two runs, persona by persona, and why: the gate before publishing.

compare_runs() is pure: it takes (manifest, results) for each side, so it works on any two
runs (or a run and itself). Kinds: flip (both sides have a verdict and ship changed),
changed (confidence, headline, quote, rubric answers, or status/error class), added, removed.
With the runs' pair verdicts (samples, juries), each flip also says whether it is on a stable
or an unstable pair (panel.aggregate.flip_stability): an unstable flip may be sampling noise.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from panel.aggregate import PairVerdict, flip_stability
from panel.inputs.textsafety import terminal_safe, terminal_safe_tree
from panel.pages.records import ship_pct
from panel.runformat import PairResult, RunManifest

Kind = Literal["flip", "changed", "added", "removed"]
FailOn = Literal["flip", "stable-flip", "change"]
FlipStability = Literal["stable", "unstable", "unmeasured"]
Verdicts = Mapping[tuple[str, str], PairVerdict]
Results = Mapping[tuple[str, str], PairResult]
RunSide = tuple[RunManifest, Results]
CONFIDENCE_EPSILON = 0.005  # below this a confidence move is float noise, not a change


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
    fields: list[str] = Field(default_factory=list)  # which visible fields changed
    headline_diff: list[WordOp] = Field(default_factory=list)
    quote_diff: list[WordOp] = Field(default_factory=list)
    rubric_changed: list[str] = Field(default_factory=list)  # question ids
    # On a flip: "unstable" when either side's samples disagree (maybe noise), "stable" when
    # both sides were sampled and agree with themselves, "unmeasured" otherwise.
    stability: FlipStability | None = None


class ToolShift(_Frozen):
    tool: str
    tool_name: str
    before_pct: int | None
    after_pct: int | None


class Why(_Frozen):
    """One input whose digest differs between the runs."""

    input: Literal["model", "persona", "template", "tool", "verdict_schema", "settings"]
    key: str
    before: str | None
    after: str | None


class Summary(_Frozen):
    flips: int
    changed: int
    added: int
    removed: int
    unchanged: int
    stable_flips: int = 0  # flips on pairs sampled stable on both sides
    unstable_flips: int = 0  # flips on pairs whose samples disagree on either side


class RunDiff(_Frozen):
    format: Literal[1] = 1
    run_a: str
    run_b: str
    changes: list[Change]
    tools: list[ToolShift]
    summary: Summary
    why: list[Why]

    def fails(self, on: FailOn) -> bool:
        """True when the diff holds a difference of the kind --fail-on names."""
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
    slug: str, name: str, persona: str, a: PairResult, b: PairResult
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
        fields=fields,
        headline_diff=word_diff(a.headline, b.headline) if "headline" in fields else [],
        quote_diff=word_diff(a.quote, b.quote) if "quote" in fields else [],
        rubric_changed=rubric,
    )


def _tool_pct(slug: str, results: Results) -> int | None:
    ours = [
        r for (s, _), r in results.items() if s == slug and r.status == "ok" and r.ship is not None
    ]
    return ship_pct(sum(1 for r in ours if r.ship), len(ours))


def _why(a: RunManifest, b: RunManifest) -> list[Why]:
    out: list[Why] = []
    if a.model != b.model:
        out.append(Why(input="model", key="model", before=a.model, after=b.model))
    ia, ib = a.inputs, b.inputs
    groups: list[tuple[Literal["persona", "template", "tool"], dict[str, str], dict[str, str]]] = [
        (
            "persona",
            {k: v.digest for k, v in ia.personas.items()},
            {k: v.digest for k, v in ib.personas.items()},
        ),
        ("template", dict(ia.templates), dict(ib.templates)),
        (
            "tool",
            {k: v.digest for k, v in ia.tools.items()},
            {k: v.digest for k, v in ib.tools.items()},
        ),
    ]
    for kind, da, db in groups:
        for key in sorted(set(da) | set(db)):
            if da.get(key) != db.get(key):
                out.append(Why(input=kind, key=key, before=da.get(key), after=db.get(key)))
    if ia.verdict_schema != ib.verdict_schema:
        out.append(
            Why(
                input="verdict_schema",
                key="verdict_schema",
                before=ia.verdict_schema,
                after=ib.verdict_schema,
            )
        )
    if ia.settings != ib.settings:
        # Name the settings that moved (e.g. emulator_seed), not just the digest.
        sa, sb = a.settings, b.settings
        moved = sorted(
            k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k) and k != "concurrency"
        )
        for key in moved or ["settings"]:
            before, after = (sa.get(key), sb.get(key)) if moved else (ia.settings, ib.settings)
            out.append(
                Why(
                    input="settings",
                    key=key,
                    before=None if before is None else str(before),
                    after=None if after is None else str(after),
                )
            )
    return out


def compare_runs(
    a: RunSide, b: RunSide, verdicts: tuple[Verdicts, Verdicts] | None = None
) -> RunDiff:
    """Every tool × persona difference from run a (before) to run b (after); with both runs'
    pair verdicts (RunStore.verdicts), flips are marked stable or unstable."""
    (ma, ra), (mb, rb) = a, b
    names = {slug: r.tool for (slug, _), r in {**ra, **rb}.items()}
    changes: list[Change] = []
    for key in sorted(set(ra) | set(rb)):
        slug, persona = key
        before, after = ra.get(key), rb.get(key)
        if before is None and after is not None:
            changes.append(
                Change(
                    tool=slug,
                    tool_name=names[slug],
                    persona=persona,
                    kind="added",
                    before=None,
                    after=_snapshot(after),
                )
            )
        elif after is None and before is not None:
            changes.append(
                Change(
                    tool=slug,
                    tool_name=names[slug],
                    persona=persona,
                    kind="removed",
                    before=_snapshot(before),
                    after=None,
                )
            )
        elif before is not None and after is not None:
            change = _compare_pair(slug, names[slug], persona, before, after)
            if change is not None and change.kind == "flip" and verdicts is not None:
                va, vb = verdicts[0].get(key), verdicts[1].get(key)
                how = flip_stability(va.stable if va else None, vb.stable if vb else None)
                change = change.model_copy(update={"stability": how})
            if change is not None:
                changes.append(change)
    tools = [
        ToolShift(
            tool=s, tool_name=names[s], before_pct=_tool_pct(s, ra), after_pct=_tool_pct(s, rb)
        )
        for s in sorted(names)
    ]
    counts = {
        k: sum(1 for c in changes if c.kind == k) for k in ("flip", "changed", "added", "removed")
    }
    both = len(set(ra) & set(rb)) - counts["flip"] - counts["changed"]
    return RunDiff(
        run_a=ma.run_id,
        run_b=mb.run_id,
        changes=changes,
        tools=tools,
        summary=Summary(
            flips=counts["flip"],
            changed=counts["changed"],
            added=counts["added"],
            removed=counts["removed"],
            unchanged=both,
            stable_flips=sum(1 for c in changes if c.stability == "stable"),
            unstable_flips=sum(1 for c in changes if c.stability == "unstable"),
        ),
        why=_why(ma, mb),
    )


# ---- formats -------------------------------------------------------------------------------


def _verdict(s: Snapshot | None) -> str:
    if s is None:
        return "absent"
    if s.status != "ok":
        return s.status + (f" ({s.error_class})" if s.error_class else "")
    return "ship" if s.ship else "not ship"


def _pct(value: int | None) -> str:
    return "—" if value is None else f"{value}%"


def _summary_line(d: RunDiff) -> str:
    s = d.summary
    return (
        f"{s.flips} flips{_flip_split(s)}, {s.changed} changed, {s.added} added, "
        f"{s.removed} removed, {s.unchanged} unchanged"
    )


def _flip_split(s: Summary) -> str:
    if not (s.stable_flips or s.unstable_flips):
        return ""
    return f" ({s.stable_flips} on stable pairs, {s.unstable_flips} on unstable)"


UNSTABLE_NOTE = (
    "an unstable flip is on a pair whose samples disagree (in either run): it may be sampling "
    "noise, and a rerun could flip it back; a stable flip is on a pair every sample agreed on "
    "in both runs: the verdict really changed"
)


def _kind(c: Change) -> str:
    """ "flip", or "flip (unstable)" when the runs' samples say how much it means."""
    return c.kind + (f" ({c.stability})" if c.stability else "")


def _why_line(w: Why) -> str:
    return f"{w.input} {w.key}: {w.before or 'absent'} -> {w.after or 'absent'}"


def _ops_text(ops: list[WordOp], ins: str, end_ins: str, dele: str, end_del: str) -> str:
    parts = []
    for o in ops:
        if o.op == "equal":
            parts.append(o.text)
        elif o.op == "delete":
            parts.append(f"{dele}{o.text}{end_del}")
        else:
            parts.append(f"{ins}{o.text}{end_ins}")
    return " ".join(parts)


def _detail(c: Change) -> str:
    bits = [f"{_verdict(c.before)} -> {_verdict(c.after)}"]
    if "confidence" in c.fields and c.before and c.after:
        bits.append(f"confidence {c.before.confidence:.2f} -> {c.after.confidence:.2f}")
    if c.rubric_changed:
        bits.append("rubric: " + ", ".join(c.rubric_changed))
    return "; ".join(bits)


def format_text(d: RunDiff) -> str:
    """Plain text (safe to print through rich with markup off)."""
    lines = [f"diff {d.run_a} -> {d.run_b}: {_summary_line(d)}"]
    for c in d.changes:
        lines.append(f"  {_kind(c).upper():8} {c.tool} × {c.persona}: {_detail(c)}")
        if c.headline_diff:
            lines.append(
                "           headline: " + _ops_text(c.headline_diff, "{+", "+}", "[-", "-]")
            )
        if c.quote_diff:
            lines.append("           quote: " + _ops_text(c.quote_diff, "{+", "+}", "[-", "-]"))
    if d.summary.stable_flips or d.summary.unstable_flips:
        lines.append(f"note: {UNSTABLE_NOTE}")
    moved = [t for t in d.tools if t.before_pct != t.after_pct]
    if moved:
        lines.append("ship % by tool:")
        lines += [f"  {t.tool}: {_pct(t.before_pct)} -> {_pct(t.after_pct)}" for t in moved]
    if d.why:
        lines.append("why (inputs that differ):")
        lines += ["  " + _why_line(w) for w in d.why]
    elif d.changes:
        lines.append("why: no input digest differs (sampling or provider variation)")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    from panel.pages.render import md_escape  # render imports records; keep diff importable alone

    return md_escape(terminal_safe(text))  # before escaping: an escape would split a sequence


def format_markdown(d: RunDiff) -> str:
    out = [f"# Diff {_md(d.run_a)} → {_md(d.run_b)}", "", _summary_line(d), ""]
    if d.changes:
        out += ["| Tool | Persona | Kind | Change |", "|---|---|---|---|"]
        for c in d.changes:
            detail = _md(_detail(c))
            if c.headline_diff:
                detail += " · headline: " + _md_ops(c.headline_diff)
            if c.quote_diff:
                detail += " · quote: " + _md_ops(c.quote_diff)
            out.append(f"| {_md(c.tool)} | {_md(c.persona)} | {_md(_kind(c))} | {detail} |")
        out.append("")
        if d.summary.stable_flips or d.summary.unstable_flips:
            out += [_md(f"Note: {UNSTABLE_NOTE}."), ""]
    moved = [t for t in d.tools if t.before_pct != t.after_pct]
    if moved:
        out += ["## Ship % by tool", ""]
        out += [f"- {_md(t.tool)}: {_pct(t.before_pct)} → {_pct(t.after_pct)}" for t in moved]
        out.append("")
    if d.why:
        out += ["## Why", ""] + [f"- {_md(_why_line(w))}" for w in d.why] + [""]
    return "\n".join(out)


def _md_ops(ops: list[WordOp]) -> str:
    parts = []
    for o in ops:
        text = _md(o.text)
        parts.append(
            text if o.op == "equal" else f"~~{text}~~" if o.op == "delete" else f"**{text}**"
        )
    return " ".join(parts)


def format_html(d: RunDiff) -> str:
    """A self-contained HTML report, rendered through the autoescaped page environment."""
    from panel.pages.render import html_env

    return (
        html_env()
        .get_template("diff.html.j2")
        .render(
            d=d,
            summary=_summary_line(d),
            detail=_detail,
            verdict=_verdict,
            pct=_pct,
            flip_note=UNSTABLE_NOTE if d.summary.stable_flips or d.summary.unstable_flips else "",
        )
    )


def format_json(d: RunDiff) -> str:
    return d.model_dump_json(indent=2) + "\n"


def format_diff(d: RunDiff, fmt: str) -> str:
    formats = {"text": format_text, "md": format_markdown, "html": format_html, "json": format_json}
    # Model-written text reaches terminals and pages: every string through the one sanitiser.
    return formats[fmt](RunDiff.model_validate(terminal_safe_tree(d.model_dump())))
