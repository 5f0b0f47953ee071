"""Comparison records: "A vs B" merged from a run's verdicts, the data every page renders.

A record is plain data (versioned, frozen, JSON Schema in schemas/comparison-record.schema.json)
built from the tool files, the personas and the run's PairResults. Nothing is dropped: a
persona that failed, declined or was never asked is listed with its status.

With samples or a jury, a persona's entry is its pair's verdict over every draw
(panel.aggregate): the quote is the draw its rules pick, `sampling` says how the draws split
(and which model and sample wrote the quote), and each card carries its ship % interval and how
many personas are stable. Those fields are left out of a record with one draw per pair, so such
records (and their pages and digests) are byte for byte what they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from panel.aggregate import PairVerdict, Sampling, aggregate_pairs, tool_stability
from panel.errors import InputError
from panel.inputs.personas import Persona
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.tools import LoadedTool
from panel.inputs.yamlsafe import YamlInputError, load_yaml
from panel.runformat import PairResult, RunManifest
from panel.store.atomicio import write_bytes_atomic

RECORD_FORMAT = 1
VOTES_MAX_BYTES = 1_000_000
# Slugs come from panel.inputs.tools already path-safe; this is the second lock on the door.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,239}$")

VoteStatus = Literal["ship", "not_ship", "failed", "declined", "missing"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Sparse(_Frozen):
    """Fields named in `_OPTIONAL` are written only when set (not None, not their default)."""

    _OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _sparse(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self._OPTIONAL:
                default = type(self).model_fields[name].get_default(call_default_factory=True)
                if name in data and getattr(self, name) == default:
                    del data[name]
        return data


class CardStability(_Frozen):
    """A tool's ship % as a rerun could see it: the bootstrap interval, stable personas."""

    interval: tuple[int, int] | None  # ship % low, high (95%); None when nothing was sampled
    stable: int  # personas whose verdict is stable
    measured: int  # personas sampled at least twice
    samples: int  # draws per persona and model
    jury: list[str] = Field(default_factory=list)  # the models, when a jury voted
    unanimous: int = 0  # a jury: personas whose models all gave the same verdict ...
    voted: int = 0  # ... of the personas with a verdict


class PersonaVote(_Frozen):
    """One persona's vote on one tool, as the ship-split visual shows it."""

    persona: str
    name: str
    status: VoteStatus


class ScorecardEntry(_Sparse):
    """One persona's scorecard quote on one tool (headline/quote are None without a verdict)."""

    _OPTIONAL: ClassVar[tuple[str, ...]] = ("sampling",)

    persona: str
    name: str
    title: str
    status: VoteStatus
    ship: bool | None = None
    confidence: float | None = None
    headline: str | None = None
    quote: str | None = None
    error_class: str | None = None
    sampling: Sampling | None = None  # with samples or a jury: how the draws split


class Link(_Frozen):
    label: str
    url: str  # as the tool file says; renderers drop any scheme outside the allow-list


class ToolCard(_Sparse):
    """One side of the comparison."""

    _OPTIONAL: ClassVar[tuple[str, ...]] = ("stability",)

    slug: str
    category: str
    name: str
    tagline: str
    description: str
    pricing: str
    links: list[Link] = Field(default_factory=list)
    ship_votes: int
    verdicts: int  # personas that gave a verdict (ship or not): the denominator
    panel_ship_pct: int | None  # None when no persona gave a verdict ("—")
    split: list[PersonaVote]
    failed: list[str] = Field(default_factory=list)  # persona ids
    declined: list[str] = Field(default_factory=list)  # persona ids (refused)
    missing: list[str] = Field(default_factory=list)  # persona ids with no result at all
    community_votes: int | None  # None renders as "—"
    scorecard: list[ScorecardEntry]
    stability: CardStability | None = None  # with samples or a jury


class Provenance(_Frozen):
    run_id: str
    model: str
    provider: str
    date: str  # the run's last update, ISO 8601
    synthetic: bool
    personas: dict[str, str]  # persona id -> file digest
    templates: dict[str, str]  # template name -> digest
    tools: dict[str, str]  # tool slug -> file digest
    verdict_schema: str


class ComparisonRecord(_Frozen):
    """ "A vs B": two tool cards and where their verdicts came from."""

    format: Literal[1] = 1
    slug: str  # "<slug-a>--vs--<slug-b>", the file stem of every page of this record
    title: str
    tools: list[ToolCard] = Field(min_length=2, max_length=2)
    provenance: Provenance


def is_safe_name(name: str) -> bool:
    """True for a plain file name: letters, digits, '.', '_', '-', no '..', not hidden."""
    return bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def safe_child(folder: Path, name: str) -> Path:
    """folder/name, refusing names that could leave folder (traversal, absolute, symlinks)."""
    if not is_safe_name(name):
        raise InputError(f"unsafe file name {name!r}: expected letters, digits, '.', '_', '-'")
    base = folder.resolve()
    path = base / name
    if path.is_symlink():
        raise InputError(f"refusing to write through a symlink: {path}")
    if path.resolve().parent != base:
        raise InputError(f"{name!r} resolves outside {base}")
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temp file and rename, so readers never see half a file."""
    write_bytes_atomic(path, text.encode("utf-8"))


def order_personas(personas: Iterable[Persona]) -> list[Persona]:
    """Display order: the personas' `order`, then id for ties."""
    return sorted(personas, key=lambda p: (p.order, p.id))


def ship_pct(ship_votes: int, verdicts: int) -> int | None:
    """Panel ship %: ship votes over personas that gave a verdict; None when none did."""
    if verdicts == 0:
        return None
    return round(100 * ship_votes / verdicts)


def _vote_status(result: PairResult | None) -> VoteStatus:
    if result is None:
        return "missing"
    if result.status == "refused":
        return "declined"
    if result.status == "failed" or result.ship is None:
        return "failed"
    return "ship" if result.ship else "not_ship"


def tool_votes(
    slug: str, persona_ids: Sequence[str], results: Mapping[tuple[str, str], PairResult]
) -> tuple[int, int, dict[str, VoteStatus]]:
    """(ship votes, verdicts, status per persona) for one tool."""
    statuses = {pid: _vote_status(results.get((slug, pid))) for pid in persona_ids}
    ships = sum(1 for s in statuses.values() if s == "ship")
    verdicts = sum(1 for s in statuses.values() if s in ("ship", "not_ship"))
    return ships, verdicts, statuses


def _panel_personas(
    personas: Sequence[Persona], results: Mapping[tuple[str, str], PairResult], slugs: list[str]
) -> list[tuple[str, str, str]]:
    """(id, name, title) in display order; personas only the results know come last by id."""
    ordered = [(p.id, p.name, p.title) for p in order_personas(personas)]
    known = {pid for pid, _, _ in ordered}
    extra = sorted({pid for (slug, pid) in results if slug in slugs and pid not in known})
    return ordered + [(pid, pid, "") for pid in extra]


def build_card(
    tool: LoadedTool,
    panel: list[tuple[str, str, str]],
    results: Mapping[tuple[str, str], PairResult],
    community_votes: int | None,
    verdicts: Mapping[tuple[str, str], PairVerdict] | None = None,
    drawn: CardStability | None = None,
) -> ToolCard:
    """One tool's card; with `verdicts` and `drawn` (samples or a jury: the run's K and jury),
    each entry says how its draws split and the card carries its ship % interval."""
    ids = [pid for pid, _, _ in panel]
    ships, verdicts_n, statuses = tool_votes(tool.slug, ids, results)
    scorecard = []
    ours = [v for pid in ids if verdicts and (v := verdicts.get((tool.slug, pid)))]
    for pid, name, title in panel:
        result = results.get((tool.slug, pid))
        pair = verdicts.get((tool.slug, pid)) if verdicts and drawn else None
        has_verdict = statuses[pid] in ("ship", "not_ship") and result is not None
        scorecard.append(
            ScorecardEntry(
                persona=pid,
                name=name,
                title=title,
                status=statuses[pid],
                ship=result.ship if has_verdict and result else None,
                confidence=result.confidence if has_verdict and result else None,
                headline=result.headline if has_verdict and result else None,
                quote=result.quote if has_verdict and result else None,
                error_class=result.error_class if result and not has_verdict else None,
                sampling=pair.sampling() if pair is not None and pair.votes else None,
            )
        )
    stability = None
    if drawn is not None:
        st = tool_stability(tool.slug, ours)
        voted = [v for v in ours if v.ship is not None]
        stability = drawn.model_copy(
            update={
                "interval": st.interval,
                "stable": st.stable,
                "measured": st.measured,
                "unanimous": sum(1 for v in voted if v.jury and v.agreement == v.of),
                "voted": len(voted),
            }
        )
    spec = tool.spec
    return ToolCard(
        slug=tool.slug,
        category=spec.category,
        name=spec.name,
        tagline=spec.tagline,
        description=spec.description,
        pricing=spec.pricing,
        links=[Link(label=link.label, url=link.url) for link in spec.links],
        ship_votes=ships,
        verdicts=verdicts_n,
        panel_ship_pct=ship_pct(ships, verdicts_n),
        split=[PersonaVote(persona=pid, name=name, status=statuses[pid]) for pid, name, _ in panel],
        failed=[pid for pid in ids if statuses[pid] == "failed"],
        declined=[pid for pid in ids if statuses[pid] == "declined"],
        missing=[pid for pid in ids if statuses[pid] == "missing"],
        community_votes=community_votes,
        scorecard=scorecard,
        stability=stability,
    )


def community_for(tool: LoadedTool, votes: Mapping[str, int] | None) -> int | None:
    """The tool file's community_votes, else the votes file by name (or slug), else None."""
    if tool.spec.community_votes is not None:
        return tool.spec.community_votes
    if not votes:
        return None
    for key in (tool.spec.name, tool.slug):
        if key in votes:
            return votes[key]
    lowered = {k.casefold(): v for k, v in votes.items()}
    return lowered.get(tool.spec.name.casefold())


def load_votes(path: Path) -> dict[str, int]:
    """A votes file (YAML or JSON): a mapping of tool name -> community votes."""
    try:  # a regular file only: a FIFO or /dev/zero would hang the command
        raw = read_input_file(path, VOTES_MAX_BYTES, [Path.cwd()])
    except UnsafeFileError as exc:
        raise InputError(f"{path}: votes file not read: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read votes file: {exc.strerror}") from None
    try:
        data: Any = load_yaml(raw, max_bytes=VOTES_MAX_BYTES).data  # JSON is YAML
    except YamlInputError as exc:
        raise InputError(f"{path}: not a YAML/JSON votes file: {exc.message}") from None
    # The safe loader keeps every scalar a string: a count is a string of digits.
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.isascii() and v.isdigit()
        for k, v in data.items()
    ):
        raise InputError(f"{path}: expected a mapping of tool name -> non-negative integer votes")
    return {k: int(v) for k, v in data.items()}


def record_slug(a: str, b: str) -> str:
    return f"{a}--vs--{b}"


def drawn_of(
    manifest: RunManifest, verdicts: Mapping[tuple[str, str], PairVerdict] | None
) -> CardStability | None:
    """What `build_card` needs to show how draws split: set for a run with samples or a jury
    whose pair verdicts are at hand, else None (one draw per pair: the card as it always was)."""
    if verdicts is None or not (manifest.samples > 1 or manifest.jury):
        return None
    return CardStability(
        interval=None, stable=0, measured=0, samples=manifest.samples, jury=manifest.jury
    )


def build_record(
    tool_a: LoadedTool,
    tool_b: LoadedTool,
    personas: Sequence[Persona],
    manifest: RunManifest,
    results: Mapping[tuple[str, str], PairResult],
    votes: Mapping[str, int] | None = None,
    verdicts: Mapping[tuple[str, str], PairVerdict] | None = None,
) -> ComparisonRecord:
    """Merge two tools' verdicts from one run into a record (pure: no I/O).

    `results` are the results each pair shows (RunStore.results); `verdicts` (RunStore.verdicts)
    add how each pair's draws split, for a run with samples or a jury.
    """
    slugs = [tool_a.slug, tool_b.slug]
    panel = _panel_personas(personas, results, slugs)
    drawn = drawn_of(manifest, verdicts)
    cards = [
        build_card(t, panel, results, community_for(t, votes), verdicts, drawn)
        for t in (tool_a, tool_b)
    ]
    used = {(s, pid) for s in slugs for pid, _, _ in panel}
    synthetic = manifest.synthetic or any(r.synthetic for k, r in results.items() if k in used)
    inputs = manifest.inputs
    persona_digests = {p.id: p.digest for p in personas if p.digest}
    for pid, entry in inputs.personas.items():
        persona_digests.setdefault(pid, entry.digest)
    tool_digests = {t.slug: t.digest for t in (tool_a, tool_b)}
    return ComparisonRecord(
        slug=record_slug(tool_a.slug, tool_b.slug),
        title=f"{tool_a.spec.name} vs {tool_b.spec.name}",
        tools=cards,
        provenance=Provenance(
            run_id=manifest.run_id,
            model=manifest.model,
            provider=manifest.provider,
            date=manifest.updated_at,
            synthetic=synthetic,
            personas=dict(sorted(persona_digests.items())),
            templates=dict(sorted(inputs.templates.items())),
            tools=tool_digests,
            verdict_schema=inputs.verdict_schema,
        ),
    )


def write_record(record: ComparisonRecord, records_dir: Path) -> Path:
    """Write <records_dir>/<slug-a>--vs--<slug-b>.json atomically; return the path."""
    records_dir.mkdir(parents=True, exist_ok=True)
    path = safe_child(records_dir, f"{record.slug}.json")
    write_atomic(path, record_json(record))
    return path


def record_json(record: ComparisonRecord) -> str:
    return record.model_dump_json(indent=2) + "\n"


def read_record(path: Path) -> ComparisonRecord:
    try:
        return ComparisonRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise InputError(f"{path}: not a comparison record: {exc}") from None


def read_records(records_dir: Path) -> list[ComparisonRecord]:
    """Every record in a run's records folder, sorted by slug (symlinks ignored)."""
    if not records_dir.is_dir():
        return []
    paths = sorted(p for p in records_dir.glob("*.json") if p.is_file() and not p.is_symlink())
    return [read_record(p) for p in paths]


class RunView(Protocol):
    """What compare needs from a run: panel.store.runs.RunStore satisfies it."""

    def manifest(self) -> RunManifest: ...

    def results(self) -> dict[tuple[str, str], PairResult]: ...

    def records_dir(self) -> Path: ...


def run_verdicts(run: RunView) -> dict[tuple[str, str], PairVerdict]:
    """Each pair's verdict over its draws: `run.verdicts()` when the run has them (RunStore
    does), else one draw per pair from `run.results()`."""
    verdicts = getattr(run, "verdicts", None)
    if callable(verdicts):
        found: dict[tuple[str, str], PairVerdict] = verdicts()
        return found
    return aggregate_pairs(run.results().values())


RunMissing = Callable[[list[LoadedTool]], Awaitable[RunView]]


def missing_tools(
    tools: Sequence[LoadedTool],
    personas: Sequence[Persona],
    manifest: RunManifest | None,
    results: Mapping[tuple[str, str], PairResult],
) -> list[LoadedTool]:
    """Tools that need the panel: not in the run, changed since, or a persona never answered."""
    out = []
    for tool in tools:
        entry = manifest.inputs.tools.get(tool.slug) if manifest else None
        stale = entry is None or entry.digest != tool.digest
        if stale or any((tool.slug, p.id) not in results for p in personas):
            out.append(tool)
    return out


async def compare(
    tool_a: LoadedTool,
    tool_b: LoadedTool,
    personas: Sequence[Persona],
    base: RunView | None,
    run_missing: RunMissing,
    votes: Mapping[str, int] | None = None,
) -> tuple[ComparisonRecord, RunView]:
    """Build "A vs B" from `base`, running the panel (via run_missing) for what it lacks.

    Returns the record and the run it belongs to (the one run_missing returned, if called).
    """
    if tool_a.slug == tool_b.slug:
        raise InputError(f"cannot compare {tool_a.spec.name!r} with itself")
    manifest = base.manifest() if base else None
    verdicts = run_verdicts(base) if base else {}
    results = {pair: v.shown for pair, v in verdicts.items()}
    todo = missing_tools([tool_a, tool_b], personas, manifest, results)
    run = base
    if todo or base is None:
        run = await run_missing(todo or [tool_a, tool_b])
        rerun = {t.slug for t in todo}  # stale verdicts of a rerun tool must not linger
        verdicts = {k: v for k, v in verdicts.items() if k[0] not in rerun}
        verdicts.update(run_verdicts(run))
        results = {pair: v.shown for pair, v in verdicts.items()}
        manifest = run.manifest()
    assert run is not None and manifest is not None  # one of the branches above set them
    record = build_record(tool_a, tool_b, personas, manifest, results, votes, verdicts)
    return record, run


def record_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a comparison record."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"panel comparison record format {RECORD_FORMAT}: runs/<run-id>/records/*.json and "
            "the JSON page of each comparison. "
            "Generated by `python -m panel.pages.records`; do not edit."
        ),
        **ComparisonRecord.model_json_schema(mode="validation"),
    }


def schema_text() -> str:
    return json.dumps(record_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # python -m panel.pages.records > schemas/comparison-record.schema.json
    print(schema_text(), end="")
