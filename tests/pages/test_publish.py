"""Publishing: the flip gate, approvals, the published-state file and the atomic swap."""

from __future__ import annotations

import json

import pytest
from pagedata import (
    PERSONAS,
    flipped_results,
    make_manifest,
    make_persona,
    make_tool,
    standard_results,
    write_run,
)
from typer.testing import CliRunner

from panel.cli import app
from panel.errors import PublishError
from panel.pages.publish import STATE_FILE, publish, read_state
from panel.pages.records import build_record

HTML_MD_JSON = ("html", "md", "json")


def record_for(run_id, results):
    return build_record(
        make_tool("ledgerline", "Ledgerline Cache API"),
        make_tool("quorum", "Quorum Fusion"),
        [make_persona(*p) for p in PERSONAS],
        make_manifest(run_id),
        results,
    )


@pytest.fixture
def runs(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(
        runs_dir,
        make_manifest("run-a"),
        standard_results(),
        [record_for("run-a", standard_results())],
    )
    write_run(
        runs_dir,
        make_manifest("run-b"),
        flipped_results(),
        [record_for("run-b", flipped_results())],
    )
    return runs_dir


def test_first_publish_writes_pages_index_and_state(runs, tmp_path):
    site = tmp_path / "site"
    report = publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    # The comparison, and a page per tool (its verdict alone).
    pages = ["ledgerline--verdict", "ledgerline--vs--quorum", "quorum--verdict"]
    assert report.pages == pages
    names = sorted(p.name for p in site.iterdir())
    assert names == sorted(
        [STATE_FILE, "index.html", "index.md"] + [f"{p}.{x}" for p in pages for x in HTML_MD_JSON]
    )
    state = read_state(site)
    assert state is not None and state.last_run_id == "run-a"
    page = state.pages["ledgerline--vs--quorum"]
    assert page.run_id == "run-a" and len(page.verdicts) == 8
    assert all(v.digest and v.digest.startswith("sha256:") for v in page.verdicts)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]


def test_refuses_flips_and_keeps_the_live_site(runs, tmp_path):
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    before = (site / "ledgerline--vs--quorum.html").read_text()
    with pytest.raises(PublishError) as exc:
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)
    msg = str(exc.value)
    assert "quorum × skeptic: not ship -> ship" in msg
    assert "ledgerline × futurist: ship -> not ship" in msg
    assert "--accept-flips" in msg and "persona: skeptic" in msg
    assert (site / "ledgerline--vs--quorum.html").read_text() == before
    assert read_state(site).last_run_id == "run-a"


def test_accept_flips_publishes_and_records_them(runs, tmp_path):
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    report = publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, accept_flips=True)
    assert report.previous_run_id == "run-a" and len(report.accepted) == 2
    state = read_state(site)
    assert state.last_run_id == "run-b" and state.previous_run_id == "run-a"
    assert "100%" in (site / "ledgerline--vs--quorum.md").read_text()


def test_approvals_file_must_cover_every_flip(runs, tmp_path):
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    approvals = tmp_path / "ok.yaml"
    approvals.write_text("- tool: quorum\n  persona: skeptic\n")
    with pytest.raises(PublishError, match="ledgerline × futurist") as exc:
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, approvals_file=approvals)
    assert "quorum × skeptic" not in str(exc.value)
    approvals.write_text(
        "- tool: quorum\n  persona: skeptic\n- tool: ledgerline\n  persona: futurist\n"
    )
    assert (
        publish(
            "run-b", runs_dir=runs, site=site, allow_synthetic=True, approvals_file=approvals
        ).run_id
        == "run-b"
    )


@pytest.mark.parametrize(
    "text", ["tool: x\n", "- tool: x\n", "- !!python/object/apply:os.system ['true']\n", "[1, 2]"]
)
def test_bad_approvals_files_are_errors(runs, tmp_path, text):
    approvals = tmp_path / "ok.yaml"
    approvals.write_text(text)
    with pytest.raises(PublishError, match="approvals"):
        publish(
            "run-a",
            runs_dir=runs,
            site=tmp_path / "site",
            allow_synthetic=True,
            approvals_file=approvals,
        )


def test_failure_mid_render_leaves_previous_site_intact(runs, tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    snapshot = {p.name: p.read_bytes() for p in site.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("panel.pages.publish.write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, accept_flips=True)
    assert {p.name: p.read_bytes() for p in site.iterdir()} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]  # no temp left


def test_run_without_records_is_refused(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, make_manifest("run-x"), standard_results())
    with pytest.raises(PublishError, match="panel compare"):
        publish("run-x", runs_dir=runs_dir, site=tmp_path / "site", allow_synthetic=True)
    assert not (tmp_path / "site").exists()


def test_hostile_record_slug_cannot_escape_the_site(tmp_path):
    runs_dir = tmp_path / "runs"
    write_run(runs_dir, make_manifest("run-x"), standard_results())
    evil = record_for("run-x", standard_results()).model_copy(update={"slug": "../../pwned"})
    records = runs_dir / "run-x" / "records"
    records.mkdir(exist_ok=True)
    (records / "evil.json").write_text(evil.model_dump_json())
    with pytest.raises(Exception, match="unsafe file name"):
        publish("run-x", runs_dir=runs_dir, site=tmp_path / "site", allow_synthetic=True)
    assert not list(tmp_path.rglob("pwned*"))


def test_symlinked_site_is_refused(runs, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "site").symlink_to(tmp_path / "real")
    with pytest.raises(PublishError, match="symlink"):
        publish("run-a", runs_dir=runs, site=tmp_path / "site", allow_synthetic=True)


def test_cli_refuses_then_accepts(runs, tmp_path):
    site = str(tmp_path / "site")
    runner = CliRunner()
    ok = runner.invoke(
        app, ["publish", "run-a", "--site", site, "--runs-dir", str(runs), "--allow-synthetic"]
    )
    assert ok.exit_code == 0 and "published run run-a" in ok.stdout
    refused = runner.invoke(
        app, ["publish", "run-b", "--site", site, "--runs-dir", str(runs), "--allow-synthetic"]
    )
    assert isinstance(refused.exception, PublishError)
    accepted = runner.invoke(
        app,
        [
            "publish",
            "run-b",
            "--site",
            site,
            "--runs-dir",
            str(runs),
            "--accept-flips",
            "--json",
            "--allow-synthetic",
        ],
    )
    assert accepted.exit_code == 0
    assert json.loads(accepted.stdout)["previous_run_id"] == "run-a"
