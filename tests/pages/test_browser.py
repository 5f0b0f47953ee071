"""A real browser: headless Chromium loads a rendered comparison; DOM and screenshot checked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from htmlcheck import parse

from panel.pages.records import build_record
from panel.pages.render import write_pages

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"
    ),
]
# Without these, Chromium stalls on connections this offline machine cannot make.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


@pytest.fixture
def page(tmp_path, tools, personas, manifest, results):
    record = build_record(*tools, personas, manifest, results)
    return write_pages(record, tmp_path / "out").html


def test_chromium_renders_both_tools_percentages_and_quotes(page, tmp_path, results):
    dom = parse(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    text = dom.all_text
    assert "Ledgerline Cache API" in text and "Quorum Fusion" in text
    assert [e.text for e in dom.tags("dd")[:6]] == ["100%", "—", "Paid", "75%", "1,284", "Freemium"]
    quotes = [e.text for e in dom.tags("blockquote")]
    assert len(quotes) == 8 and all(f"“{r.quote}”" in quotes for r in results.values())
    assert not dom.tags("script")


@pytest.mark.parametrize("width", [1200, 400])
def test_chromium_screenshot(page, tmp_path, width):
    shot = tmp_path / f"shot-{width}.png"
    chromium(tmp_path, f"--screenshot={shot}", f"--window-size={width},2400", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000  # a real page, not a blank frame
    if width == 1200 and os.environ.get("PANEL_UPDATE_SCREENSHOT"):  # refresh docs/img
        docs = Path(__file__).resolve().parents[2] / "docs" / "img" / "compare-example.png"
        if docs.parent.is_dir():
            shutil.copyfile(shot, docs)


def test_chromium_renders_the_html_review(tmp_path, results):
    """The HTML diff an editor opens: summary, a card per page, a row per persona, why."""
    from pagedata import flipped_results, make_manifest

    from panel.pages.diff import PageRef, compare_runs
    from panel.pages.diffformat import format_html

    page = PageRef(
        slug="ledgerline--vs--quorum",
        title="Ledgerline vs Quorum",
        kind="comparison",
        tools=["ledgerline", "quorum"],
    )
    diff = compare_runs(
        (make_manifest("run-a"), results),
        (make_manifest("run-b", templates={"house.j2": "sha256:house2"}), flipped_results()),
        pages=[page],
    )
    path = tmp_path / "review.html"
    path.write_text(format_html(diff))
    dom = parse(chromium(tmp_path, "--dump-dom", path.as_uri()).stdout)
    assert [e.text.split()[0] for e in dom.by_class("who")] == ["skeptic", "futurist"]
    assert "Ledgerline vs Quorum" in dom.tags("h3")[0].text and dom.tags("ins") and dom.tags("del")
    assert "template house.j2 — prompts/house.j2 changed" in dom.all_text
    for width in (1200, 400):
        shot = tmp_path / f"review-{width}.png"
        chromium(tmp_path, f"--screenshot={shot}", f"--window-size={width},1600", path.as_uri())
        assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 20_000
