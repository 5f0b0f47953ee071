"""JSON Schemas for the run folder formats, generated from panel.runformat.

`python -m panel.store.schemas [DIR]` rewrites schemas/ (default); a test keeps the committed files
equal to freshly generated ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from panel.lintformat import LintReport
from panel.runformat import FORMAT_VERSION, Attempt, PairResult, RunManifest
from panel.store.atomicio import write_bytes_atomic

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# file name -> (model, what the file holds)
SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "run-manifest.schema.json": (RunManifest, "runs/<run-id>/run.json"),
    "pair-result.schema.json": (PairResult, "one line of runs/<run-id>/results.jsonl"),
    "attempt.schema.json": (Attempt, "one line of runs/<run-id>/attempts.jsonl"),
    "lint-report.schema.json": (LintReport, "runs/<run-id>/lint.json and `panel lint --json`"),
}


def schema_for(model: type[BaseModel], describes: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$comment": f"panel run format {FORMAT_VERSION}: {describes}. Generated; do not edit.",
        **schema,
    }


def render_schemas() -> dict[str, str]:
    """File name -> file text, exactly as committed."""
    return {
        name: json.dumps(schema_for(model, describes), indent=2, ensure_ascii=False) + "\n"
        for name, (model, describes) in SCHEMAS.items()
    }


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema file into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_schemas().items():
        path = directory / name
        write_bytes_atomic(path, text.encode("utf-8"))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for path in write_schemas(Path(args[0] if args else "schemas")):
        print(path)


if __name__ == "__main__":
    main()
