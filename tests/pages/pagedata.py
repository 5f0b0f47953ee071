"""Page-test data: a four-persona panel, two tools, plausible (synthetic) verdicts, run writers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panel.inputs.personas import Persona, RubricQuestion
from panel.inputs.tools import LoadedTool, ToolSpec
from panel.runformat import Cost, InputDigest, Inputs, PairResult, RunManifest, Usage

PERSONAS = [
    ("builder", "The Builder", "Staff engineer, ships agents for a living", 1),
    ("skeptic", "The Skeptic", "Has watched three hype cycles end", 2),
    ("futurist", "The Futurist", "Thinks in five-year bets", 3),
    ("business", "The Operator", "Owns a P&L and a procurement inbox", 4),
]

# Synthetic quotes written for these tests (labelled synthetic, like the emulator's).
QUOTES: dict[tuple[str, str], tuple[bool, str, str]] = {
    ("ledgerline", "builder"): (
        True,
        "A cache you can measure is a cache you can trust",
        "The primitive is a content-addressed prompt store with explicit breakpoints; the bet "
        "is that teams will restructure prompts once the savings show up on the invoice.",
    ),
    ("ledgerline", "skeptic"): (
        True,
        "Late to the category, but the streaming story is real",
        "Every large provider has shipped some form of context reuse, so novelty is not the "
        "pitch. It breaks when prompts are assembled per user, yet the streaming deltas hold up.",
    ),
    ("ledgerline", "futurist"): (
        True,
        "Context becomes the unit of cost, and this prices it",
        "The thesis is that long-lived agents with stable context dominate; if that holds, "
        "curation of cached context becomes a moat and this becomes plumbing everyone assumes.",
    ),
    ("ledgerline", "business"): (
        True,
        "Infrastructure budget, no new line item, fast payback",
        "The buyer already pays for inference, so adoption needs no procurement; discounted "
        "cache reads show a saving in the first billing cycle, which is what keeps teams.",
    ),
    ("quorum", "builder"): (
        True,
        "One call replaces a week of fan-out plumbing",
        "Dispatching a prompt to several models and merging the answers is tedious glue; "
        "having the router own the parallelism and the judge step is a genuine time saver.",
    ),
    ("quorum", "skeptic"): (
        False,
        "A judge is only as good as its worst day",
        "Fusion assumes the judge beats every member of the pool, and you pay several times "
        "per token for the privilege while waiting on the slowest model. Pick one and tune it.",
    ),
    ("quorum", "futurist"): (
        True,
        "Ensembles are where inference is heading",
        "Choosing a single model will look as dated as choosing a single server; the routing "
        "and merging layer is where the interesting control points will sit in two years.",
    ),
    ("quorum", "business"): (
        True,
        "A premium feature for the workflows that can bear it",
        "For high-stakes reviews the extra tokens are cheap insurance, and the router earns a "
        "margin on every fused call; the risk is that buyers treat it as a novelty.",
    ),
}


def make_persona(pid: str, name: str, title: str, order: int) -> Persona:
    return Persona(
        id=pid,
        name=name,
        title=title,
        order=order,
        lens=f"{pid} lens",
        rubric=[RubricQuestion(id="q1", question="What is the primitive?")],
        ship_bar="Ships when it earns its place.",
        body=f"You are {name}.",
        path=f"personas/{pid}.md",
        digest=f"sha256:{pid:0<64}"[:71],
    )


def make_tool(slug: str, name: str, **fields: Any) -> LoadedTool:
    spec_fields: dict[str, Any] = {
        "name": name,
        "tagline": f"{name}: the short pitch",
        "description": f"{name} is a developer tool.",
        "pricing": "Paid",
    }
    spec_fields.update(fields)
    return LoadedTool(
        spec=ToolSpec(**spec_fields),
        slug=slug,
        path=f"tools/{slug}.yaml",
        digest="sha256:" + "ab" * 32,
    )


def make_result(
    slug: str,
    persona: str,
    *,
    status: str = "ok",
    ship: bool | None = None,
    headline: str | None = None,
    quote: str | None = None,
    confidence: float | None = 0.8,
    rubric: Mapping[str, str] | None = None,
    name: str | None = None,
    error_class: str | None = None,
) -> PairResult:
    ok = status == "ok"
    return PairResult(
        tool=name or slug,
        tool_slug=slug,
        persona=persona,
        status=status,  # type: ignore[arg-type]
        ship=ship if ok else None,
        confidence=confidence if ok else None,
        headline=headline if ok else None,
        quote=quote if ok else None,
        rubric=dict(rubric or {"q1": "An answer."}) if ok else {},
        error_class=error_class if not ok else None,
        pair_key=f"k-{slug}-{persona}",
        synthetic=True,
        model="emulator:claude-sonnet-5",
        finished_at="2026-03-02T10:00:00Z",
    )


def make_manifest(
    run_id: str = "20260302-100000-abcd",
    *,
    tools: Mapping[str, str] | None = None,
    personas: Mapping[str, str] | None = None,
    templates: Mapping[str, str] | None = None,
    model: str = "emulator:claude-sonnet-5",
    settings_digest: str = "sha256:settings1",
    schema_digest: str = "sha256:schema1",
) -> RunManifest:
    tools = tools or {"ledgerline": "sha256:t1", "quorum": "sha256:t2"}
    personas = personas or {pid: f"sha256:{pid}" for pid, *_ in PERSONAS}
    return RunManifest(
        run_id=run_id,
        created_at="2026-03-02T10:00:00Z",
        updated_at="2026-03-02T10:05:00Z",
        status="complete",
        model=model,
        provider=model.split(":")[0],
        synthetic=True,
        settings={},
        inputs=Inputs(
            tools={s: InputDigest(path=f"tools/{s}.yaml", digest=d) for s, d in tools.items()},
            personas={
                p: InputDigest(path=f"personas/{p}.md", digest=d) for p, d in personas.items()
            },
            templates=dict(templates or {"house.j2": "sha256:house1"}),
            verdict_schema=schema_digest,
            settings=settings_digest,
        ),
        pairs_total=len(tools) * len(personas),
        usage=Usage(),
        cost=Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0),
    )


def standard_results() -> dict[tuple[str, str], PairResult]:
    return {
        (slug, pid): make_result(slug, pid, ship=ship, headline=head, quote=quote)
        for (slug, pid), (ship, head, quote) in QUOTES.items()
    }


def write_run(
    runs_dir: Any,
    manifest: RunManifest,
    results: Mapping[tuple[str, str], PairResult],
    records: list[Any] | None = None,
) -> str:
    """Write a run folder through the real run store; returns its id."""
    from panel.pages.records import write_record
    from panel.store.runs import RunStore

    store = RunStore.create(runs_dir, manifest, run_id=manifest.run_id)
    try:
        for result in results.values():
            store.append_result(result)
        for record in records or []:
            write_record(record, store.records_dir())
    finally:
        store.release()
    return manifest.run_id


def flipped_results() -> dict[tuple[str, str], PairResult]:
    """The standard results with the skeptic now shipping Quorum and the futurist not."""
    out = standard_results()
    out[("quorum", "skeptic")] = make_result(
        "quorum",
        "skeptic",
        ship=True,
        headline="The judge earns its keep after all",
        quote=QUOTES[("quorum", "skeptic")][2],
    )
    out[("ledgerline", "futurist")] = make_result(
        "ledgerline",
        "futurist",
        ship=False,
        headline=QUOTES[("ledgerline", "futurist")][1],
        quote=QUOTES[("ledgerline", "futurist")][2],
    )
    return out
