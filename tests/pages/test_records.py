"""Comparison records: ship %, listed failures, community votes, order, schema, paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pagedata import make_manifest, make_result, make_tool

from panel.errors import InputError
from panel.pages.records import (
    ComparisonRecord,
    build_record,
    load_votes,
    read_records,
    safe_child,
    schema_text,
    write_record,
)

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "comparison-record.schema.json"


def test_ship_pct_counts_only_personas_with_a_verdict(tools, personas, manifest, results):
    results[("quorum", "futurist")] = make_result("quorum", "futurist", status="refused")
    results[("quorum", "business")] = make_result(
        "quorum", "business", status="failed", error_class="timeout"
    )
    record = build_record(*tools, personas, manifest, results)
    a, b = record.tools
    assert (a.ship_votes, a.verdicts, a.panel_ship_pct) == (4, 4, 100)
    # builder ship, skeptic not ship; futurist declined and business failed are not counted
    assert (b.ship_votes, b.verdicts, b.panel_ship_pct) == (1, 2, 50)
    assert b.declined == ["futurist"] and b.failed == ["business"]
    assert [v.status for v in b.split] == ["ship", "not_ship", "declined", "failed"]
    failed = b.scorecard[3]
    assert failed.quote is None and failed.error_class == "timeout"


def test_no_verdicts_gives_no_percentage_and_lists_everyone(tools, personas, manifest):
    record = build_record(*tools, personas, manifest, {})
    card = record.tools[0]
    assert card.panel_ship_pct is None and card.verdicts == 0
    assert card.missing == ["builder", "skeptic", "futurist", "business"]


def test_scorecard_follows_persona_display_order(tools, personas, manifest, results):
    record = build_record(*tools, personas, manifest, results)
    assert [e.persona for e in record.tools[0].scorecard] == [
        "builder",
        "skeptic",
        "futurist",
        "business",
    ]
    assert record.tools[1].scorecard[1].headline == "A judge is only as good as its worst day"


def test_community_votes_from_tool_file_votes_file_or_none(tmp_path, personas, manifest, results):
    a = make_tool("ledgerline", "Ledgerline Cache API")
    b = make_tool("quorum", "Quorum Fusion", community_votes=12)
    assert [c.community_votes for c in build_record(a, b, personas, manifest, results).tools] == [
        None,
        12,
    ]
    votes = tmp_path / "votes.yaml"
    votes.write_text("Ledgerline Cache API: 340\nQuorum Fusion: 99\n")
    record = build_record(a, b, personas, manifest, results, load_votes(votes))
    assert [c.community_votes for c in record.tools] == [340, 12]  # the tool file wins


@pytest.mark.parametrize("text", ["- 1\n", "a: -3\n", "a: yes\n", "!!python/object:os.system x"])
def test_bad_votes_files_are_rejected(tmp_path, text):
    path = tmp_path / "votes.yaml"
    path.write_text(text)
    with pytest.raises(InputError):
        load_votes(path)


def test_provenance_and_synthetic_flag(tools, personas, manifest, results):
    prov = build_record(*tools, personas, manifest, results).provenance
    assert prov.run_id == manifest.run_id and prov.model == "emulator:claude-sonnet-5"
    assert prov.synthetic is True
    assert set(prov.personas) == {"builder", "skeptic", "futurist", "business"}
    assert prov.templates == {"house.j2": "sha256:house1"}


def test_record_roundtrips_through_the_records_folder(tmp_path, tools, personas, manifest, results):
    record = build_record(*tools, personas, manifest, results)
    path = write_record(record, tmp_path / "records")
    assert path.name == "ledgerline--vs--quorum.json"
    assert read_records(tmp_path / "records") == [record]
    assert json.loads(path.read_text())["format"] == 1


@pytest.mark.parametrize(
    "name", ["../../x.json", "/abs.json", "a/b.json", "..json", ".hidden", "", "x" * 300]
)
def test_hostile_names_cannot_leave_the_folder(tmp_path, name):
    with pytest.raises(InputError):
        safe_child(tmp_path, name)


def test_write_refuses_a_symlinked_record(tmp_path, tools, personas, manifest, results):
    record = build_record(*tools, personas, manifest, results)
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / f"{record.slug}.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InputError):
        write_record(record, folder)
    assert not (tmp_path / "elsewhere.json").exists()


def test_committed_schema_matches_the_model():
    assert SCHEMA.read_text() == schema_text(), "run: python -m panel.pages.records > " + str(
        SCHEMA
    )


def test_record_is_frozen_and_strict(tools, personas, manifest, results):
    data = build_record(*tools, personas, manifest, results).model_dump()
    data["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        ComparisonRecord.model_validate(data)
    assert make_manifest().run_id == manifest.run_id
