"""`panel compare`: uses the run's verdicts, runs only what is missing, writes three pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pagedata import PERSONAS, make_manifest, make_persona, make_result, standard_results, write_run
from typer.testing import CliRunner

from panel.cli import app
from panel.inputs.tools import load_tools
from panel.pages.records import compare, missing_tools

TOOL_YAML = """name: {name}
tagline: {tagline}
description: {name} does one useful thing for developers, described here at some length.
pricing: Paid
"""


class FakeRun:
    def __init__(self, manifest, results, folder: Path):
        self._m, self._r, self._folder = manifest, results, folder

    def manifest(self):
        return self._m

    def results(self):
        return dict(self._r)

    def records_dir(self):
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder


def tool_files(tmp_path):
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "ledgerline.yaml").write_text(TOOL_YAML.format(name="Ledgerline", tagline="Cache"))
    (folder / "quorum.yaml").write_text(TOOL_YAML.format(name="Quorum", tagline="Fusion"))
    return load_tools([folder]).tools


async def test_compare_runs_only_the_missing_tool(tmp_path):
    a, b = tool_files(tmp_path)
    personas = [make_persona(*p) for p in PERSONAS]
    base_results = {k: v for k, v in standard_results().items() if k[0] == "ledgerline"}
    base = FakeRun(make_manifest(tools={"ledgerline": a.digest}), base_results, tmp_path / "r1")
    asked: list[list[str]] = []

    async def run_missing(tools):
        asked.append([t.slug for t in tools])
        new = {k: v for k, v in standard_results().items() if k[0] == "quorum"}
        return FakeRun(make_manifest("run-2", tools={"quorum": b.digest}), new, tmp_path / "r2")

    record, used = await compare(a, b, personas, base, run_missing)
    assert asked == [["quorum"]]
    assert used.manifest().run_id == "run-2"
    assert [c.panel_ship_pct for c in record.tools] == [100, 75]
    assert sum(1 for c in record.tools for e in c.scorecard if e.quote) == 8


async def test_compare_with_everything_present_runs_nothing(tmp_path):
    a, b = tool_files(tmp_path)
    personas = [make_persona(*p) for p in PERSONAS]
    base = FakeRun(
        make_manifest(tools={"ledgerline": a.digest, "quorum": b.digest}),
        standard_results(),
        tmp_path / "r1",
    )

    async def run_missing(tools):
        raise AssertionError("nothing should run")

    record, used = await compare(a, b, personas, base, run_missing)
    assert used is base and record.provenance.run_id == base.manifest().run_id


def test_missing_tools_sees_changed_files_and_unanswered_personas(tmp_path):
    a, b = tool_files(tmp_path)
    personas = [make_persona(*p) for p in PERSONAS]
    manifest = make_manifest(tools={"ledgerline": "sha256:old", "quorum": b.digest})
    results = standard_results()
    del results[("quorum", "business")]
    assert [t.slug for t in missing_tools([a, b], personas, manifest, results)] == [
        "ledgerline",
        "quorum",
    ]
    results[("quorum", "business")] = make_result("quorum", "business", status="failed")
    assert [t.slug for t in missing_tools([a, b], personas, manifest, results)] == ["ledgerline"]


def current(manifest):
    """The manifest with today's persona files, templates and schema (its verdicts are current)."""
    from panel.inputs.personas import load_personas
    from panel.inputs.prompts import load_prompts
    from panel.inputs.workspace import persona_dirs, prompt_dirs
    from panel.runformat import InputDigest
    from panel.verdict import schema_digest

    personas = {
        p.id: InputDigest(path=p.path, digest=p.digest) for p in load_personas(persona_dirs())
    }
    inputs = manifest.inputs.model_copy(
        update={
            "personas": personas,
            "templates": load_prompts(prompt_dirs()).template_digests(),
            "verdict_schema": schema_digest(),
        }
    )
    return manifest.model_copy(update={"inputs": inputs})


def test_cli_compare_writes_html_markdown_and_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = tool_files(tmp_path)
    manifest = make_manifest(tools={"ledgerline": a.digest, "quorum": b.digest})
    manifest = manifest.model_copy(
        update={
            "inputs": manifest.inputs.model_copy(
                update={
                    "tools": {
                        t.slug: manifest.inputs.tools[t.slug].model_copy(update={"path": t.path})
                        for t in (a, b)
                    }
                }
            )
        }
    )
    manifest = current(manifest)
    write_run(tmp_path / "runs", manifest, standard_results())
    res = CliRunner().invoke(
        app, ["compare", "Ledgerline", "tools/quorum.yaml", "--runs-dir", "runs", "--out", "out"]
    )
    assert "0 asked" in res.stderr  # every verdict was current in the run: nothing re-asked
    assert res.exit_code == 0, res.output
    printed = res.stdout.split()
    assert [Path(p).name for p in printed[:3]] == [
        "ledgerline--vs--quorum.html",
        "ledgerline--vs--quorum.md",
        "ledgerline--vs--quorum.json",
    ]
    assert Path(printed[3]).parent.name == "records"
    data = json.loads((tmp_path / "out" / "ledgerline--vs--quorum.json").read_text())
    assert [t["panel_ship_pct"] for t in data["tools"]] == [100, 75]
    res = CliRunner().invoke(
        app, ["compare", "ledgerline", "quorum", "--runs-dir", "runs", "--out", "out", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["title"] == "Ledgerline vs Quorum"


def test_cli_compare_unknown_tool_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tool_files(tmp_path)
    write_run(tmp_path / "runs", make_manifest(), standard_results())
    res = CliRunner().invoke(app, ["compare", "nope", "quorum", "--runs-dir", "runs"])
    assert res.exit_code != 0
    with pytest.raises(Exception, match="no tool 'nope'"):
        raise res.exception
