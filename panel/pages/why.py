"""Why verdicts changed: the inputs that differ between two runs, named by file and field.

Digests in `run.json` say *that* an input changed; each run's copy of its inputs
(`panel.store.runinputs`) says *what*: the two persona files are parsed and compared field by
field (`personas/skeptic.md: ship_bar`), tool files likewise (`tools/x.yaml: description`),
templates by lines (`prompts/house.j2: 2 lines`). A run without a copy (made before copies
were kept) falls back to the digests.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from panel.errors import InputError
from panel.inputs.personas import parse_persona_file
from panel.inputs.tools import parse_tool_file
from panel.runformat import RunManifest
from panel.store.runinputs import InputCopy, Kind

InputKind = Literal["model", "persona", "template", "tool", "verdict_schema", "settings"]
SHORT = 300  # a field value up to this long is shown before → after; longer ones summarised
_PERSONA_FIELDS = ("name", "title", "order", "lens", "ship_bar", "rubric", "body")
_TOOL_FIELDS = ("name", "category", "tagline", "description", "pricing", "links", "community_votes")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldChange(_Frozen):
    """One field of an input file that differs: short values in full, long ones summarised."""

    field: str
    before: str | None = None
    after: str | None = None
    summary: str | None = None  # "2 lines changed", "question wrong_if reworded", …


class Why(_Frozen):
    """One input that differs between the runs, by file and field when the copies allow."""

    input: InputKind
    key: str  # persona id, template name, tool slug, setting name, "model"
    file: str | None = None  # personas/skeptic.md, prompts/house.j2, tools/x.yaml
    fields: list[FieldChange] = Field(default_factory=list)
    compared: bool = False  # True when both runs' copies were read and compared
    before: str | None  # the value (model, setting) or digest (files) before
    after: str | None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _field(name: str, before: Any, after: Any) -> FieldChange:
    if name == "rubric":
        qa = {q["id"]: q["question"] for q in before or []}
        qb = {q["id"]: q["question"] for q in after or []}
        bits = [f"{q} added" for q in qb if q not in qa]
        bits += [f"{q} removed" for q in qa if q not in qb]
        bits += [f"{q} reworded" for q in qa if q in qb and qa[q] != qb[q]]
        if not bits and list(qa) != list(qb):
            bits = ["questions reordered"]
        return FieldChange(field=name, summary="question " + ", ".join(bits))
    a, b = _text(before), _text(after)
    if len(a) <= SHORT and len(b) <= SHORT:
        return FieldChange(field=name, before=a, after=b)
    return FieldChange(field=name, summary=f"{len(a.split())} → {len(b.split())} words, reworded")


def _parsed(copy: InputCopy, kind: Kind, key: str) -> dict[str, Any] | None:
    path = copy.path(kind, key)
    if path is None:
        return None
    try:
        if kind == "personas":
            return parse_persona_file(path).model_dump(mode="json")
        if kind == "tools":
            return parse_tool_file(path)[0].model_dump(mode="json")
    except InputError:
        return None  # a copy this panel cannot parse: fall back to the digest
    return None


def _fields(a: dict[str, Any], b: dict[str, Any], names: tuple[str, ...]) -> list[FieldChange]:
    return [_field(n, a.get(n), b.get(n)) for n in names if a.get(n) != b.get(n)]


def _template_lines(a: bytes, b: bytes) -> FieldChange:
    old = a.decode("utf-8", "replace").splitlines()
    new = b.decode("utf-8", "replace").splitlines()
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
    return FieldChange(field="lines", summary=f"{changed} line{'s' * (changed != 1)} changed")


def _file_why(
    kind: Kind, key: str, file: str, before: str | None, after: str | None, copies: Copies
) -> Why:
    ca, cb = copies
    what: InputKind = {"tools": "tool", "personas": "persona", "prompts": "template"}[kind]  # type: ignore[assignment]
    if before is None or after is None or ca is None or cb is None:
        return Why(input=what, key=key, file=file, before=before, after=after)
    if kind == "prompts":
        ra, rb = ca.get(kind, key), cb.get(kind, key)
        if ra is None or rb is None:
            return Why(input=what, key=key, file=file, before=before, after=after)
        fields = [_template_lines(ra, rb)]
    else:
        pa, pb = _parsed(ca, kind, key), _parsed(cb, kind, key)
        if pa is None or pb is None:
            return Why(input=what, key=key, file=file, before=before, after=after)
        names = _PERSONA_FIELDS if kind == "personas" else _TOOL_FIELDS
        fields = _fields(pa, pb, names) or [FieldChange(field="formatting", summary="same fields")]
    return Why(
        input=what, key=key, file=file, fields=fields, compared=True, before=before, after=after
    )


Copies = tuple[InputCopy | None, InputCopy | None]


def explain(a: RunManifest, b: RunManifest, copies: Copies = (None, None)) -> list[Why]:
    """Every input that differs from run a to run b, by file and field when copies exist."""
    out: list[Why] = []
    if a.model != b.model:
        out.append(Why(input="model", key="model", before=a.model, after=b.model))
    ia, ib = a.inputs, b.inputs
    for pid in sorted(set(ia.personas) | set(ib.personas)):
        da, db = ia.personas.get(pid), ib.personas.get(pid)
        if (da and da.digest) != (db and db.digest):
            name = Path((db or da).path).name if (db or da) else f"{pid}.md"  # type: ignore[union-attr]
            out.append(
                _file_why(
                    "personas",
                    pid,
                    f"personas/{name}",
                    da.digest if da else None,
                    db.digest if db else None,
                    copies,
                )
            )
    for name in sorted(set(ia.templates) | set(ib.templates)):
        if ia.templates.get(name) != ib.templates.get(name):
            out.append(
                _file_why(
                    "prompts",
                    name,
                    f"prompts/{name}",
                    ia.templates.get(name),
                    ib.templates.get(name),
                    copies,
                )
            )
    for slug in sorted(set(ia.tools) | set(ib.tools)):
        ta, tb = ia.tools.get(slug), ib.tools.get(slug)
        if (ta and ta.digest) != (tb and tb.digest):
            file = (tb or ta).path if (tb or ta) else slug  # type: ignore[union-attr]
            out.append(
                _file_why(
                    "tools",
                    slug,
                    file,
                    ta.digest if ta else None,
                    tb.digest if tb else None,
                    copies,
                )
            )
    if ia.verdict_schema != ib.verdict_schema:
        out.append(
            Why(
                input="verdict_schema",
                key="verdict_schema",
                before=ia.verdict_schema,
                after=ib.verdict_schema,
            )
        )
    if ia.settings != ib.settings:
        out += _settings_why(a, b)
    return out


def _settings_why(a: RunManifest, b: RunManifest) -> list[Why]:
    """Name the settings that moved (e.g. emulator_seed), not just the digest."""
    sa, sb = a.settings, b.settings
    moved = sorted(
        k
        for k in set(sa) | set(sb)
        if sa.get(k) != sb.get(k) and k not in ("concurrency", "model", "provider")
    )
    if not moved:
        return [
            Why(input="settings", key="settings", before=a.inputs.settings, after=b.inputs.settings)
        ]
    return [
        Why(
            input="settings",
            key=k,
            before=None if sa.get(k) is None else str(sa.get(k)),
            after=None if sb.get(k) is None else str(sb.get(k)),
        )
        for k in moved
    ]


__all__ = ["FieldChange", "Why", "explain"]
