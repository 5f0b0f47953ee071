"""Rendered pages: what a reader sees in HTML and Markdown, links, and written files."""

from __future__ import annotations

import re

import pytest
from htmlcheck import parse
from pagedata import make_result, make_tool

from panel.pages.records import build_record
from panel.pages.render import (
    SYNTHETIC_BANNER,
    md_escape,
    render_html,
    render_index_html,
    render_index_markdown,
    render_markdown,
    safe_url,
    write_index,
    write_pages,
)


@pytest.fixture
def record(tools, personas, manifest, results):
    return build_record(*tools, personas, manifest, results)


def test_html_shows_both_tools_percentages_and_every_quote(record, results):
    dom = parse(render_html(record))
    assert dom.tags("title")[0].text == "Ledgerline Cache API vs Quorum Fusion"
    h1 = " ".join(dom.tags("h1")[0].text.split())
    assert h1 == "Ledgerline Cache API vs Quorum Fusion"
    names = [e.text for e in dom.tags("h2")[:2]]
    assert names == ["Ledgerline Cache API", "Quorum Fusion"]
    labels = [e.text for e in dom.tags("dt")[:6]]
    assert labels == ["Panel ship", "Community", "Entry"] * 2
    values = [e.text for e in dom.tags("dd")[:6]]
    assert values == ["100%", "—", "Paid", "75%", "1,284", "Freemium"]
    quotes = [e.text for e in dom.tags("blockquote")]
    assert len(quotes) == 8
    for r in results.values():
        assert f"“{r.quote}”" in quotes
    assert "Reviewer scorecard" in dom.all_text
    banner = dom.by_class("banner")
    assert banner and banner[0].text == SYNTHETIC_BANNER


def test_scorecard_is_in_persona_order_with_badges(record):
    dom = parse(render_html(record))
    personas = [e.text.split("  ")[0] for e in dom.tags("h3")]
    assert [
        p.split("Staff")[0].split("Has")[0].split("Thinks")[0].split("Owns")[0] for p in personas
    ] == ["The Builder", "The Skeptic", "The Futurist", "The Operator"]
    badges = [e.text for e in dom.by_class("badge")]
    assert badges == ["Ship", "Ship", "Ship", "Not ship", "Ship", "Ship", "Ship", "Ship"]


def test_ship_split_has_one_segment_per_persona(tools, personas, manifest, results):
    results[("quorum", "futurist")] = make_result("quorum", "futurist", status="refused")
    dom = parse(render_html(build_record(*tools, personas, manifest, results)))
    segs = [dict(e.attrs)["class"] for e in dom.by_class("seg")]
    assert segs[4:] == ["seg ship", "seg not_ship", "seg declined", "seg ship"]
    assert "Not counted in the ship %: The Futurist (declined)." in dom.all_text
    assert "No verdict: the model declined to review this tool." in dom.all_text


def test_no_banner_for_real_verdicts(tools, personas, manifest, results):
    real = manifest.model_copy(update={"synthetic": False})
    results = {k: v.model_copy(update={"synthetic": False}) for k, v in results.items()}
    html = render_html(build_record(*tools, personas, real, results))
    assert not parse(html).by_class("banner")
    assert "Synthetic" not in html


def test_page_is_self_contained(record):
    dom = parse(render_html(record))
    assert not dom.tags("script") and not dom.tags("link") and not dom.tags("img")
    assert len(dom.tags("style")) == 1
    assert "max-width" in dom.tags("style")[0].text and "@media" in dom.tags("style")[0].text
    viewport = [dict(m.attrs) for m in dom.tags("meta") if dict(m.attrs).get("name") == "viewport"]
    assert viewport and "width=device-width" in (viewport[0]["content"] or "")
    assert "url(" not in dom.tags("style")[0].text and "@import" not in dom.tags("style")[0].text


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://example.com/x", True),
        ("http://example.com", True),
        ("mailto:team@example.com", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,hi", False),
        ("vbscript:x", False),
        ("//evil.example/x", False),
        ("/relative", False),
        ("https:evil", False),
        ("file:///etc/passwd", False),
    ],
)
def test_links_are_allow_listed(url, kept):
    assert (safe_url(url) is not None) is kept


def test_disallowed_links_are_dropped_from_both_formats(personas, manifest, results):
    from panel.inputs.tools import ToolLink

    a = make_tool(
        "ledgerline",
        "Ledgerline",
        links=[
            ToolLink(label="Docs", url="https://ledgerline.example/docs"),
            ToolLink(label="Evil", url="javascript:alert(1)"),
        ],
    )
    record = build_record(a, make_tool("quorum", "Quorum"), personas, manifest, results)
    hrefs = [dict(e.attrs)["href"] for e in parse(render_html(record)).tags("a")]
    # panel's own links (the index, each tool's page) and the one allowed link, nothing else
    assert hrefs == [
        "index.html",
        "index.html",
        "https://ledgerline.example/docs",
        "ledgerline--verdict.html",
        "quorum--verdict.html",
    ]
    md = render_markdown(record)
    assert "[Docs](https://ledgerline.example/docs)" in md
    assert "javascript" not in md and "Evil" in md


def test_markdown_has_the_same_content(record, results):
    md = render_markdown(record)
    assert md.startswith("[← All verdicts](index.md)\n\n# Ledgerline Cache API vs Quorum Fusion\n")
    assert f"> **{SYNTHETIC_BANNER}.**" in md
    assert "| Panel ship | 100% (4/4) | 75% (3/4) |" in md
    assert "| Community | — | 1,284 |" in md
    assert "## Reviewer scorecard" in md
    for r in results.values():
        assert md_escape(r.quote) in md
    assert md.index("The Builder") < md.index("The Skeptic") < md.index("The Futurist")


def test_markdown_escapes_pipes_and_passes_no_html(personas, manifest, results):
    a = make_tool(
        "a", "A | B <b>x</b>", tagline="x|y", description="**bold** <i>i</i> `code` [l](u)"
    )
    results = {
        ("a", k[1]): v.model_copy(update={"tool_slug": "a", "headline": "h | <em>x</em>"})
        for k, v in results.items()
        if k[0] == "ledgerline"
    }
    md = render_markdown(build_record(a, make_tool("q", "Q"), personas, manifest, results))
    assert "<" not in md and ">" not in md.replace("\n> ", "\n").replace("> **", "")
    for row in (line for line in md.splitlines() if line.startswith("| ")):
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 5, row  # edges + three columns: no pipe broke out of a cell
    assert "\\*\\*bold\\*\\*" in md and "\\`code\\`" in md and "\\[l\\](u)" in md


def test_index_pages_list_every_record(record):
    dom = parse(render_index_html([record]))
    assert [dict(a.attrs)["href"] for a in dom.tags("a")] == ["ledgerline--vs--quorum.html"]
    assert "Panel ship 100% vs 75%" in dom.all_text
    assert "[Ledgerline Cache API vs Quorum Fusion](ledgerline--vs--quorum.md)" in (
        render_index_markdown([record])
    )


def test_pages_are_written_inside_the_folder(tmp_path, record):
    paths = write_pages(record, tmp_path / "out")
    assert [p.name for p in paths] == [
        "ledgerline--vs--quorum.html",
        "ledgerline--vs--quorum.md",
        "ledgerline--vs--quorum.json",
    ]
    assert all(p.parent == (tmp_path / "out").resolve() for p in paths)
    html, md = write_index([record], tmp_path / "out")
    assert html.read_text().startswith("<!DOCTYPE html>") and md.exists()


def test_hostile_record_slug_cannot_escape_out(tmp_path, record):
    from panel.errors import InputError

    evil = record.model_copy(update={"slug": "../../escaped"})
    with pytest.raises(InputError):
        write_pages(evil, tmp_path / "out")
    assert not list(tmp_path.rglob("escaped*"))
