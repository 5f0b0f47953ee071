"""Rendering a RunDiff as an editor's review: text (styled spans), Markdown, HTML and JSON.

The text form is a list of lines of (text, style) spans, built by the functions in
`SECTIONS` in order (header, flips, other changes, new pages, ship %, why, flip stability,
lint); the CLI colours the styles
on a terminal and prints them plain when piped (rich lives only in `cli/`). A new section
(lint findings, stability) is one more function in `SECTIONS` and a block in the templates.
Everything model-written goes through the one control-character sanitiser first.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from panel.inputs.textsafety import terminal_safe, terminal_safe_tree
from panel.pages.diff import (
    Change,
    LintItem,
    PageDiff,
    RunDiff,
    Snapshot,
    ToolShift,
    WordOp,
    word_diff,
)
from panel.pages.render import html_env, md_escape
from panel.pages.why import Why

Span = tuple[str, str]  # (text, style); styles: see STYLES
Line = list[Span]
STYLES = (
    "",
    "title",
    "heading",
    "page",
    "muted",
    "flip",
    "changed",
    "added",
    "removed",
    "del",
    "ins",
    "field",
)
WIDTH = 100  # plain output (a pipe, a file, CI logs) wraps here
INDENT = "      "


@dataclass(frozen=True)
class Style:
    """How a review is laid out: the line width, and whether word diffs carry [- -]/{+ +}."""

    width: int = WIDTH
    markers: bool = True  # False when colour shows deletions and insertions


# ---- shared wording ---------------------------------------------------------------------------


def verdict(s: Snapshot | None) -> str:
    if s is None:
        return "absent"
    if s.status != "ok":
        return s.status + (f" ({s.error_class})" if s.error_class else "")
    return "ship" if s.ship else "not ship"


def pct(value: int | None) -> str:
    return "—" if value is None else f"{value}%"


def summary_line(d: RunDiff) -> str:
    s = d.summary
    split = (
        f" ({s.stable_flips} on stable pairs, {s.unstable_flips} on unstable)"
        if s.stable_flips or s.unstable_flips
        else ""
    )
    return (
        f"{s.flips} flip{'s' * (s.flips != 1)}{split}, {s.changed} changed, {s.added} added, "
        f"{s.removed} removed, {s.unchanged} unchanged"
    )


UNSTABLE_NOTE = (
    "an unstable flip is on a pair whose samples disagree (in either run): it may be sampling "
    "noise, and a rerun could flip it back; a stable flip is on a pair every sample agreed on "
    "in both runs: the verdict really changed; unmeasured: a side was drawn once"
)


def measured_flips(d: RunDiff) -> list[Change]:
    """The flips whose stability the samples measured (stable first), once per tool × persona;
    empty when no flip of the diff was measured (runs drawn once: nothing to say)."""
    seen: dict[tuple[str, str], Change] = {}
    for c in d.changes:
        if c.kind == "flip" and c.stability is not None:
            seen.setdefault((c.tool, c.persona), c)
    flips = list(seen.values())
    if not any(c.stability in ("stable", "unstable") for c in flips):
        return []
    rank = {"stable": 0, "unstable": 1, "unmeasured": 2}
    return sorted(flips, key=lambda c: rank[c.stability or "unmeasured"])


def stability_text(c: Change) -> str:
    """ "unstable: Cursor × skeptic: ship → not ship" """
    return f"{c.stability}: {c.tool_name} × {c.persona}: {verdict(c.before)} → {verdict(c.after)}"


def stability_line(d: RunDiff) -> str:
    flips = measured_flips(d)
    n = {k: sum(1 for c in flips if c.stability == k) for k in ("stable", "unstable")}
    rest = len(flips) - n["stable"] - n["unstable"]
    return (
        f"Flip stability: {n['stable']} on stable pairs (a real change), {n['unstable']} on "
        f"unstable pairs (may be noise)" + (f", {rest} unmeasured" if rest else "")
    )


def title_line(d: RunDiff) -> str:
    if d.against == "site":
        new = sum(1 for p in d.pages if p.status == "new")
        updated = sum(1 for p in d.pages if p.status == "updated")
        return (
            f"publishing run {d.run_b} on {d.site} would add {new} page{'s' * (new != 1)} and "
            f"update {updated} (site shows run {d.run_a})"
        )
    return f"diff {d.run_a} → {d.run_b}"


def _on_pair(c: Change) -> str:
    """ " (unstable pair)" after a flip the samples measured; nothing otherwise."""
    return f" ({c.stability} pair)" if c.stability in ("stable", "unstable") else ""


def detail(c: Change) -> str:
    """One line of what changed for a tool × persona: verdict, confidence, rubric."""
    before, after = verdict(c.before), verdict(c.after)
    bits = [(after if before == after else f"{before} → {after}") + _on_pair(c)]
    if "confidence" in c.fields and c.before and c.after:
        bits.append(f"confidence {c.before.confidence:.2f} → {c.after.confidence:.2f}")
    for name in ("headline", "quote"):
        if name in c.fields:
            bits.append(f"{name} reworded")
    if c.rubric_changed:
        bits.append("rubric: " + ", ".join(c.rubric_changed))
    return "; ".join(bits)


def why_head(w: Why) -> str:
    """`persona skeptic — personas/skeptic.md: ship_bar`, `model: a → b`, `setting seed: 1 → 2`."""
    if w.input == "model":
        return f"model: {w.before} → {w.after}"
    if w.input == "settings":
        return f"setting {w.key}: {w.before or 'unset'} → {w.after or 'unset'}"
    if w.input == "verdict_schema":
        return "the verdict schema (another panel version)"
    label = {"persona": "persona", "template": "template", "tool": "tool file"}[w.input]
    where = f"{w.file}" if w.file else w.key
    if w.before is None or w.after is None:
        return f"{label} {w.key} — {where}: {'added' if w.before is None else 'removed'}"
    if not w.compared:
        return (
            f"{label} {w.key} — {where} changed ({w.before[:15]}… → {w.after[:15]}…; "
            "no copy of the inputs in these runs to name the field)"
        )
    return f"{label} {w.key} — {where}: {', '.join(f.field for f in w.fields)}"


def _same(c: Change) -> tuple[str, str, str, str]:
    return (c.tool, c.persona, c.kind, c.model_dump_json(include={"before", "after"}))


def repeated(d: RunDiff, flips: bool) -> list[PageDiff]:
    """Pages whose changes of this kind all repeat ones shown under an earlier page.

    One verdict shows on its tool's page and on each comparison of the tool: the review shows
    its change once and names the other pages it is on.
    """
    seen: set[tuple[str, str, str, str]] = set()
    fresh: set[str] = set()
    has: set[str] = set()
    new = {p.slug for p in d.pages if p.status == "new"}
    for c in d.changes:
        if (c.kind == "flip") != flips or c.page in new:
            continue
        has.add(c.page)
        if _same(c) not in seen:
            fresh.add(c.page)
            seen.add(_same(c))
    return [p for p in d.pages if p.slug in has and p.slug not in fresh]


def groups(d: RunDiff, flips: bool) -> list[tuple[PageDiff, list[tuple[str, list[Change]]]]]:
    """The flips (or the other changes) by page, then persona, in the diff's order; a change
    that repeats one already shown under an earlier page is left out (see `repeated`)."""
    pages = {p.slug: p for p in d.pages}
    out: list[tuple[PageDiff, list[tuple[str, list[Change]]]]] = []
    seen: set[tuple[str, str, str, str]] = set()
    new = {p.slug for p in d.pages if p.status == "new"}
    for c in d.changes:
        if (c.kind == "flip") != flips or _same(c) in seen or c.page in new:
            continue
        seen.add(_same(c))
        page = pages.get(c.page) or PageDiff(
            slug=c.page, title=c.tool_name, kind="tool", status="in_run"
        )
        if not out or out[-1][0].slug != page.slug:
            out.append((page, []))
        personas = out[-1][1]
        if not personas or personas[-1][0] != c.persona:
            personas.append((c.persona, []))
        personas[-1][1].append(c)
    return out


def moved(d: RunDiff) -> list[ToolShift]:
    """Tools whose ship % moves (once each; a new page's tools are listed with it instead)."""
    new = {p.slug for p in d.pages if p.status == "new"}
    out: dict[str, ToolShift] = {}
    for t in d.tools:
        if t.before_pct != t.after_pct and t.page not in new:
            out.setdefault(t.tool, t)
    return list(out.values())


# ---- text -----------------------------------------------------------------------------------


def _wrap_ops(ops: list[WordOp], label: str, st: Style) -> list[Line]:
    """A word diff wrapped to the width, deletions and insertions styled (and marked)."""
    words: list[Span] = []
    for o in ops:
        style = {"equal": "", "delete": "del", "insert": "ins"}[o.op]
        parts = o.text.split()
        for i, word in enumerate(parts):
            if st.markers and o.op != "equal":
                open_, close = ("[-", "-]") if o.op == "delete" else ("{+", "+}")
                word = (open_ if i == 0 else "") + word + (close if i == len(parts) - 1 else "")
            words.append((word, style))
    lines: list[Line] = []
    current: Line = [(f"{INDENT}{label}: ", "field")]
    used = len(current[0][0])
    for word, style in words:
        if used + len(word) + 1 > st.width and used > len(INDENT) + len(label) + 2:
            lines.append(current)
            current, used = [(INDENT + " " * (len(label) + 2), "")], len(INDENT) + len(label) + 2
        elif used > len(INDENT) + len(label) + 2:
            current.append((" ", ""))
            used += 1
        current.append((word, style))
        used += len(word)
    lines.append(current)
    return lines


def _wrapped(text: str, st: Style, indent: str = "  ", style: str = "") -> list[Line]:
    return [
        [(line, style)]
        for line in textwrap.wrap(
            text, st.width, initial_indent=indent, subsequent_indent=indent + "  "
        )
    ]


def _header(d: RunDiff, st: Style) -> list[Line]:
    return [*_wrapped(title_line(d), st, indent="", style="title"), [(summary_line(d), "muted")]]


def _change_lines(d: RunDiff, st: Style, flips: bool) -> list[Line]:
    found = groups(d, flips)
    if not found:
        return []
    count = sum(len(cs) for _, personas in found for _, cs in personas)
    head = f"Flips ({count})" if flips else f"Other changes ({count})"
    out: list[Line] = [[], [(head, "heading")]]
    for page, personas in found:
        where = f"  [{page.slug}" + (f", {page.status}]" if page.status != "in_run" else "]")
        out.append([(f"  {page.title}", "page"), (where, "muted")])
        for persona, changes in personas:
            for c in changes:
                first = [(f"    {persona:<10} ", "field"), (f"{c.kind.upper():8} ", c.kind)]
                text = f"{c.tool_name}: {detail(c)}"
                rest = textwrap.wrap(text, max(st.width - 23, 30), subsequent_indent="")
                out.append([*first, (rest[0], "")])
                out += [[(" " * 23 + more, "")] for more in rest[1:]]
                if c.headline_diff:
                    out += _wrap_ops(c.headline_diff, "headline", st)
                if c.quote_diff:
                    out += _wrap_ops(c.quote_diff, "quote", st)
    also = repeated(d, flips)
    if also:
        names = ", ".join(f"{p.title} [{p.slug}]" for p in also)
        out += _wrapped(f"Also on {names}: the same changes as above.", st, style="muted")
    return out


def new_pages(d: RunDiff) -> list[tuple[PageDiff, list[ToolShift]]]:
    """Pages publishing would add, with each tool's ship % (their verdicts are all new)."""
    return [(p, [t for t in d.tools if t.page == p.slug]) for p in d.pages if p.status == "new"]


def _new(d: RunDiff, st: Style) -> list[Line]:
    found = new_pages(d)
    if not found:
        return []
    out: list[Line] = [[], [(f"New pages ({len(found)})", "heading")]]
    for page, shifts in found:
        ships = ", ".join(f"{t.tool_name} {pct(t.after_pct)}" for t in shifts)
        out.append([(f"  {page.title}", "page"), (f"  [{page.slug}]", "muted"), (f"  {ships}", "")])
    return out


def _flips(d: RunDiff, st: Style) -> list[Line]:
    return _change_lines(d, st, flips=True)


def _others(d: RunDiff, st: Style) -> list[Line]:
    return _change_lines(d, st, flips=False)


def _shifts(d: RunDiff, st: Style) -> list[Line]:
    shifts = moved(d)
    if not shifts:
        return []
    out: list[Line] = [[], [("Ship % by tool", "heading")]]
    for t in shifts:
        out.append([(f"  {t.tool_name}: {pct(t.before_pct)} → {pct(t.after_pct)}", "")])
    return out


def _why(d: RunDiff, st: Style) -> list[Line]:
    if not d.why:
        if d.changes and d.against == "runs":
            return [[], [("Why: no input differs (sampling or provider variation)", "heading")]]
        return []
    out: list[Line] = [[], [("Why (inputs that differ)", "heading")]]
    for w in d.why:
        out += _wrapped(why_head(w), st)
        for f in w.fields:
            if f.summary:
                out += _wrapped(f"{f.field}: {f.summary}", st, indent="      ", style="muted")
            elif f.before is not None or f.after is not None:
                out += _wrap_ops(word_diff(f.before, f.after), f.field, st)
    return out


def _stability(d: RunDiff, st: Style) -> list[Line]:
    flips = measured_flips(d)
    if not flips:
        return []
    out: list[Line] = [[], [(stability_line(d), "heading")]]
    for c in flips:
        style = "changed" if c.stability == "unstable" else ""
        out += _wrapped(stability_text(c), st, style=style)
    out += _wrapped(f"note: {UNSTABLE_NOTE}", st, style="muted")
    return out


def lint_line(d: RunDiff) -> str:
    new = sum(1 for item in d.lint if item.new)
    since = "the site" if d.against == "site" else d.run_a
    return f"Lint (house rules) in {d.run_b}: {len(d.lint)} finding(s), {new} new since {since}"


def lint_text(item: LintItem) -> str:
    where = " × ".join(x for x in (item.tool, item.persona) if x)
    flag = " [new]" if item.new else ""
    return f"{item.check}{flag}: {where}: {item.message}"


def _lint(d: RunDiff, st: Style) -> list[Line]:
    if not d.lint:
        return []
    out: list[Line] = [[], [(lint_line(d), "heading")]]
    for item in d.lint:
        out += _wrapped(lint_text(item), st, style="changed" if item.new else "muted")
    return out


Section = Callable[[RunDiff, Style], list[Line]]
SECTIONS: list[Section] = [_header, _flips, _others, _new, _shifts, _why, _stability, _lint]


def review_lines(d: RunDiff, st: Style | None = None) -> list[Line]:
    """The review as styled lines, section by section (sanitised)."""
    d = _shown(d)
    style = st or Style()
    return [line for section in SECTIONS for line in section(d, style)]


def format_text(d: RunDiff, st: Style | None = None) -> str:
    """Plain text: the spans joined, deletions as [-…-] and insertions as {+…+}."""
    return "\n".join("".join(t for t, _ in line) for line in review_lines(d, st)) + "\n"


# ---- Markdown, HTML, JSON --------------------------------------------------------------------


def _md(text: str) -> str:
    return md_escape(text)


def _md_ops(ops: list[WordOp]) -> str:
    parts = []
    for o in ops:
        text = _md(o.text)
        parts.append(
            text if o.op == "equal" else f"~~{text}~~" if o.op == "delete" else f"**{text}**"
        )
    return " ".join(parts)


def _md_changes(d: RunDiff, flips: bool) -> Iterator[str]:
    found = groups(d, flips)
    if not found:
        return
    yield f"## {'Flips' if flips else 'Other changes'}"
    yield ""
    for page, personas in found:
        yield f"### {_md(page.title)} ({_md(page.slug)})"
        yield ""
        for persona, changes in personas:
            for c in changes:
                yield f"- **{_md(persona)}** · {_md(c.tool_name)}: {_md(detail(c))}"
                if c.headline_diff:
                    yield f"  - headline: {_md_ops(c.headline_diff)}"
                if c.quote_diff:
                    yield f"  - quote: {_md_ops(c.quote_diff)}"
        yield ""
    also = repeated(d, flips)
    if also:
        names = ", ".join(f"{_md(p.title)} ({_md(p.slug)})" for p in also)
        yield f"Also on {names}: the same changes as above."
        yield ""


def format_markdown(d: RunDiff) -> str:
    d = _shown(d)
    out = [f"# {_md(title_line(d))}", "", _md(summary_line(d)), ""]
    out += list(_md_changes(d, flips=True)) + list(_md_changes(d, flips=False))
    if new_pages(d):
        out += ["## New pages", ""]
        for page, shifts in new_pages(d):
            ships = ", ".join(f"{_md(t.tool_name)} {pct(t.after_pct)}" for t in shifts)
            out.append(f"- {_md(page.title)} ({_md(page.slug)}): {ships}")
        out.append("")
    if moved(d):
        out += ["## Ship % by tool", ""]
        out += [f"- {_md(t.tool_name)}: {pct(t.before_pct)} → {pct(t.after_pct)}" for t in moved(d)]
        out.append("")
    if d.why:
        out += ["## Why", ""]
        for w in d.why:
            out.append(f"- {_md(why_head(w))}")
            for f in w.fields:
                if f.summary:
                    out.append(f"  - {_md(f.field)}: {_md(f.summary)}")
                elif f.before is not None or f.after is not None:
                    out.append(f"  - {_md(f.field)}: {_md_ops(word_diff(f.before, f.after))}")
        out.append("")
    if measured_flips(d):
        out += ["## Flip stability", "", _md(stability_line(d)), ""]
        out += [f"- {_md(stability_text(c))}" for c in measured_flips(d)]
        out += ["", _md(f"Note: {UNSTABLE_NOTE}."), ""]
    if d.lint:
        out += ["## Lint", "", _md(lint_line(d)), ""]
        out += [f"- {_md(lint_text(item))}" for item in d.lint] + [""]
    return "\n".join(out)


def format_html(d: RunDiff) -> str:
    """A self-contained HTML review, rendered through the autoescaped page environment."""
    d = _shown(d)
    return terminal_safe(
        html_env()
        .get_template("diff.html.j2")
        .render(
            d=d,
            title=title_line(d),
            summary=summary_line(d),
            flips=groups(d, True),
            others=groups(d, False),
            also_flips=repeated(d, True),
            also_others=repeated(d, False),
            new_pages=new_pages(d),
            moved=moved(d),
            detail=detail,
            verdict=verdict,
            pct=pct,
            why_head=why_head,
            word_diff=word_diff,
            lint_line=lint_line,
            stability=measured_flips(d),
            stability_line=stability_line,
            stability_note=UNSTABLE_NOTE[:1].upper() + UNSTABLE_NOTE[1:],
            count=lambda found: sum(len(cs) for _, personas in found for _, cs in personas),
        )
    )


def format_json(d: RunDiff) -> str:
    return _shown(d).model_dump_json(indent=2) + "\n"


def _shown(d: RunDiff) -> RunDiff:
    # Model-written text reaches terminals and pages: every string through the one sanitiser.
    return RunDiff.model_validate(terminal_safe_tree(d.model_dump()))


def format_diff(d: RunDiff, fmt: str) -> str:
    formats: dict[str, Callable[[RunDiff], str]] = {
        "text": format_text,
        "md": format_markdown,
        "html": format_html,
        "json": format_json,
    }
    return formats[fmt](d)


__all__ = [
    "SECTIONS",
    "STYLES",
    "UNSTABLE_NOTE",
    "Line",
    "Span",
    "Style",
    "format_diff",
    "format_html",
    "format_json",
    "format_markdown",
    "format_text",
    "measured_flips",
    "review_lines",
]
