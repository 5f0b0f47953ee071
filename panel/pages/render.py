"""Pages from comparison records: HTML (autoescaped, self-contained), Markdown and JSON.

Two Jinja2 environments, both StrictUndefined. HTML autoescape is forced on with
`autoescape=True` rather than `select_autoescape()`, which would leave `*.html.j2` templates
unescaped. Markdown escapes every expression through `finalize`, so a value must be wrapped
in MdSafe (built here, never from input) to pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from panel.aggregate import Sampling
from panel.inputs.textsafety import terminal_safe, terminal_safe_tree
from panel.pages.diff import tool_page_slug
from panel.pages.records import (
    CardStability,
    ComparisonRecord,
    ToolCard,
    is_safe_name,
    safe_child,
    write_atomic,
)
from panel.pages.sitesettings import SiteSettings
from panel.pages.toolpages import PageRecord, ToolRecord

TEMPLATES = Path(__file__).parent / "templates"
ALLOWED_SCHEMES = frozenset({"https", "http", "mailto"})
SYNTHETIC_BANNER = "Synthetic verdicts from the panel emulator — not real model output"
# Control characters and whitespace inside a URL are how scheme filters get fooled
# ("java\tscript:"); a URL carrying any of them is dropped, not cleaned.
_URL_BAD = re.compile(r"[\x00-\x20\x7f-\x9f\s\\]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~{}])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])")


class MdSafe(str):
    """Markdown built by this module from escaped parts; passes finalize unchanged."""

    __slots__ = ()


class PagePaths(NamedTuple):
    html: Path
    markdown: Path
    json: Path


def safe_url(url: object) -> str | None:
    """The URL if its scheme is allow-listed (https, http, mailto), else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > 2000 or _URL_BAD.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return None
    if scheme != "mailto" and not parts.netloc:
        return None
    return url


def md_escape(value: object) -> str:
    """Escape text for Markdown: one line, no raw HTML, no emphasis/link/table syntax."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _md_finalize(value: Any) -> Any:
    return value if isinstance(value, MdSafe) else md_escape(value)


def paragraphs(value: str) -> list[str]:
    """Blank line = new paragraph; a paragraph's own line breaks reflow as spaces."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", value) if p.strip()]


def _md_paragraphs(value: str) -> MdSafe:
    return MdSafe("\n\n".join(md_escape(p) for p in paragraphs(value)))


def _md_link(label: str, url: str) -> MdSafe:
    safe = safe_url(url)
    if safe is None:
        return MdSafe(md_escape(label))
    # Parentheses and angle brackets would end or break the destination.
    dest = safe.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return MdSafe(f"[{md_escape(label)}]({dest})")


def _md_page_link(label: str, slug: str) -> MdSafe:
    # A relative link to a sibling page; the slug must already be a safe file name.
    if not is_safe_name(f"{slug}.md"):
        return MdSafe(md_escape(label))
    return MdSafe(f"[{md_escape(label)}]({slug}.md)")  # a safe name: no space, no parenthesis


def pct(card: ToolCard) -> str:
    return "—" if card.panel_ship_pct is None else f"{card.panel_ship_pct}%"


def votes(card: ToolCard) -> str:
    return "—" if card.community_votes is None else f"{card.community_votes:,}"


def stability(card: ToolCard) -> str:
    """ "3 of 4 stable · a rerun could read 50–100%" (samples), "jury of 3 models" (a jury)."""
    st = card.stability
    if st is None:
        return ""
    parts = (
        [f"jury of {len(st.jury)} models · {st.unanimous} of {st.voted} unanimous"]
        if st.jury
        else []
    )
    if st.measured:
        parts.append(f"{st.stable} of {st.measured} stable")
    if st.interval is not None:
        lo, hi = st.interval
        parts.append(f"a rerun could read {lo}–{hi}%" if lo != hi else "a rerun reads the same")
    return " · ".join(parts)


def split_label(s: Sampling) -> str:
    """ "4 of 5 samples" / "2 of 3 models": how many draws agree with the verdict shown."""
    return s.label()


def _bare(model: str) -> str:
    return model.partition(":")[2] or model


def drawn_note(s: Sampling) -> str:
    """Who wrote the quote shown and how the draws behind it split (one line)."""
    bits: list[str] = []
    if s.unit == "models":
        votes = ", ".join(
            f"{_bare(m.model)} {'—' if m.ship is None else 'ship' if m.ship else 'not ship'}"
            for m in s.models
        )
        bits.append(f"Quote by {_bare(s.quoted_model)}, the majority's most confident. {votes}.")
    if s.stable is True:
        bits.append(f"Stable: {s.ship_votes} of {s.votes} draws vote ship; a rerun keeps it.")
    elif s.stable is False:
        rate = f"{s.flip_rate:.0%}" if s.flip_rate is not None else "—"
        bits.append(
            f"Unstable: {s.ship_votes} of {s.votes} draws vote ship (flip rate {rate}); "
            "a rerun may flip it."
        )
    return " ".join(bits)


def method_note(st: CardStability) -> str:
    """The page's footnote on how the figures above were drawn (ARCHITECTURE.md)."""
    parts: list[str] = []
    if st.jury:
        names = ", ".join(_bare(m) for m in st.jury)
        parts.append(
            f"Each reviewer ran on {len(st.jury)} models ({names}); a reviewer's verdict is the "
            "models' majority and its quote the majority's most confident (a tie is not ship)."
        )
    if st.samples > 1:
        whose = "each model's" if st.jury else "a reviewer's"
        parts.append(
            f"Each verdict was drawn {st.samples} times and {whose} verdict is the majority (a "
            "tie is not ship). A verdict is stable when a rerun of its samples keeps it at least "
            "95% of the time; the ship % range is the central 95% of the ship % such reruns "
            "give (an exact bootstrap over the samples)."
        )
    return " ".join(parts)


STATUS_LABELS = {
    "ship": "Ship",
    "not_ship": "Not ship",
    "failed": "Failed",
    "declined": "Declined",
    "missing": "Not reviewed",
}


def _common(env: Environment) -> Environment:
    env.filters["pct"] = pct
    env.filters["votes"] = votes
    env.filters["stability"] = stability
    env.filters["split_label"] = split_label
    env.filters["drawn_note"] = drawn_note
    env.filters["method_note"] = method_note
    env.filters["safe_url"] = safe_url
    env.tests["allowed_url"] = lambda url: safe_url(url) is not None
    env.globals["status_label"] = STATUS_LABELS
    env.globals["banner"] = SYNTHETIC_BANNER
    env.globals["tool_page"] = tool_page_slug
    env.filters["paragraphs"] = paragraphs
    return env


@lru_cache(maxsize=1)
def html_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # forced: select_autoescape() skips *.html.j2
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return _common(env)


@lru_cache(maxsize=1)
def markdown_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,  # noqa: S701 - Markdown: finalize runs md_escape on every value
        undefined=StrictUndefined,
        finalize=_md_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md_paragraphs"] = _md_paragraphs
    env.filters["md_link"] = _md_link
    env.filters["md_page_link"] = _md_page_link
    return _common(env)


def _rows(record: ComparisonRecord) -> list[dict[str, Any]]:
    """The scorecard as rows: one per persona, the two tools' entries side by side."""
    a, b = record.tools
    return [
        {"persona": ea, "entries": [(a, ea), (b, eb)]}
        for ea, eb in zip(a.scorecard, b.scorecard, strict=True)
    ]


def _shown(record: PageRecord) -> PageRecord:
    """The record with every string through the one control-character sanitiser."""
    return type(record).model_validate(terminal_safe_tree(record.model_dump()))


class PageMeta(NamedTuple):
    """What a page's <head> says about it: title, description, canonical URL."""

    title: str
    description: str
    url: str | None
    og_type: str = "article"
    site_name: str = ""


_SCRIPT_SCHEME = re.compile(r"(?i)(javascript|vbscript|data)([\s\x00-\x1f]*):")


def _clip(text: str, limit: int = 200) -> str:
    """Meta text: one line, clipped, and never a script-URL shape (previews treat it as text)."""
    text = _SCRIPT_SCHEME.sub(r"\1\2", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def page_meta(record: PageRecord, site: SiteSettings | None) -> PageMeta:
    meta = _page_meta(record, site)
    return meta._replace(site_name=_clip(site.name) if site else "")


def _page_meta(record: PageRecord, site: SiteSettings | None) -> PageMeta:
    url = site.page_url(record.slug) if site else None
    if isinstance(record, ToolRecord):
        t = record.tool
        said = f"Panel ship {pct(t)} ({t.ship_votes} of {t.verdicts} reviewers)"
        return PageMeta(_clip(f"{t.name}: the panel's verdict"), _clip(f"{said}. {t.tagline}"), url)
    a, b = record.tools
    said = f"Panel ship {pct(a)} vs {pct(b)}. {a.tagline} / {b.tagline}"
    return PageMeta(_clip(f"{a.name} vs {b.name}"), _clip(said), url)


def _context(record: PageRecord, site: SiteSettings | None, markdown: bool) -> dict[str, Any]:
    home = _md_page_link("← All verdicts", "index") if markdown else ""
    context: dict[str, Any] = {
        "r": record,
        "site": site,
        "meta": page_meta(record, site),
        "is_index": False,
        "home_link": home,
    }
    if isinstance(record, ComparisonRecord):
        context["rows"] = _rows(record)
    return context


def _template(record: PageRecord, ext: str) -> str:
    return ("tool" if isinstance(record, ToolRecord) else "compare") + f".{ext}.j2"


def render_html(record: PageRecord, site: SiteSettings | None = None) -> str:
    record = _shown(record)
    site = _shown_site(site)
    template = html_env().get_template(_template(record, "html"))
    return terminal_safe(template.render(**_context(record, site, markdown=False)))


def render_markdown(record: PageRecord, site: SiteSettings | None = None) -> str:
    record = _shown(record)
    site = _shown_site(site)
    template = markdown_env().get_template(_template(record, "md"))
    return terminal_safe(template.render(**_context(record, site, markdown=True)))


def render_json(record: PageRecord) -> str:
    return record.model_dump_json(indent=2) + "\n"


def _shown_site(site: SiteSettings | None) -> SiteSettings | None:
    return (
        None if site is None else SiteSettings.model_validate(terminal_safe_tree(site.model_dump()))
    )


def _index_context(
    records: Sequence[PageRecord], title: str, site: SiteSettings | None
) -> dict[str, Any]:
    shown = [_shown(r) for r in records]
    comparisons = [r for r in shown if isinstance(r, ComparisonRecord)]
    tools = sorted(
        (r for r in shown if isinstance(r, ToolRecord)), key=lambda r: r.tool.name.casefold()
    )
    site = _shown_site(site)
    what = (site.description if site and site.description else "") or (
        f"{len(comparisons)} comparison(s) and {len(tools)} tool verdict(s) from a panel of "
        "reviewers."
    )
    return {
        "title": title,
        "comparisons": comparisons,
        "tools": tools,
        "synthetic": any(r.provenance.synthetic for r in shown),
        "site": site,
        "is_index": True,
        "meta": PageMeta(
            _clip(title),
            _clip(what),
            site.page_url("index") if site else None,
            "website",
            _clip(site.name) if site else "",
        ),
    }


def render_index_html(
    records: Sequence[PageRecord], title: str = "Comparisons", site: SiteSettings | None = None
) -> str:
    template = html_env().get_template("index.html.j2")
    return terminal_safe(template.render(**_index_context(records, title, site)))


def render_index_markdown(
    records: Sequence[PageRecord], title: str = "Comparisons", site: SiteSettings | None = None
) -> str:
    template = markdown_env().get_template("index.md.j2")
    return terminal_safe(template.render(**_index_context(records, title, site)))


def write_pages(record: PageRecord, out_dir: Path, site: SiteSettings | None = None) -> PagePaths:
    """Write <slug>.html, <slug>.md and <slug>.json into out_dir (contained, atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = PagePaths(
        html=safe_child(out_dir, f"{record.slug}.html"),
        markdown=safe_child(out_dir, f"{record.slug}.md"),
        json=safe_child(out_dir, f"{record.slug}.json"),
    )
    write_atomic(paths.html, render_html(record, site))
    write_atomic(paths.markdown, render_markdown(record, site))
    write_atomic(paths.json, render_json(record))
    return paths


def write_index(
    records: Sequence[PageRecord],
    out_dir: Path,
    title: str = "Comparisons",
    site: SiteSettings | None = None,
) -> tuple[Path, Path]:
    """Write index.html and index.md listing the records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = safe_child(out_dir, "index.html"), safe_child(out_dir, "index.md")
    write_atomic(html_path, render_index_html(records, title, site))
    write_atomic(md_path, render_index_markdown(records, title, site))
    return html_path, md_path
