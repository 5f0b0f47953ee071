"""The committed JSON Schemas equal freshly generated ones, and describe real run files."""

from __future__ import annotations

import json
from pathlib import Path

from store_factories import make_attempt, make_manifest, make_result

from panel.store.schemas import SCHEMAS, render_schemas, write_schemas

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    for name, text in render_schemas().items():
        committed = REPO / "schemas" / name
        assert committed.is_file(), f"missing {committed}: run python -m panel.store.schemas"
        assert committed.read_text(encoding="utf-8") == text, (
            f"{committed} is stale: run python -m panel.store.schemas"
        )


def test_write_schemas_writes_every_file(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(SCHEMAS)


def test_schemas_name_every_field_a_run_file_holds() -> None:
    # A reader without panel relies on the schema listing each field that appears on disk.
    samples = {
        "run-manifest.schema.json": make_manifest(),
        "pair-result.schema.json": make_result(),
        "attempt.schema.json": make_attempt(),
    }
    rendered = render_schemas()
    for name, model in samples.items():
        schema = json.loads(rendered[name])
        assert schema["additionalProperties"] is False
        assert set(model.model_dump(mode="json")) == set(schema["properties"])
