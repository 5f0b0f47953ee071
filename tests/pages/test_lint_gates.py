"""Lint findings in `panel diff` (text, Markdown, HTML, JSON; --fail-on lint) and in the publish
gate (warnings by default, blocking with --fail-on lint)."""

from __future__ import annotations

import json

import pytest
from htmlcheck import parse
from pagedata import make_manifest, standard_results, write_run
from test_publish import record_for
from typer.testing import CliRunner

from panel.cli import app
from panel.errors import GateRefused
from panel.lintformat import LintFinding
from panel.pages.diff import compare_runs
from panel.pages.diffformat import format_diff
from panel.pages.publish import publish

FINDING = LintFinding(
    check="unverified_figure",
    field="quote",
    text="$49 <b>",
    message="quote: '$49 <b>' is not in the tool's description; check it before it goes out",
)


def linted_results():
    out = standard_results()
    key = ("quorum", "skeptic")
    # A changed headline, so the page changes too (gates look at pages being changed).
    headline = "Costs $49 <b> and the judge still has to earn it"
    out[key] = out[key].model_copy(update={"lint": [FINDING], "headline": headline})
    return out


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, make_manifest("clean"), standard_results(),
              [record_for("clean", standard_results())])  # fmt: skip
    write_run(runs_dir, make_manifest("linted"), linted_results(),
              [record_for("linted", linted_results())])  # fmt: skip
    return runs_dir


def test_the_diff_lists_the_later_runs_findings_and_which_are_new():
    clean, linted = (
        (make_manifest("clean"), standard_results()),
        (
            make_manifest("linted"),
            linted_results(),
        ),
    )
    d = compare_runs(clean, linted)
    assert [(i.check, i.tool, i.persona, i.new) for i in d.lint] == [
        ("unverified_figure", "quorum", "skeptic", True)
    ]
    assert d.fails("lint") and not d.fails("flip")
    assert compare_runs(linted, linted).lint[0].new is False
    assert compare_runs(linted, clean).lint == [] and not compare_runs(linted, clean).fails("lint")
    text = format_diff(d, "text")
    assert "Lint (house rules) in linted: 1 finding(s), 1 new since clean" in text
    assert "  unverified_figure [new]: quorum × skeptic:" in text
    assert "## Lint" in format_diff(d, "md")
    page = format_diff(d, "html")
    assert "<h2>Lint</h2>" in page and "$49 &lt;b&gt;" in page and "$49 <b>" not in page
    parse(page)


def test_cli_diff_fail_on_lint_exits_1_only_when_the_later_run_has_findings(runs):
    def diff(a, b):
        return CliRunner().invoke(
            app, ["diff", a, b, "--runs-dir", str(runs), "--fail-on", "lint", "--json"]
        )

    res = diff("clean", "linted")
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["lint"][0]["check"] == "unverified_figure"
    assert diff("linted", "clean").exit_code == 0
    plain = CliRunner().invoke(app, ["diff", "clean", "linted", "--runs-dir", str(runs)])
    assert plain.exit_code == 0 and "unverified_figure [new]" in plain.stdout  # a warning


def test_publish_warns_about_lint_findings_by_default(runs, tmp_path):
    site = tmp_path / "site"
    report = publish("linted", runs_dir=runs, site=site, allow_synthetic=True)
    # The finding shows on every page that shows the verdict: the comparison and quorum's page.
    assert sorted(report.lint) == ["ledgerline--vs--quorum", "quorum--verdict"]
    page, lines = "ledgerline--vs--quorum", report.lint["ledgerline--vs--quorum"]
    assert "quorum × skeptic:" in lines[0] and report.lint["quorum--verdict"] == lines
    assert (site / f"{page}.html").is_file()
    cli = CliRunner().invoke(
        app, ["publish", "linted", "--site", str(site), "--runs-dir", str(runs),
              "--allow-synthetic", "--json"],
    )  # fmt: skip
    assert cli.exit_code == 0 and json.loads(cli.stdout)["lint"] == {}  # unchanged: no gate


def test_publish_fail_on_lint_refuses_the_page_and_leaves_the_site(runs, tmp_path):
    site = tmp_path / "site"
    publish("clean", runs_dir=runs, site=site, allow_synthetic=True)
    before = {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()}
    with pytest.raises(GateRefused) as refused:
        publish("linted", runs_dir=runs, site=site, allow_synthetic=True, fail_on_lint=True)
    message = str(refused.value)
    assert "page ledgerline--vs--quorum: 1 lint finding(s)" in message
    assert "panel lint linted" in message and "$49" in message
    assert {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()} == before
    cli = CliRunner().invoke(
        app, ["publish", "linted", "--site", str(site), "--runs-dir", str(runs),
              "--allow-synthetic", "--fail-on", "lint"],
    )  # fmt: skip
    assert cli.exit_code == 1
    ok = CliRunner().invoke(
        app, ["publish", "linted", "--site", str(site), "--runs-dir", str(runs),
              "--allow-synthetic"],
    )  # fmt: skip
    assert ok.exit_code == 0 and "lint warnings on ledgerline--vs--quorum" in ok.stdout
