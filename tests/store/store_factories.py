"""Factories for the store tests (imported by name: tests/store is on sys.path)."""

from __future__ import annotations

from panel.runformat import (
    Attempt,
    Cost,
    InputDigest,
    Inputs,
    PairResult,
    RunManifest,
    Usage,
)

PERSONAS = ("builder", "skeptic", "futurist", "business")


def make_manifest(
    run_id: str = "placeholder", created_at: str = "2026-11-22T15:30:12Z"
) -> RunManifest:
    return RunManifest(
        run_id=run_id,
        created_at=created_at,
        updated_at=created_at,
        status="running",
        model="emulator:claude-sonnet-5",
        provider="emulator",
        synthetic=True,
        settings={"max_tokens": 2048},
        inputs=Inputs(
            tools={"ripgrep": InputDigest(path="tools/ripgrep.yaml", digest="sha256:aa")},
            personas={
                p: InputDigest(path=f"personas/{p}.md", digest="sha256:bb") for p in PERSONAS
            },
            templates={"house.j2": "sha256:cc"},
            verdict_schema="sha256:dd",
            settings="sha256:ee",
        ),
        pairs_total=4,
        usage=Usage(),
        cost=Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0),
    )


def make_result(tool_slug: str = "ripgrep", persona: str = "builder", **kw: object) -> PairResult:
    fields: dict[str, object] = {
        "tool": tool_slug.title(),
        "tool_slug": tool_slug,
        "persona": persona,
        "status": "ok",
        "ship": True,
        "confidence": 0.8,
        "headline": "Fast search that respects your ignore files",
        "quote": "It does one thing and does it quickly.",
        "rubric": {"q1": "yes"},
        "usage": Usage(input_tokens=200, output_tokens=400, cache_read_tokens=3000),
        "cost_usd": 0.0049,
        "attempts": 1,
        "pair_key": f"sha256:{tool_slug}-{persona}",
        "synthetic": True,
        "model": "emulator:claude-sonnet-5",
        "finished_at": "2026-11-22T15:31:00Z",
    }
    fields.update(kw)
    return PairResult.model_validate(fields)


def make_attempt(tool_slug: str = "ripgrep", persona: str = "builder", n: int = 1) -> Attempt:
    return Attempt(
        tool_slug=tool_slug,
        persona=persona,
        pair_key=f"sha256:{tool_slug}-{persona}",
        request_digest="sha256:ff",
        attempt=n,
        started_at="2026-11-22T15:30:13Z",
        ended_at="2026-11-22T15:30:20Z",
        outcome="ok",
        billed=True,
        usage=Usage(input_tokens=200, output_tokens=400),
    )
