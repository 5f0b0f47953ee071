"""The editor's workflow end to end: a review that names what changed, pages a publication ships.

Runs go through the real CLI against the emulator; the site is checked as a reader would meet
it (links, share tags, the newsletter, paragraphs) and the review as an editor reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from htmlcheck import parse
from pagedata import flipped_results, make_manifest, standard_results, write_run
from sitedata import make_run
from test_compare_panel import cli

from panel.emulator.runner import EmulatorHandle
from panel.inputs.workspace import builtin_dir
from panel.pages.publish import publish, read_state

TOOL = """name: {name}
category: Developer Tools
tagline: {name} in one line
pricing: Free
description: |
  {name} indexes a repository and answers questions
  about it, line-broken the way YAML blocks are.

  A second paragraph: it proposes edits a developer reviews.
"""
SETTINGS = """name: The Panel Report
base_url: https://panel-report.example/
description: Four reviewers, one verdict per tool.
newsletter:
  heading: Weekly AI Tool Verdicts
  text: Every Friday, the tools our panel reviewed and the one reason each reviewer gave.
  link: https://panel-report.example/newsletter
  button: Get the Friday verdicts
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PANEL_EMULATOR_URL", emulator.base_url)
    (tmp_path / "tools").mkdir()
    for name in ("Alpha", "Beta"):
        (tmp_path / "tools" / f"{name.lower()}.yaml").write_text(TOOL.format(name=name))
    src = builtin_dir("personas")
    assert src is not None
    (tmp_path / "personas").mkdir()
    for f in src.glob("*.md"):
        (tmp_path / "personas" / f.name).write_bytes(f.read_bytes())
    return tmp_path


def newest_run(ws: Path) -> str:
    """The run made last: by its manifest's creation time (two ids of one second sort by their
    random suffix, not by age)."""
    runs = [p for p in (ws / "runs").iterdir() if not p.name.startswith(".")]
    return max(runs, key=lambda p: json.loads((p / "run.json").read_text())["created_at"]).name


# ---- the review -------------------------------------------------------------------------------


def test_diff_names_the_persona_file_and_field_when_only_the_ship_bar_changed(
    workspace: Path,
) -> None:
    assert cli("compare", "tools/alpha.yaml", "tools/beta.yaml")[0] == 0
    first = newest_run(workspace)
    code, out, err = cli("publish", first, "--allow-synthetic")
    assert code == 0, err
    skeptic = workspace / "personas" / "skeptic.md"
    skeptic.write_text(skeptic.read_text().replace("Ship only when", "Ship only if", 1))
    assert cli("compare", "tools/alpha.yaml", "tools/beta.yaml")[0] == 0
    second = newest_run(workspace)

    code, out, _ = cli("diff", first, second, "--json")
    assert code == 0
    why = json.loads(out)["why"]
    assert [(w["input"], w["key"], w["file"], w["compared"]) for w in why] == [
        ("persona", "skeptic", "personas/skeptic.md", True)
    ]
    assert [f["field"] for f in why[0]["fields"]] == ["ship_bar"]
    assert why[0]["fields"][0]["before"].startswith("Ship only when")
    code, text, _ = cli("diff", first, second)
    assert "persona skeptic — personas/skeptic.md: ship_bar" in text
    assert "ship_bar: Ship only [-when-] {+if+} the tool" in text
    assert "sha256:" not in text  # the file and field, not digests
    # No run: what publishing the newest run would change on the site, page by page.
    code, text, _ = cli("diff")
    assert code == 0 and f"publishing run {second} on site would add 0 pages and update" in text
    assert "personas/skeptic.md: ship_bar" in text
    code, md, _ = cli("diff", first, second, "--format", "md")
    assert "->" not in md and "&gt;" not in md
    assert "- ship\\_bar: Ship only ~~when~~ **if**" in md


def test_the_review_puts_flips_first_grouped_by_page_and_persona(tmp_path: Path) -> None:
    runs, site = tmp_path / "runs", tmp_path / "site"
    slugs = ["alpha", "beta", "gamma"]
    make_run(runs, "run-1", slugs, [("alpha", "beta")])
    publish("run-1", runs_dir=runs, site=site, allow_synthetic=True)
    flips = [("beta", "skeptic"), ("alpha", "futurist"), ("gamma", "builder")]
    make_run(runs, "run-2", slugs, [("alpha", "beta")], flips=flips)
    code, text, _ = cli("diff", "run-1", "run-2", "--runs-dir", str(runs))
    lines = text.splitlines()
    head = lines.index("Flips (3)")
    # by page (the comparison first, then gamma's own page), then persona in panel order
    assert lines[head + 1 : head + 6] == [
        "  Alpha vs Beta  [alpha--vs--beta]",
        "    skeptic    FLIP     beta: ship → not ship",
        "    futurist   FLIP     alpha: ship → not ship",
        "  gamma  [gamma--verdict]",
        "    builder    FLIP     gamma: ship → not ship",
    ]
    assert not any("\x1b" in line for line in lines)  # piped: plain
    # Against the site: only what its pages would change, each verdict once, other pages named.
    code, out, _ = cli(
        "diff", "run-2", "--runs-dir", str(runs), "--site", str(site), "--json", "--fail-on", "flip"
    )
    data = json.loads(out)
    # gamma is on no page (these runs keep no copy to build its own from): not the site's
    assert code == 1 and data["against"] == "site" and data["summary"]["flips"] == 2
    status = {p["slug"]: p["status"] for p in data["pages"]}
    assert status == dict.fromkeys(
        ["alpha--vs--beta", "alpha--verdict", "beta--verdict"], "updated"
    )
    code, text, _ = cli("diff", "run-2", "--runs-dir", str(runs), "--site", str(site))
    assert "Also on Alpha [alpha--verdict], Beta [beta--verdict]: the same changes" in text
    assert "gamma" not in text


def test_the_review_is_coloured_on_a_terminal_and_plain_and_wrapped_when_piped(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    write_run(runs, make_manifest("run-1"), standard_results())
    after = flipped_results()  # two flips, and a reworded quote a line can't hold
    old = after[("quorum", "builder")]
    words = (old.quote or "").split()
    after[("quorum", "builder")] = old.model_copy(
        update={"quote": " ".join(words[:5] + ["newly", "inserted", "words"] + words[8:] * 3)}
    )
    write_run(runs, make_manifest("run-2"), after)
    argv = [sys.executable, "-m", "panel", "diff", "run-1", "run-2", "--runs-dir", str(runs)]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    assert "\x1b[" not in piped and "[-" in piped and "{+" in piped
    assert max(len(line) for line in piped.splitlines()) <= 100
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdout=follower, stderr=follower, env={**env, "TERM": "xterm-256color"}
    )
    os.close(follower)
    chunks = []
    with contextlib.suppress(OSError):
        while chunk := os.read(leader, 65536):
            chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    tty = b"".join(chunks).decode()
    assert "\x1b[" in tty  # coloured
    assert "[-" not in tty and "{+" not in tty  # colour shows deletions and insertions
    assert "FLIP" in tty and "Flips (2)" in tty and "quorum--verdict" in tty


# ---- pages a publication ships ----------------------------------------------------------------


def test_a_run_without_comparisons_publishes_a_page_per_tool(workspace: Path) -> None:
    assert cli("run", "tools")[0] == 0
    run_id = newest_run(workspace)
    code, _, err = cli("publish", run_id)
    assert code == 1 and "page alpha--verdict: synthetic (emulator) verdicts from" in err
    code, out, err = cli("publish", run_id, "--allow-synthetic")
    assert code == 0, err
    assert "comparisons 0 added" in out and "tool pages 2 added" in out
    ledger = read_state(workspace / "site")
    assert ledger is not None and sorted(ledger.pages) == ["alpha--verdict", "beta--verdict"]
    shown = ledger.pages["alpha--verdict"].verdicts
    assert {v.persona for v in shown} == {"builder", "skeptic", "futurist", "business"}
    assert all(v.run_id == run_id and v.digest for v in shown)
    page = parse((workspace / "site" / "alpha--verdict.html").read_text())
    assert len(page.tags("blockquote")) == 4 and "Alpha" in page.tags("h1")[0].text
    index = parse((workspace / "site" / "index.html").read_text())
    hrefs = [dict(a.attrs)["href"] for a in index.tags("a")]
    assert "alpha--verdict.html" in hrefs and "beta--verdict.html" in hrefs


def _meta(dom, key: str) -> str | None:
    for m in dom.tags("meta"):
        attrs = dict(m.attrs)
        if key in (attrs.get("name"), attrs.get("property")):
            return attrs.get("content")
    return None


def test_every_page_links_home_shares_well_and_ends_with_the_newsletter(workspace: Path) -> None:
    (workspace / "site.yaml").write_text(SETTINGS)
    assert cli("compare", "tools/alpha.yaml", "tools/beta.yaml")[0] == 0
    code, _, err = cli("publish", "latest", "--allow-synthetic")
    assert code == 0, err
    pages = sorted((workspace / "site").glob("*.html"))
    assert [p.name for p in pages] == [
        "alpha--verdict.html",
        "alpha--vs--beta.html",
        "beta--verdict.html",
        "index.html",
    ]
    for path in pages:
        dom = parse(path.read_text())
        hrefs = [dict(a.attrs)["href"] for a in dom.tags("a")]
        assert path.name == "index.html" or "index.html" in hrefs  # every page links home
        assert _meta(dom, "description") and _meta(dom, "og:title") and _meta(dom, "og:description")
        assert _meta(dom, "og:url") == f"https://panel-report.example/{path.stem}.html"
        assert _meta(dom, "og:site_name") == "The Panel Report"
        letter = dom.by_class("newsletter")
        assert letter and "Weekly AI Tool Verdicts" in letter[0].text, path.name
        assert "https://panel-report.example/newsletter" in hrefs
        md = path.with_suffix(".md").read_text()
        assert "## Weekly AI Tool Verdicts" in md
        assert path.name == "index.html" or md.startswith("[← All verdicts](index.md)")
    compare = (workspace / "site" / "alpha--vs--beta.html").read_text()
    dom = parse(compare)
    paragraphs = [p.text for p in dom.tags("p") if "indexes a repository" in p.text]
    # Blank line = new paragraph; the block's other line breaks reflow as spaces.
    assert paragraphs[0] == (
        "Alpha indexes a repository and answers questions about it, line-broken the way YAML "
        "blocks are."
    )
    assert "pre-line" not in compare
    # Without settings: no newsletter, no absolute URL, still a link home and a description.
    (workspace / "site.yaml").unlink()
    assert cli("compare", "tools/alpha.yaml", "tools/beta.yaml", "--out", "plain")[0] == 0
    dom = parse((workspace / "plain" / "alpha--vs--beta.html").read_text())
    assert not dom.by_class("newsletter") and _meta(dom, "og:url") is None
    assert _meta(dom, "description") and "index.html" in [
        dict(a.attrs)["href"] for a in dom.tags("a")
    ]
    assert (workspace / "plain" / "index.html").is_file()  # compare's own index of its pages


def test_changed_settings_restyle_kept_pages_but_never_their_verdicts(tmp_path: Path) -> None:
    from panel.pages.sitesettings import Newsletter, SiteSettings

    runs, site = tmp_path / "runs", tmp_path / "site"
    make_run(runs, "run-a", ["alpha", "beta"], [("alpha", "beta")])
    make_run(runs, "run-b", ["gamma", "delta"], [("gamma", "delta")])
    first = SiteSettings(name="Old Name")
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True, site_settings=first)
    before = read_state(site)
    assert before is not None
    letter = Newsletter(heading="Fresh Letter", link="https://x.example/n")
    second = SiteSettings(name="New Name", newsletter=letter)
    report = publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, site_settings=second)
    assert report.restyled == ["alpha--verdict", "alpha--vs--beta", "beta--verdict"]
    kept = (site / "alpha--vs--beta.html").read_text()
    assert "New Name" in kept and "Fresh Letter" in kept and "Old Name" not in kept
    after = read_state(site)
    assert after is not None and after.pages["alpha--vs--beta"] == before.pages["alpha--vs--beta"]
    again = publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, site_settings=second)
    assert again.restyled == [] and again.added == []  # same frame: nothing rewritten


def test_site_settings_are_sanitised_and_a_bad_file_is_one_error_line(
    workspace: Path, tmp_path: Path
) -> None:
    (workspace / "site.yaml").write_text(
        'name: "Report \\e]52;c;ZXZpbA==\\a\\u202e"\nnewsletter:\n  heading: "Hi\\e[2J"\n'
        "  link: https://x.example/n\n"
    )
    assert cli("compare", "tools/alpha.yaml", "tools/beta.yaml")[0] == 0
    html = (workspace / "out" / "alpha--vs--beta.html").read_text()
    assert "\x1b" not in html and "\u202e" not in html and "\x07" not in html
    assert "Report" in html and "Hi" in html
    (workspace / "site.yaml").write_text("newsletter:\n  heading: H\n  link: javascript:x\n")
    code, _, err = cli("compare", "tools/alpha.yaml", "tools/beta.yaml")
    assert code == 2 and err.count("\n") == 1
    assert "site.yaml: site settings field 'newsletter.link'" in err
    (workspace / "site.yaml").write_text("name: !!python/object/apply:os.system ['true']\n")
    code, _, err = cli("publish", "latest", "--allow-synthetic")
    assert code == 2 and "site.yaml: invalid site settings" in err


@pytest.mark.parametrize("fmt", ["text", "md", "html", "json"])
def test_the_review_sanitises_what_input_files_said(fmt: str) -> None:
    from panel.pages.diff import RunDiff, Summary
    from panel.pages.diffformat import format_diff
    from panel.pages.why import FieldChange, Why

    evil = "Ship \x1b]52;c;ZXZpbA==\x07when\x1b[2J \u202eproven"
    diff = RunDiff(
        run_a="a",
        run_b="b",
        changes=[],
        tools=[],
        summary=Summary(flips=0, changed=0, added=0, removed=0, unchanged=0),
        why=[
            Why(
                input="persona",
                key="skeptic",
                file="personas/skeptic\x1b[31m.md",
                fields=[FieldChange(field="ship_bar", before=evil, after=f"{evil} twice")],
                compared=True,
                before="sha256:x",
                after="sha256:y",
            )
        ],
    )
    out = format_diff(diff, fmt)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "ship" in out and "proven" in out
