"""XSS corpus: payloads in every untrusted field render with zero active content."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from htmlcheck import Dom, parse
from pagedata import make_manifest, make_persona, make_result, make_tool, standard_results

from panel.inputs.tools import ToolLink
from panel.pages.diff import compare_runs
from panel.pages.diffformat import format_html, format_markdown
from panel.pages.records import build_record
from panel.pages.render import render_html, render_index_html, render_markdown

PAYLOADS = [
    line for line in (Path(__file__).parent / "xss_payloads.txt").read_text().splitlines() if line
]
# panel's own relative links: the index, and the tool pages a comparison's cards point to.
INTERNAL_HTML = re.compile(r"^(index|[a-z0-9-]+--verdict)\.html$")
INTERNAL_MD = re.compile(r"^(index|[a-z0-9-]+--verdict)\.md$")
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "background", "srcdoc"}
BAD_SCHEMES = ("javascript:", "data:", "vbscript:")


def test_corpus_is_big_enough():
    assert len(PAYLOADS) >= 50


def hostile_record(payload: str):
    """A record with the payload in every text field a tool file or a model controls."""
    personas = [
        make_persona(pid, f"{name} {payload}", f"{title} {payload}", order)
        for pid, name, title, order in [
            ("builder", "B", "t", 1),
            ("skeptic", "S", "t", 2),
            ("futurist", "F", "t", 3),
            ("business", "O", "t", 4),
        ]
    ]
    a = make_tool(
        "ledgerline",
        f"Ledger {payload}",
        category=payload,
        tagline=payload,
        description=f"{payload}\n\n{payload}",
        links=[ToolLink(label=payload, url=payload)],
    )
    b = make_tool("quorum", payload or "x", tagline=f"t {payload}", description=payload)
    results = {
        k: v.model_copy(
            update={"headline": payload, "quote": f"{payload} and {payload}", "tool": payload}
        )
        for k, v in standard_results().items()
    }
    results[("quorum", "futurist")] = make_result(
        "quorum", "futurist", status="failed", error_class="timeout"
    )
    manifest = make_manifest(model=f"emulator:{payload}", templates={payload: payload})
    record = build_record(a, b, personas, manifest, results)
    # A run file cannot carry a free-text error class (it is an ErrorClass), but a hand-edited
    # record can: the page must stay inert either way.
    tools = [
        t.model_copy(
            update={
                "scorecard": [
                    e.model_copy(update={"error_class": payload}) if e.error_class else e
                    for e in t.scorecard
                ]
            }
        )
        for t in record.tools
    ]
    return record.model_copy(update={"tools": tools})


def clean_shape() -> list[tuple[str, tuple[str, ...]]]:
    return _shape(parse(render_html(hostile_record("plain words"))))


def _shape(dom: Dom) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.tag, tuple(sorted(k for k, _ in e.attrs))) for e in dom.elements]


def assert_inert(dom: Dom, reference: list[tuple[str, tuple[str, ...]]] | None = None) -> None:
    assert not dom.tags("script")
    for bad in (
        "iframe",
        "object",
        "embed",
        "svg",
        "math",
        "base",
        "link",
        "form",
        "img",
        "input",
        "template",
        "video",
        "audio",
        "details",
        "noscript",
    ):
        assert not dom.tags(bad), bad
    for el in dom.elements:
        for name, value in el.attrs:
            assert not name.startswith("on"), (el.tag, name)
            if name in URL_ATTRS or (el.tag == "meta" and name == "content"):
                v = re.sub(r"[\s\x00-\x1f]", "", (value or "")).lower()
                assert not any(s in v for s in BAD_SCHEMES), (el.tag, name, value)
            assert name != "style", el.tag  # no inline styles at all: payloads can't add any
    styles = dom.tags("style")
    assert len(styles) == 1
    assert "javascript" not in styles[0].text and "@import" not in styles[0].text
    refresh = [m for m in dom.tags("meta") if (dict(m.attrs).get("http-equiv") or "") == "refresh"]
    assert not refresh
    if reference is not None:
        # Same elements and attribute names as a page without payloads (links may drop out).
        shape = [s for s in _shape(dom) if s[0] not in ("a", "li", "ul")]
        assert shape == [s for s in reference if s[0] not in ("a", "li", "ul")]


@pytest.fixture(scope="module")
def reference():
    return clean_shape()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_comparison_page_has_no_active_content(payload, reference):
    record = hostile_record(payload)
    html = render_html(record)
    dom = parse(html)
    assert_inert(dom, reference)
    # The payload is still there, as text a reader can see.
    assert " ".join(payload.split()) in dom.all_text
    for a in dom.tags("a"):
        href = dict(a.attrs)["href"]
        if INTERNAL_HTML.match(href or ""):
            continue  # the index, a tool page: panel's own names, never from input
        assert href == payload.strip()  # only an allow-listed URL survives
        assert payload.strip().lower().startswith(("http://", "https://", "mailto:"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_index_and_diff_pages_have_no_active_content(payload):
    record = hostile_record(payload)
    assert_inert(parse(render_index_html([record], title=payload)))
    before = (make_manifest(), standard_results())
    after_results = {
        k: v.model_copy(
            update={"headline": payload, "quote": payload, "tool": payload, "ship": not v.ship}
        )
        for k, v in standard_results().items()
    }
    diff = compare_runs(before, (make_manifest(run_id="r2", model=payload), after_results))
    assert_inert(parse(format_html(diff)))
    assert "<" not in format_markdown(diff).replace("→", "")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_passes_no_raw_html_and_no_unsafe_links(payload):
    md = render_markdown(hostile_record(payload))
    assert "<" not in md
    # Every markdown link destination is an allow-listed URL.
    for dest in re.findall(r"(?<!\\)\]\(([^)]*)\)", md):
        if INTERNAL_MD.match(dest):
            continue  # the index, a tool page: panel's own names, never from input
        assert dest.startswith(("https://", "http://", "mailto:")), dest
    for row in (line for line in md.splitlines() if line.startswith("| ")):
        assert len(re.split(r"(?<!\\)\|", row)) == 5, row


def hostile_settings(payload: str):
    from panel.pages.sitesettings import Newsletter, SiteSettings

    return SiteSettings(
        name=f"Site {payload}",
        base_url="https://verdicts.example.com/",
        description=payload,
        newsletter=Newsletter(
            heading=payload,
            text=f"{payload}\n{payload}",
            link="https://x.example/s",
            button=payload,
        ),
    )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_tool_pages_and_site_settings_have_no_active_content(payload):
    from panel.pages.toolpages import tool_records_from

    settings = hostile_settings(payload)
    record = hostile_record(payload)
    tool_page = tool_records_from(record)[0]
    for html in (
        render_html(tool_page, settings),
        render_html(record, settings),
        render_index_html([record, tool_page], title=payload, site=settings),
    ):
        dom = parse(html)
        assert_inert(dom)
        assert " ".join(payload.split()) in dom.all_text  # shown, as text
        for a in dom.tags("a"):
            href = dict(a.attrs)["href"] or ""
            page = re.fullmatch(r"[a-z0-9-]+\.html", href)  # the index lists pages by slug
            assert page or href in (payload.strip(), "https://x.example/s")
    md = render_markdown(tool_page, settings)
    assert "<" not in md


@pytest.mark.parametrize("field", ["base_url", "link"])
@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "//evil", "ftp://x"])
def test_a_settings_file_with_an_unsafe_url_is_refused(tmp_path, field, url):
    from panel.errors import InputError
    from panel.pages.sitesettings import load_site_settings

    path = tmp_path / "site.yaml"
    if field == "base_url":
        path.write_text(f"name: X\nbase_url: '{url}'\n")
    else:
        path.write_text(f"newsletter:\n  heading: H\n  link: '{url}'\n")
    with pytest.raises(InputError, match=f"{path}: site settings field '(newsletter.)?{field}'"):
        load_site_settings(path)
