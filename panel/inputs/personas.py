"""Personas: personas/*.md, YAML front matter plus a body (the brief and the voice)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from panel.digests import digest
from panel.errors import ConfigError, PersonaError
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.textsafety import unshowable_characters
from panel.inputs.yamlsafe import YamlInputError, decode_utf8, load_yaml


class RubricQuestion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    question: str


class Persona(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    name: str
    title: str
    order: int
    lens: str
    rubric: list[RubricQuestion]
    ship_bar: str  # what earns a ship from this persona
    body: str  # the brief and the voice, markdown
    path: str = ""
    digest: str = ""  # "sha256:…" of the file bytes

    @property
    def rubric_ids(self) -> list[str]:
        return [q.id for q in self.rubric]


# --- loading and linting ---------------------------------------------------------------------

MAX_PERSONA_BYTES = 64 * 1024
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_QID = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_LOADER_FIELDS = {"body", "path", "digest"}  # filled in by the loader, never by the file
_FRONT_FIELDS = [f for f in Persona.model_fields if f not in _LOADER_FIELDS]
_MIN_BODY_WORDS = 40


class LintIssue(BaseModel):
    """One problem in a persona file; ``field`` and ``line`` when known."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str
    message: str
    field: str | None = None
    line: int | None = None
    col: int | None = None
    persona_id: str | None = None
    severity: Literal["error", "warning"] = "error"  # warnings don't stop a run; lint fails on both

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "")
        where += f":{self.col}" if self.line and self.col else ""
        return f"{where}: {self.message}"


def persona_files(dirs: Sequence[Path]) -> list[Path]:
    """``*.md`` files of the folders; an earlier folder's file shadows a same-named later one."""
    seen: dict[str, Path] = {}
    for d in dirs:
        if d.is_dir():
            for p in sorted(d.glob("*.md")):
                if p.name.lower() != "readme.md":
                    seen.setdefault(p.name, p)
    return list(seen.values())


def parse_persona_file(path: Path) -> Persona:
    """One persona file (front matter + body); raises PersonaError naming the field."""
    persona, issues = _parse(path)
    if persona is None or issues:
        raise _as_error(issues[0])
    return persona


def _as_error(issue: LintIssue) -> PersonaError:
    where = (
        ""
        if issue.line is None
        else f"line {issue.line}" + (f", col {issue.col}: " if issue.col else ": ")
    )
    return PersonaError(where + issue.message, issue.path, issue.field)


def _parse(path: Path) -> tuple[Persona | None, list[LintIssue]]:
    def issue(message: str, field: str | None = None, line: int | None = None) -> LintIssue:
        return LintIssue(path=str(path), message=message, field=field, line=line)

    try:
        data = read_input_file(path, MAX_PERSONA_BYTES, roots=[Path.cwd()])
    except UnsafeFileError as exc:
        return None, [issue(f"not read: {exc}")]
    except OSError as exc:
        return None, [issue(f"cannot read file: {exc.strerror or exc}")]
    if len(data) > MAX_PERSONA_BYTES:
        return None, [issue(f"file is {len(data):,} bytes, over the {MAX_PERSONA_BYTES:,} cap")]
    try:
        text = decode_utf8(data).replace("\r\n", "\n")
    except YamlInputError as exc:
        return None, [issue(exc.message, line=exc.line)]
    match = re.match(r"^---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|$)", text, re.DOTALL)
    if match is None:
        return None, [issue("missing YAML front matter: the file must start with a '---' block")]
    try:
        doc = load_yaml(match.group(1) or "", max_bytes=MAX_PERSONA_BYTES)
    except YamlInputError as exc:
        # Front matter starts on line 2 of the file.
        line = exc.line + 1 if exc.line else None
        return None, [LintIssue(path=str(path), message=exc.message, line=line, col=exc.col)]
    if not isinstance(doc.data, dict):
        return None, [issue("front matter must be a mapping of fields (id, name, …)")]
    front: dict[str, Any] = doc.data

    def line_of(key: str) -> int | None:
        mark = doc.key_marks.get(key)
        return mark[0] + 1 if mark else None

    issues: list[LintIssue] = []
    for key in front:
        if key not in _FRONT_FIELDS:
            close = difflib.get_close_matches(str(key), _FRONT_FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            issues.append(issue(f"unknown field {key!r}{hint}", str(key), line_of(str(key))))
    issues += [issue(f"missing required field {k!r}", k) for k in _FRONT_FIELDS if k not in front]
    if issues:
        return None, issues
    body = text[match.end() :].strip()
    try:
        persona = Persona.model_validate(
            {
                **front,
                "body": body,
                "path": str(path),
                "digest": digest(data),
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            top = str(err["loc"][0]) if err["loc"] else ""
            issues.append(issue(f"field {key!r}: {err['msg']}", key, line_of(top)))
        return None, issues
    issues += _check(persona, issue, line_of)
    return persona, issues


def _check(
    persona: Persona,
    issue: Callable[..., LintIssue],
    line_of: Callable[[str], int | None],
) -> list[LintIssue]:
    """The rules pydantic cannot express: ids, a non-empty rubric, a real body."""
    found: list[LintIssue] = []
    if not _ID.match(persona.id):
        found.append(issue("id must be lowercase letters, digits, '-' or '_'", "id", line_of("id")))
    for key in ("name", "title", "lens", "ship_bar"):
        if not str(getattr(persona, key)).strip():
            found.append(issue(f"field {key!r} is empty", key, line_of(key)))
    if not persona.rubric:
        found.append(
            issue("rubric is empty: add at least one question", "rubric", line_of("rubric"))
        )
    seen: set[str] = set()
    for q in persona.rubric:
        if not _QID.match(q.id):
            found.append(issue(f"rubric question id {q.id!r} must be [a-z0-9_]", "rubric"))
        if q.id in seen:
            found.append(issue(f"duplicate rubric question id {q.id!r}", "rubric"))
        if not q.question.strip():
            found.append(issue(f"rubric question {q.id!r} is empty", "rubric"))
        seen.add(q.id)
    texts = {key: str(getattr(persona, key)) for key in ("name", "title", "lens", "ship_bar")}
    texts |= {"body": persona.body} | {f"rubric.{q.id}": q.question for q in persona.rubric}
    for key, text in texts.items():
        if bad := unshowable_characters(text):
            # Terminal escapes and bidi overrides would reach every terminal and page.
            top = key.split(".")[0]
            found.append(
                issue(
                    f"field {key!r} holds control characters ({', '.join(bad)})", top, line_of(top)
                )
            )
    words = len(persona.body.split())
    if words < _MIN_BODY_WORDS:
        found.append(
            issue(
                f"body is missing or too short ({words} words): write the brief and voice", "body"
            )
        )
    return found


def _scan(dirs: Sequence[Path]) -> tuple[list[Persona], list[LintIssue]]:
    personas: list[Persona] = []
    issues: list[LintIssue] = []
    for path in persona_files(dirs):
        persona, found = _parse(path)
        issues += found
        if persona is not None and not found:
            personas.append(persona)
    by_id: dict[str, Persona] = {}
    for p in personas:
        if p.id in by_id and Path(by_id[p.id].path).parent != Path(p.path).parent:
            continue  # an earlier (workspace) folder overrides a built-in with the same id
        if p.id in by_id:
            issues.append(
                LintIssue(
                    path=p.path,
                    message=f"duplicate persona id {p.id!r} (also in {by_id[p.id].path})",
                    field="id",
                    persona_id=p.id,
                )
            )
            continue
        by_id[p.id] = p
    by_order: dict[int, Persona] = {}
    for p in by_id.values():
        if p.order in by_order:
            issues.append(
                LintIssue(
                    path=p.path,
                    message=f"order {p.order} clashes with persona {by_order[p.order].id!r}",
                    field="order",
                    persona_id=p.id,
                    severity="warning",
                )
            )
        by_order.setdefault(p.order, p)
    return sorted(by_id.values(), key=lambda p: (p.order, p.id)), issues


def load_personas(dirs: Sequence[Path]) -> list[Persona]:
    """Every persona of the folders, in display order; raises PersonaError on the first problem.

    Folders are in priority order: a file in an earlier folder replaces a built-in of the
    same file name, and a file with a new id adds a persona.
    """
    personas, issues = _scan(dirs)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise _as_error(errors[0])
    if not personas:
        searched = ", ".join(str(d) for d in dirs) or "(no folders)"
        raise PersonaError("no persona files (*.md) found", searched)
    return personas


def lint_personas(dirs: Sequence[Path]) -> list[LintIssue]:
    """Every problem in the persona files of the folders, or [] when they are clean."""
    return _scan(dirs)[1]


def select_personas(personas: Sequence[Persona], ids: Sequence[str] | None) -> list[Persona]:
    """The personas named by ``ids`` (all when None or empty), kept in display order."""
    if not ids:
        return list(personas)
    known = {p.id for p in personas}
    unknown = [i for i in ids if i not in known]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ConfigError(f"unknown persona {names}; available: {', '.join(sorted(known))}")
    wanted = set(ids)
    return [p for p in personas if p.id in wanted]
