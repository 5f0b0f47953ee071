"""Tool files: the YAML descriptions of the software tools a panel reviews.

Loading (safe YAML, size cap, errors with path:line:col and field) lives in load_tools().
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from panel.digests import digest
from panel.errors import ToolFileError
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.textsafety import strip_invisible
from panel.inputs.yamlsafe import MAX_YAML_BYTES, YamlInputError, load_yaml
from panel.tokens import count_tokens

Pricing = Literal["Free", "Freemium", "Paid", "Open source", "Enterprise"]


class ToolLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    label: str
    url: str


class ToolSpec(BaseModel):
    """One tool as its file describes it. Every text field is untrusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    category: str = "Developer Tools"
    tagline: str
    description: str
    pricing: Pricing
    links: list[ToolLink] = Field(default_factory=list)
    community_votes: int | None = None


class LoadedTool(BaseModel):
    """A tool with where it came from: the slug is unique within a run and path-safe."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spec: ToolSpec
    slug: str
    path: str
    digest: str  # "sha256:…" of the file bytes
    warnings: list[str] = Field(default_factory=list)  # e.g. invisible characters stripped


# --- loading ---------------------------------------------------------------------------------

DEFAULT_MAX_DESCRIPTION_TOKENS = 20_000
SLUG_MAX = 64
_TEXT_FIELDS = ("name", "category", "tagline", "description")
_PRICING_ALIASES = {p.lower().replace(" ", ""): p for p in get_args(Pricing)}
_LINK_SCHEMES = ("https://", "http://")
# Windows device names: a file called con.json cannot be created there.
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}


@dataclass
class ToolLoadResult:
    """Every tool that loaded, and one error per file that did not (one never stops another)."""

    tools: list[LoadedTool] = field(default_factory=list)
    errors: list[ToolFileError] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [f"{t.path}: {w}" for t in self.tools for w in t.warnings]

    @property
    def ok(self) -> bool:
        return not self.errors


def slugify(name: str) -> str:
    """A path-safe, lowercase ``[a-z0-9-]`` slug of at most 64 characters, never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    slug = slug[:SLUG_MAX].rstrip("-") or "tool"
    if slug in _RESERVED:
        slug += "-tool"
    return slug


def assign_slugs(names: Sequence[str]) -> list[str]:
    """Unique slugs for names in the given order: twins get ``-2``, ``-3``, …"""
    taken: set[str] = set()
    slugs: list[str] = []
    for name in names:
        base = slugify(name)
        slug, n = base, 1
        while slug in taken:
            n += 1
            suffix = f"-{n}"
            slug = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
        taken.add(slug)
        slugs.append(slug)
    return slugs


def expand_tool_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder stands for its ``*.yaml`` and ``*.yml`` files, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
        else:
            out.append(p)
    return out


def load_tools(
    paths: Sequence[Path],
    *,
    max_description_tokens: int = DEFAULT_MAX_DESCRIPTION_TOKENS,
    max_bytes: int = MAX_YAML_BYTES,
) -> ToolLoadResult:
    """Load tool files; slugs follow sorted-path order, so they never depend on argv order."""
    files = list(dict.fromkeys(expand_tool_paths(paths)))  # the same file twice loads once
    parsed: list[tuple[Path, ToolSpec, str, list[str]]] = []
    result = ToolLoadResult()
    for path in files:
        try:
            spec, digest, warnings = parse_tool_file(
                path, max_description_tokens=max_description_tokens, max_bytes=max_bytes
            )
        except ToolFileError as exc:
            result.errors.append(exc)
            continue
        parsed.append((path, spec, digest, warnings))
    by_path = sorted(range(len(parsed)), key=lambda i: str(parsed[i][0]))
    slugs = assign_slugs([parsed[i][1].name for i in by_path])
    slug_of = {i: slugs[k] for k, i in enumerate(by_path)}
    twins: dict[str, list[str]] = {}
    for i in by_path:
        twins.setdefault(parsed[i][1].name.strip().casefold(), []).append(str(parsed[i][0]))
    for i, (path, spec, digest, warnings) in enumerate(parsed):
        others = [p for p in twins[spec.name.strip().casefold()] if p != str(path)]
        if others:
            warnings.append(
                f"duplicate tool name {spec.name!r} (also in {', '.join(others)}); "
                f"kept all, this one is {slug_of[i]!r}"
            )
        result.tools.append(
            LoadedTool(spec=spec, slug=slug_of[i], path=str(path), digest=digest, warnings=warnings)
        )
    return result


def parse_tool_file(
    path: Path,
    *,
    max_description_tokens: int = DEFAULT_MAX_DESCRIPTION_TOKENS,
    max_bytes: int = MAX_YAML_BYTES,
) -> tuple[ToolSpec, str, list[str]]:
    """One tool file: its spec, the digest of its bytes and its warnings; raises ToolFileError."""
    try:
        # Regular files only, never blocking (FIFOs, devices, symlinks out: refused), and
        # never more than the cap needs to prove.
        data = read_input_file(path, max_bytes, roots=[Path.cwd()])
    except UnsafeFileError as exc:
        raise ToolFileError(f"not read: {exc}", path) from None
    except OSError as exc:
        raise ToolFileError(f"cannot read file: {exc.strerror or exc}", path) from None
    try:
        doc = load_yaml(data, max_bytes=max_bytes)
    except YamlInputError as exc:
        raise ToolFileError(exc.message, path, exc.line, exc.col) from None
    if not isinstance(doc.data, dict):
        kind = "empty" if doc.data is None else type(doc.data).__name__
        raise ToolFileError(f"expected a mapping of fields (name, tagline, …), got {kind}", path)
    raw: dict[str, Any] = dict(doc.data)
    warnings: list[str] = []
    for key in _TEXT_FIELDS:
        if isinstance(raw.get(key), str):
            clean, notes = strip_invisible(raw[key])
            raw[key] = clean.strip() if key != "description" else clean.strip("\n ")
            warnings.extend(f"{key}: {note}" for note in notes)

    def fail(message: str, key: str) -> ToolFileError:
        line, col = doc.key_marks.get(key.split(".")[0], (None, None))
        return ToolFileError(message, path, line, col, field=key)

    if isinstance(raw.get("pricing"), str):
        raw["pricing"] = _PRICING_ALIASES.get(
            re.sub(r"[\s_-]+", "", raw["pricing"].lower()), raw["pricing"]
        )
    try:
        spec = ToolSpec.model_validate(raw)
    except ValidationError as exc:
        key, message = _describe(exc)
        raise fail(message, key) from None
    if not spec.description.strip():
        raise fail("field 'description' is empty", "description")
    if not spec.name:
        warnings.append("name is empty; its slug falls back to 'tool'")
    for i, link in enumerate(spec.links):
        if not link.url.lower().startswith(_LINK_SCHEMES):
            raise fail(f"field 'links.{i}.url' must be an http(s) URL", "links")
    estimate = count_tokens(spec.description)
    if estimate > max_description_tokens:
        raise fail(
            f"field 'description' is too long: about {estimate:,} tokens "
            f"(limit {max_description_tokens:,}); shorten it",
            "description",
        )
    return spec, digest(data), warnings


def _describe(exc: ValidationError) -> tuple[str, str]:
    """The first validation error as (field, message), worded for the file's author."""
    # An unknown field usually explains a missing one (a typo), so it is reported first.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    key = ".".join(str(p) for p in err["loc"]) or "(file)"
    kind = err["type"]
    if kind == "missing":
        return key, f"missing required field {key!r}"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, list(ToolSpec.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        allowed = ", ".join(ToolSpec.model_fields)
        return key, f"unknown field {key!r}{hint}; allowed: {allowed}"
    if kind == "literal_error" and key == "pricing":
        allowed = ", ".join(get_args(Pricing))
        return key, f"field 'pricing' must be one of: {allowed} (got {err.get('input')!r})"
    return key, f"field {key!r}: {err['msg']}"
