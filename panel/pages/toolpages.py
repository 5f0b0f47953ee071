"""A page per tool: its panel verdict alone, so a run with no comparisons still publishes.

A ToolRecord is one ToolCard (the same card a comparison shows) with its provenance; its page
slug is `<tool-slug>--verdict` (tool slugs never hold `--`, so it collides with no comparison
and never with `index`). `run_tool_records` builds one for every tool of a run from what the
run folder holds: the tool file and personas from the run's copy of its inputs, else a
comparison record of the same run that already carries the tool's card.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from panel.aggregate import PairVerdict
from panel.errors import InputError
from panel.inputs.personas import Persona, parse_persona_file
from panel.inputs.tools import LoadedTool, parse_tool_file
from panel.pages.diff import tool_page_slug
from panel.pages.records import (
    ComparisonRecord,
    Provenance,
    ToolCard,
    build_card,
    drawn_of,
    order_personas,
)
from panel.runformat import PairResult, RunManifest
from panel.store.runinputs import read_input_copy


class ToolRecord(BaseModel):
    """One tool's panel verdict: the data its own page renders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    kind: Literal["tool"] = "tool"
    slug: str  # "<tool-slug>--verdict", the file stem of every page of this record
    title: str
    tool: ToolCard
    provenance: Provenance


PageRecord = ComparisonRecord | ToolRecord


def read_page_record(path: Path) -> PageRecord:
    """A page's JSON: a tool record (`"kind": "tool"`) or a comparison record."""
    try:
        raw = path.read_bytes()
        if json.loads(raw).get("kind") == "tool":
            return ToolRecord.model_validate_json(raw)
        return ComparisonRecord.model_validate_json(raw)
    except (OSError, ValueError, AttributeError, ValidationError) as exc:
        raise InputError(f"{path}: not a page record: {exc}") from None


def page_tools(record: PageRecord) -> list[ToolCard]:
    return [record.tool] if isinstance(record, ToolRecord) else list(record.tools)


def _provenance(manifest: RunManifest, slug: str, synthetic: bool) -> Provenance:
    inputs = manifest.inputs
    return Provenance(
        run_id=manifest.run_id,
        model=manifest.model,
        provider=manifest.provider,
        date=manifest.updated_at,
        synthetic=synthetic,
        personas={pid: e.digest for pid, e in sorted(inputs.personas.items())},
        templates=dict(sorted(inputs.templates.items())),
        tools={slug: inputs.tools[slug].digest} if slug in inputs.tools else {},
        verdict_schema=inputs.verdict_schema,
    )


def build_tool_record(
    card: ToolCard, manifest: RunManifest, results: Mapping[tuple[str, str], PairResult]
) -> ToolRecord:
    synthetic = manifest.synthetic or any(
        r.synthetic for (s, _), r in results.items() if s == card.slug
    )
    return ToolRecord(
        slug=tool_page_slug(card.slug),
        title=card.name,
        tool=card,
        provenance=_provenance(manifest, card.slug, synthetic),
    )


def tool_records_from(record: ComparisonRecord) -> list[ToolRecord]:
    """The two tools' own pages, from a comparison's cards (what `panel compare` writes)."""
    out = []
    for card in record.tools:
        prov = record.provenance.model_copy(
            update={"tools": {k: v for k, v in record.provenance.tools.items() if k == card.slug}}
        )
        out.append(
            ToolRecord(slug=tool_page_slug(card.slug), title=card.name, tool=card, provenance=prov)
        )
    return out


def _panel(
    manifest: RunManifest, personas: Sequence[Persona], cards: Mapping[str, ToolCard]
) -> list[tuple[str, str, str]]:
    """(id, name, title) for the run's personas in panel order, from the best source at hand."""
    asked = list(manifest.inputs.personas)
    if {p.id for p in personas} >= set(asked):
        return [(p.id, p.name, p.title) for p in order_personas(personas) if p.id in asked]
    known = {e.persona: (e.name, e.title) for c in cards.values() for e in c.scorecard}
    return [(pid, *known.get(pid, (pid, ""))) for pid in asked]


def run_tool_records(
    run_dir: Path,
    manifest: RunManifest,
    results: Mapping[tuple[str, str], PairResult],
    comparisons: Sequence[ComparisonRecord] = (),
    verdicts: Mapping[tuple[str, str], PairVerdict] | None = None,
) -> tuple[list[ToolRecord], list[str]]:
    """(a record for every tool of the run it can build, the tool slugs it could not); with
    the run's pair `verdicts` (samples or a jury) each card shows how the draws split, as a
    comparison's card does."""
    copy = read_input_copy(run_dir, manifest.inputs)
    personas = []
    for pid in manifest.inputs.personas:
        path = copy.path("personas", pid)
        if path is not None:
            with contextlib.suppress(InputError):
                personas.append(parse_persona_file(path))
    cards = {  # cards this run's comparisons already built (for runs without a copy)
        c.slug: c for r in comparisons if r.provenance.run_id == manifest.run_id for c in r.tools
    }
    panel = _panel(manifest, personas, cards)
    drawn = drawn_of(manifest, verdicts)
    out: list[ToolRecord] = []
    missing: list[str] = []
    for slug, entry in manifest.inputs.tools.items():
        path = copy.path("tools", slug)
        if path is not None:
            try:
                spec, digest, _ = parse_tool_file(path)
            except InputError:
                path = None
        if path is not None:
            tool = LoadedTool(spec=spec, slug=slug, path=entry.path, digest=digest)
            card = build_card(tool, panel, results, spec.community_votes, verdicts, drawn)
        elif slug in cards:
            card = cards[slug]
        else:
            missing.append(slug)
            continue
        out.append(build_tool_record(card, manifest, results))
    return out, missing


__all__ = [
    "PageRecord",
    "ToolRecord",
    "build_tool_record",
    "page_tools",
    "read_page_record",
    "run_tool_records",
    "tool_records_from",
]
