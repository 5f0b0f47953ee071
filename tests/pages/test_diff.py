"""Run diffs: flips, changes, added/removed, why, formats and the --fail-on exit codes."""

from __future__ import annotations

import json

import pytest
from pagedata import flipped_results, make_manifest, make_result, standard_results, write_run
from typer.testing import CliRunner

from panel.cli import app
from panel.pages.diff import compare_runs
from panel.pages.diffformat import format_diff

A = make_manifest("run-a")


def test_same_run_has_no_changes():
    d = compare_runs((A, standard_results()), (A, standard_results()))
    assert d.changes == [] and d.summary.unchanged == 8 and d.why == []
    assert not d.fails("flip") and not d.fails("change")


def test_flips_and_ship_pct_shift():
    d = compare_runs((A, standard_results()), (make_manifest("run-b"), flipped_results()))
    flips = {(c.tool, c.persona) for c in d.changes if c.kind == "flip"}
    assert flips == {("quorum", "skeptic"), ("ledgerline", "futurist")}
    skeptic = next(c for c in d.changes if c.persona == "skeptic")
    assert skeptic.before.ship is False and skeptic.after.ship is True
    assert "headline" in skeptic.fields
    assert [o.op for o in skeptic.headline_diff].count("insert") >= 1
    shifts = {t.tool: (t.before_pct, t.after_pct) for t in d.tools}
    assert shifts == {"ledgerline": (100, 75), "quorum": (75, 100)}
    assert d.fails("flip") and d.summary.flips == 2


def test_changed_quote_confidence_rubric_and_status():
    after = standard_results()
    old = after[("ledgerline", "builder")]
    after[("ledgerline", "builder")] = old.model_copy(
        update={
            "quote": old.quote.replace("invoice", "bill"),
            "confidence": 0.6,
            "rubric": {"q1": "Another answer."},
        }
    )
    after[("quorum", "business")] = make_result(
        "quorum", "business", status="failed", error_class="timeout"
    )
    d = compare_runs((A, standard_results()), (A, after))
    kinds = {(c.tool, c.persona): c for c in d.changes}
    builder = kinds[("ledgerline", "builder")]
    assert builder.kind == "changed"
    assert builder.fields == ["confidence", "quote", "rubric"] and builder.rubric_changed == ["q1"]
    assert [(o.op, o.text) for o in builder.quote_diff if o.op != "equal"] == [
        ("delete", "invoice."),
        ("insert", "bill."),
    ]
    business = kinds[("quorum", "business")]  # ok -> failed is a change, never skipped
    assert business.kind == "changed" and business.fields == ["status"]
    assert d.fails("change") and not d.fails("flip")
    assert "[-invoice.-] {+bill.+}" in " ".join(format_diff(d, "text").split())  # wrapped


def test_added_removed_and_why():
    before = standard_results()
    after = {k: v for k, v in standard_results().items() if k != ("quorum", "business")}
    after[("newtool", "builder")] = make_result(
        "newtool", "builder", ship=True, headline="h", quote="q"
    )
    b = make_manifest(
        "run-b",
        model="emulator:other-model",
        personas={
            "builder": "sha256:builder",
            "skeptic": "sha256:CHANGED",
            "futurist": "sha256:futurist",
            "business": "sha256:business",
        },
        templates={"house.j2": "sha256:house2"},
        tools={"ledgerline": "sha256:t1", "quorum": "sha256:t2", "newtool": "sha256:t3"},
    )
    d = compare_runs((A, before), (b, after))
    assert {(c.tool, c.persona, c.kind) for c in d.changes} == {
        ("quorum", "business", "removed"),
        ("newtool", "builder", "added"),
    }
    why = {(w.input, w.key): (w.before, w.after) for w in d.why}
    assert why == {
        ("model", "model"): ("emulator:claude-sonnet-5", "emulator:other-model"),
        ("persona", "skeptic"): ("sha256:skeptic", "sha256:CHANGED"),
        ("template", "house.j2"): ("sha256:house1", "sha256:house2"),
        ("tool", "newtool"): (None, "sha256:t3"),
    }
    text = format_diff(d, "text")
    # Runs without copies of their inputs: the file is named, the digests say that it changed.
    assert "persona skeptic — personas/skeptic.md changed (sha256:skeptic…" in text
    md = format_diff(d, "md")
    assert "- **business** · quorum: ship → absent" in md and "## Why" in md
    assert "->" not in md and "&gt;" not in md


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, make_manifest("run-a"), standard_results())
    write_run(runs_dir, make_manifest("run-b"), flipped_results())
    return runs_dir


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_cli_fail_on_flip_exits_1_and_lists_flips_as_json(runs):
    res = invoke("diff", "run-a", "run-b", "--runs-dir", str(runs), "--fail-on", "flip", "--json")
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    flips = [c for c in data["changes"] if c["kind"] == "flip"]
    assert {(c["tool"], c["persona"]) for c in flips} == {
        ("quorum", "skeptic"),
        ("ledgerline", "futurist"),
    }
    assert flips[0]["before"]["ship"] != flips[0]["after"]["ship"]
    assert data["summary"]["flips"] == 2 and "why" in data


def test_cli_same_run_exits_0_with_no_changes(runs):
    res = invoke(
        "diff", "run-a", "run-a", "--runs-dir", str(runs), "--fail-on", "change", "--format", "json"
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["changes"] == []


def test_cli_without_fail_on_exits_0_and_prints_every_format(runs):
    for fmt in ("text", "md", "html", "json"):
        res = invoke("diff", "run-a", "run-b", "--runs-dir", str(runs), "--format", fmt)
        assert res.exit_code == 0 and "skeptic" in res.stdout


def test_cli_one_argument_diffs_against_the_published_run(runs, tmp_path):
    from panel.pages.publish import publish

    site = tmp_path / "site"
    write_run(runs, make_manifest("run-pub"), standard_results(), records=[_record()])
    publish("run-pub", runs_dir=runs, site=site, allow_synthetic=True)
    res = invoke("diff", "run-b", "--runs-dir", str(runs), "--site", str(site), "--fail-on", "flip")
    assert res.exit_code == 1 and "run-pub → run-b" in res.stdout


def test_cli_errors_exit_2(runs, monkeypatch, capsys):
    from panel.cli import main

    monkeypatch.setattr("sys.argv", ["panel", "diff", "run-a", "nope", "--runs-dir", str(runs)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and "no run nope" in capsys.readouterr().err


def _record():
    from pagedata import PERSONAS, make_persona, make_tool

    from panel.pages.records import build_record

    return build_record(
        make_tool("ledgerline", "Ledgerline"),
        make_tool("quorum", "Quorum"),
        [make_persona(*p) for p in PERSONAS],
        make_manifest("run-pub"),
        standard_results(),
    )
