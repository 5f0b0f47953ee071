"""`panel batch MANIFEST`: regenerate many tools' verdicts and their comparison records.

    manifest (YAML) ─> tools (globs) + personas ─> engine (result cache, scheduler, run store)
      ─> [--via batch-api: panel.batch.via_api] ─> summary (reused, why the rest ran, cost)
      ─> comparison records in runs/<run-id>/records/

Everything in the manifest is relative to the manifest's folder, which is also the workspace
(its `personas/` and `prompts/` override the built-ins). CLI options override the manifest.
Results are streamed from disk, never all held: a 10k-pair batch runs in bounded memory.
"""

from __future__ import annotations

import functools
import glob
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from panel.aggregate import aggregate_pairs, shown_results
from panel.errors import InputError, PanelError
from panel.inputs.personas import Persona, load_personas, select_personas
from panel.inputs.prompts import load_prompts
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.tools import LoadedTool, load_tools
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.inputs.yamlsafe import MAX_YAML_BYTES, YamlInputError, load_yaml
from panel.lintformat import LintCounts
from panel.modeltable import model_info
from panel.pages.records import build_record, write_record
from panel.run import costs
from panel.run.engine import RunOptions, run_panel
from panel.run.events import Event, EventSink, RunOutcome, RunStarted
from panel.run.report import VerdictReport, verdict_report
from panel.runformat import CachePlan, Cost, DrawId, PairResult, Ttl
from panel.store.resultcache import KeyIndex, KeyInputs, why_requested
from panel.store.runs import RunStore
from panel.tokens import count_tokens

Via = Literal["stream", "batch-api"]
EST_OUTPUT_TOKENS = 900  # a typical verdict; the preflight is an estimate, the report is measured


class BatchManifest(BaseModel):
    """The manifest file (YAML). Unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tools: list[str] = Field(min_length=1)  # globs relative to the manifest
    comparisons: list[tuple[str, str]] = Field(default_factory=list)  # tool names or slugs
    personas: list[str] | None = None  # ids; None = all
    model: str | None = None
    concurrency: int = Field(default=8, ge=1, le=512)
    budget_usd: float | None = Field(default=None, ge=0)
    via: Via = "stream"
    runs_dir: str = "runs"
    max_tokens: int = Field(default=2048, ge=256)
    ttl: Ttl = "5m"
    thinking: bool = False  # let models that think by default do so
    samples: int = Field(default=1, ge=1, le=50)  # draws per tool × persona (--samples)
    jury: list[str] | None = None  # every persona on each of these models (instead of model:)

    @field_validator("personas", "jury", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()] or None
        return value

    @model_validator(mode="after")
    def _one_of_model_and_jury(self) -> BatchManifest:
        if self.model and self.jury:
            raise ValueError("give model: or jury:, not both (a jury names its models)")
        return self


@dataclass(frozen=True)
class LoadedManifest:
    path: Path
    manifest: BatchManifest

    @property
    def base(self) -> Path:
        return self.path.parent


def load_manifest(path: Path) -> LoadedManifest:
    """Read and validate a batch manifest; errors name the file, the key and the line."""
    try:
        raw = read_input_file(path, MAX_YAML_BYTES, roots=[Path.cwd()])
    except UnsafeFileError as e:
        raise InputError(f"{path}: manifest not read: {e}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the manifest ({e.strerror})") from None
    try:
        doc = load_yaml(raw)
    except YamlInputError as e:
        where = f"{path}:{e.line}" if e.line else str(path)
        raise InputError(f"{where}: {e.message}") from None
    if not isinstance(doc.data, dict):
        raise InputError(f"{path}: a batch manifest is a mapping (tools:, comparisons:, …)")
    known = set(BatchManifest.model_fields)
    for key in doc.data:
        if key not in known:
            line = doc.key_marks.get(str(key), (None, None))[0]
            raise InputError(
                f"{path}{f':{line}' if line else ''}: unknown key {key!r} "
                f"(known: {', '.join(sorted(known))})"
            )
    try:
        manifest = BatchManifest.model_validate(doc.data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(root)"
        line = doc.key_marks.get(str(first["loc"][0]), (None, None))[0] if first["loc"] else None
        raise InputError(f"{path}{f':{line}' if line else ''}: {loc}: {first['msg']}") from None
    return LoadedManifest(path=path.resolve(), manifest=manifest)


@dataclass(frozen=True)
class BatchSettings:
    """How to run a manifest: its values with the CLI's overrides applied."""

    model: str | None
    personas: list[str] | None
    concurrency: int
    budget_usd: float | None
    via: Via
    runs_dir: Path
    max_tokens: int
    ttl: Ttl
    samples: int = 1
    jury: tuple[str, ...] = ()
    resume: str | None = None
    use_result_cache: bool = True
    cache_dir: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)  # emulator, retry, timeouts

    @classmethod
    def of(cls, loaded: LoadedManifest, **overrides: Any) -> BatchSettings:
        m = loaded.manifest
        runs_dir = Path(m.runs_dir)
        values: dict[str, Any] = {
            "model": m.model,
            "personas": m.personas,
            "concurrency": m.concurrency,
            "budget_usd": m.budget_usd,
            "via": m.via,
            "runs_dir": runs_dir if runs_dir.is_absolute() else loaded.base / runs_dir,
            "max_tokens": m.max_tokens,
            "ttl": m.ttl,
            "samples": m.samples,
            "jury": tuple(m.jury or ()),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def resolve_tools(loaded: LoadedManifest) -> tuple[list[LoadedTool], list[str]]:
    """The manifest's tools (globs, sorted, deduplicated) and one problem line per bad file."""
    paths: list[Path] = []
    for pattern in loaded.manifest.tools:
        hits = sorted(glob.glob(str(loaded.base / pattern), recursive=True))
        if not hits:
            raise InputError(f"{loaded.path}: tools pattern {pattern!r} matches no file")
        paths += [Path(h) for h in hits if Path(h).is_file()]
    result = load_tools(paths)
    problems = [f"skipped {e}" for e in result.errors] + [f"warning {w}" for w in result.warnings]
    if not result.tools:
        raise InputError(f"{loaded.path}: no tool file loaded; nothing to run")
    return result.tools, problems


def resolve_comparisons(
    pairs: Sequence[tuple[str, str]], tools: Sequence[LoadedTool], where: Path
) -> list[tuple[LoadedTool, LoadedTool]]:
    """Comparison names (slug or tool name, any case) -> tools; an unknown name is an error."""
    by_name: dict[str, LoadedTool] = {}
    for t in tools:
        by_name.setdefault(t.spec.name.strip().casefold(), t)
    for t in tools:
        by_name[t.slug.casefold()] = t
    out = []
    for a, b in pairs:
        found = []
        for name in (a, b):
            tool = by_name.get(name.strip().casefold())
            if tool is None:
                raise InputError(
                    f"{where}: comparison names {name!r}, which is not one of the batch's tools"
                )
            found.append(tool)
        if found[0].slug == found[1].slug:
            raise InputError(f"{where}: cannot compare {a!r} with itself")
        out.append((found[0], found[1]))
    return out


# -- preflight ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    requests: int
    input_tokens: int
    output_tokens: int
    cost: Cost | None  # None: the model has no prices in the table
    pairs: int = 0  # pairs behind the requests (requests = pairs × models × samples)
    one_sample: Cost | None = None  # with --samples K > 1: the same pairs asked once each
    models: int = 1  # a jury's models

    def line(self) -> str:
        per = self.requests // (self.pairs * self.models) if self.pairs else 1
        shape = [f"{self.pairs} pairs"]
        shape += [f"{self.models} models"] if self.models > 1 else []
        shape += [f"{per} samples"] if per > 1 else []
        drawn = f" ({' × '.join(shape)})" if len(shape) > 1 else ""
        head = (
            f"preflight: {self.requests} requests{drawn}, ~{self.input_tokens:,} input"
            f" + ~{self.output_tokens:,} output tokens"
        )
        if self.cost is None:
            return head + " (no prices for this model)"
        c = self.cost
        line = (
            head
            + f"; ~${c.usd:.4f} with the cache plan (floor), ${c.no_cache_usd:.4f} without caching"
        )
        if self.one_sample is not None and self.one_sample.usd > 0:
            times = c.usd / self.one_sample.usd
            line += f"; one sample each: ~${self.one_sample.usd:.4f} (samples cost ×{times:.1f})"
        return line


def estimate(started: RunStarted, tail_tokens: int, ttl: costs.Ttl, batch: bool) -> Estimate:
    """Tokens and dollars for the draws about to be requested, assuming the cache plan holds
    (for a jury, each model's draws under its own plan and prices, summed).

    A sampled pair's tool block is a plan segment (written once, read by its other samples),
    so only unsampled draws add a tail; with samples, the same pairs asked once each are
    estimated too, so the preflight shows what K costs.
    """
    plans = started.plans or {started.model: started.plan}
    parts = [
        _estimate(
            [d for d in started.pairs if not started.plans or d.model == model],
            plan,
            model,
            tail_tokens,
            ttl,
            batch,
        )
        for model, plan in plans.items()
    ]
    prices = [p.cost for p in parts]
    singles = [p.one_sample for p in parts]
    return Estimate(
        sum(p.requests for p in parts),
        sum(p.input_tokens for p in parts),
        sum(p.output_tokens for p in parts),
        None if None in prices else _sum_costs(prices),
        len({d.pair for d in started.pairs}),
        None if None in singles else _sum_costs(singles),
        len(plans),
    )


def _sum_costs(parts: Sequence[Cost | None]) -> Cost:
    known = [c for c in parts if c is not None]
    return functools.reduce(costs.add_costs, known)


def _estimate(
    draws: Sequence[DrawId],
    plan: CachePlan | None,
    model: str,
    tail_tokens: int,
    ttl: costs.Ttl,
    batch: bool,
) -> Estimate:
    n = len(draws)
    per_pair = Counter(d.pair for d in draws)
    tails = sum(k for k in per_pair.values() if k == 1)
    prefix = sum(s.tokens * s.shared_by for s in plan.segments) if plan else 0
    info = model_info(model.partition(":")[2])
    cost = one = None
    if info:
        cost = costs.estimate_run(
            info, plan, n, tail_tokens, EST_OUTPUT_TOKENS, ttl=ttl, batch=batch, tail_requests=tails
        )
        if plan is not None and n > len(per_pair):
            pairs_per_persona = Counter(persona for _, persona in per_pair)
            single = costs.one_sample_plan(plan, pairs_per_persona)
            one = costs.estimate_run(
                info, single, len(per_pair), tail_tokens, EST_OUTPUT_TOKENS, ttl=ttl, batch=batch
            )
    return Estimate(
        n, prefix + tails * tail_tokens, n * EST_OUTPUT_TOKENS, cost, len(per_pair), one
    )


def _tail_tokens(tools: Sequence[LoadedTool], base: Path) -> int:
    prompts = load_prompts(prompt_dirs(base))
    sample = tools[:200]  # the tool block varies per tool; an average of a sample is enough
    return sum(count_tokens(prompts.render_tool(t)) for t in sample) // max(1, len(sample))


# -- the batch ------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    run_id: str
    run_dir: Path
    model: str
    via: Via
    status: str
    pairs: int
    reused: int
    requested: int
    ok: int
    failed: int
    refused: int
    pending: list[DrawId]
    cost: Cost
    why: dict[str, int]
    records: list[Path]
    estimate: Estimate | None
    cache_hit_rate: float | None
    notes: list[str]
    problems: list[str]
    batches: list[str] = field(default_factory=list)
    lint: LintCounts | None = None  # the run's house-rule findings (runs/<id>/lint.json)
    samples: int = 1
    verdicts: VerdictReport | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "model": self.model,
            "via": self.via,
            "status": self.status,
            "pairs": self.pairs,
            "reused": self.reused,
            "requested": self.requested,
            "ok": self.ok,
            "failed": self.failed,
            "refused": self.refused,
            "pending": len(self.pending),
            "pending_pairs": [
                {"tool": d.tool_slug, "persona": d.persona, "model": d.model, "sample": d.sample}
                for d in self.pending
            ],
            "cost": self.cost.model_dump(),
            "estimate": None
            if self.estimate is None
            else {
                "requests": self.estimate.requests,
                "input_tokens": self.estimate.input_tokens,
                "output_tokens": self.estimate.output_tokens,
                "usd": self.estimate.cost.usd if self.estimate.cost else None,
                "no_cache_usd": self.estimate.cost.no_cache_usd if self.estimate.cost else None,
                "pairs": self.estimate.pairs,
                "one_sample_usd": self.estimate.one_sample.usd
                if self.estimate.one_sample
                else None,
            },
            "why": dict(sorted(self.why.items())),
            "records": [str(p) for p in self.records],
            "cache_hit_rate": self.cache_hit_rate,
            "batches": self.batches,
            "notes": self.notes,
            "problems": self.problems,
            "lint": None if self.lint is None else self.lint.model_dump(),
            "samples": self.samples,
            # With samples or a jury: each pair's verdict, the tools' intervals (run/report.py).
            "verdicts": self.verdicts.model_dump(mode="json") if self.verdicts else None,
        }


def _openai_model(model: str | None) -> bool:
    """Whether `PROVIDER:MODEL` names a model the table lists as OpenAI's."""
    info = model_info(model.partition(":")[2]) if model else None
    return info is not None and info.provider == "openai"


async def run_batch(
    loaded: LoadedManifest,
    settings: BatchSettings,
    on_event: EventSink | None = None,
    *,
    on_estimate: Callable[[Estimate], None] | None = None,
    env: dict[str, str] | None = None,
) -> BatchSummary:
    """Run a manifest: verdicts for every (tool, persona), then the comparison records."""
    tools, problems = resolve_tools(loaded)
    comparisons = resolve_comparisons(loaded.manifest.comparisons, tools, loaded.path)
    base = loaded.base
    personas = select_personas(load_personas(persona_dirs(base)), settings.personas)
    batch_api = settings.via == "batch-api"
    if batch_api and settings.samples > 1:
        raise InputError(
            f"{loaded.path}: --samples {settings.samples} needs streaming (samples are told "
            "apart by a request header, which batch requests cannot carry): use --via stream"
        )
    if batch_api and settings.jury:
        raise InputError(f"{loaded.path}: a jury streams its requests: use --via stream")
    options = replace(
        settings.options,
        model=settings.model,
        personas=[p.id for p in personas],
        runs_dir=settings.runs_dir,
        cwd=base,
        concurrency=settings.concurrency,
        max_tokens=settings.max_tokens,
        # Batches can sit in a queue for a while: their cache blocks use the 1-hour TTL
        # (Anthropic; OpenAI has no TTL to choose, and no 1-hour write price).
        cache_ttl="1h" if batch_api and not _openai_model(settings.model) else settings.ttl,
        use_result_cache=settings.use_result_cache,
        cache_dir=settings.cache_dir,
        budget_usd=settings.budget_usd,
        resume=settings.resume,
        keep_results=False,
        samples=settings.samples,
        jury=settings.jury,
    )
    tail = _tail_tokens(tools, base)
    seen: list[Estimate] = []

    def sink(event: Event) -> None:
        if isinstance(event, RunStarted):
            est = estimate(event, tail, options.cache_ttl, batch_api)
            seen.append(est)
            if on_estimate is not None:
                on_estimate(est)
        if on_event is not None:
            on_event(event)

    outcome: RunOutcome
    if batch_api:
        from panel.batch.via_api import BatchApiLaunch

        outcome = await run_panel(tools, options, sink, env=env, launch=BatchApiLaunch())
    else:
        outcome = await run_panel(tools, options, sink, env=env)
    cache_dir = options.cache_dir or options.runs_dir / ".cache"
    return _summarise(outcome, settings, tools, personas, comparisons, cache_dir, seen, problems)


def _summarise(
    outcome: RunOutcome,
    settings: BatchSettings,
    tools: Sequence[LoadedTool],
    personas: Sequence[Persona],
    comparisons: Sequence[tuple[LoadedTool, LoadedTool]],
    cache_dir: Path,
    seen: list[Estimate],
    problems: list[str],
) -> BatchSummary:
    store = RunStore.open(settings.runs_dir, outcome.run_id, write=True)
    try:
        manifest = store.manifest()
        index = KeyIndex(cache_dir)
        counts: Counter[str] = Counter()
        why: Counter[str] = Counter()
        read = total_in = 0
        wanted = {t.slug for pair in comparisons for t in pair}
        sampled = manifest.samples > 1 or bool(manifest.jury)
        drawn: list[PairResult] = []  # the records' tools' draws (every draw when sampled)
        updates: list[tuple[str, str, KeyInputs]] = []
        for r in store.iter_results():  # streamed: never every result at once
            counts[r.status] += 1
            if r.tool_slug in wanted or sampled:
                drawn.append(r)
            if (
                r.tool_slug not in manifest.inputs.tools
                or r.persona not in manifest.inputs.personas
            ):
                continue
            # A jury's models each have their own inputs (settings) and last result.
            member = manifest.members.get(r.model)
            slot = f"{r.persona}@{r.model}" if member else r.persona
            inputs = (
                manifest.inputs.model_copy(update={"settings": member.settings})
                if member
                else manifest.inputs
            )
            now = KeyInputs.of(
                inputs, r.tool_slug, r.persona, r.model if member else manifest.model, r.status
            )
            if r.reused:
                counts["reused"] += 1
            else:
                read += r.usage.cache_read_tokens
                total_in += (
                    r.usage.input_tokens + r.usage.cache_read_tokens + r.usage.cache_write_tokens
                )
                reason = why_requested(
                    index.get(r.tool_slug, slot), now, index.has_tool(r.tool_slug)
                )
                # The pair's inputs are as before: this draw is a sample it never had.
                why["new sample" if r.sample and reason == "not in cache" else reason] += 1
            updates.append((r.tool_slug, slot, now))
        for slug, persona, now in updates:
            index.set(slug, persona, now)
        index.save()
        verdicts = aggregate_pairs(drawn, manifest.jury)
        for_records = shown_results(verdicts)
        report = verdict_report(manifest, drawn) if sampled else None
        records = [
            write_record(
                build_record(a, b, personas, manifest, for_records, verdicts=verdicts),
                store.records_dir(),
            )
            for a, b in comparisons
        ]
    finally:
        store.release()
    notes = [*manifest.notes, *index.warnings]
    batches = _batch_ids(outcome.run_dir)
    return BatchSummary(
        run_id=outcome.run_id,
        run_dir=outcome.run_dir,
        model=manifest.model,
        via=settings.via,
        status=manifest.status,
        pairs=manifest.pairs_total,
        reused=counts["reused"],
        requested=sum(counts[s] for s in ("ok", "failed", "refused")) - counts["reused"],
        ok=counts["ok"],
        failed=counts["failed"],
        refused=counts["refused"],
        pending=list(outcome.pending_draws),
        cost=manifest.cost,
        why=dict(why),
        records=records,
        estimate=seen[-1] if seen else None,
        cache_hit_rate=round(read / total_in, 4) if total_in else None,
        notes=notes,
        problems=problems,
        batches=batches,
        lint=outcome.lint.counts if outcome.lint else None,
        samples=manifest.samples,
        verdicts=report,
    )


def _batch_ids(run_dir: Path) -> list[str]:
    try:
        from panel.batch.via_api import recorded_batch_ids

        return recorded_batch_ids(run_dir)
    except (PanelError, OSError, ValueError):
        return []


__all__ = [
    "BatchManifest",
    "BatchSettings",
    "BatchSummary",
    "Estimate",
    "LoadedManifest",
    "estimate",
    "load_manifest",
    "resolve_comparisons",
    "resolve_tools",
    "run_batch",
]
