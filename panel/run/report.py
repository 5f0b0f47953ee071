"""What a run's draws add up to: each pair's verdict, each tool's ship % with its interval, the
personas' flip rates and, for a jury, how much the models agree (panel.aggregate's rules).

One report for every reader of a run: `panel run` prints it and puts it in `--json`, `panel
batch --json` carries it, and a library user gets it from `verdict_report(outcome)`.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from panel.aggregate import (
    JuryAgreement,
    PairVerdict,
    Sampling,
    aggregate_pairs,
    jury_agreement,
    persona_flip_rates,
    tool_stability,
)
from panel.runformat import PairResult, RunManifest


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PairReport(_Frozen):
    """One (tool, persona) pair: its verdict over its draws."""

    tool: str
    tool_slug: str
    persona: str
    status: str
    ship: bool | None
    sampling: Sampling  # agreement, flip rate, stability, who wrote the quote, each model's


class ToolReport(_Frozen):
    tool: str
    tool_slug: str
    ship_votes: int
    verdicts: int
    ship_pct: int | None
    interval: tuple[int, int] | None  # bootstrap 95% interval of the ship %; None unsampled
    stable: int
    measured: int


class VerdictReport(_Frozen):
    samples: int
    jury: list[str]
    pairs: list[PairReport]
    tools: list[ToolReport]
    flip_rates: dict[str, float]  # persona -> minority votes / votes, over its pairs
    agreement: JuryAgreement | None  # a jury's agreement between models; None for one model


def pair_report(v: PairVerdict) -> PairReport:
    return PairReport(
        tool=v.shown.tool,
        tool_slug=v.tool_slug,
        persona=v.persona,
        status=v.status,
        ship=v.ship,
        sampling=v.sampling(),
    )


def verdict_report(manifest: RunManifest, results: Iterable[PairResult]) -> VerdictReport:
    """The report over a run's draws (every line of results.jsonl, or a RunOutcome's)."""
    verdicts = aggregate_pairs(results, manifest.jury)
    by_tool: dict[str, list[PairVerdict]] = {}
    names: dict[str, str] = {}
    for v in verdicts.values():
        by_tool.setdefault(v.tool_slug, []).append(v)
        names[v.tool_slug] = v.shown.tool
    tools = [
        ToolReport(tool=names[slug], **tool_stability(slug, vs).model_dump())
        for slug, vs in by_tool.items()
    ]
    agreement = jury_agreement(verdicts.values(), manifest.jury) if manifest.jury else None
    return VerdictReport(
        samples=manifest.samples,
        jury=list(manifest.jury),
        pairs=[pair_report(v) for v in verdicts.values()],
        tools=tools,
        flip_rates={p: round(r, 4) for p, r in persona_flip_rates(verdicts.values()).items()},
        agreement=agreement,
    )


def interval_phrase(tool: ToolReport) -> str:
    """ "75% (50–100%) · 3 of 4 stable" — or just "75%" when nothing was sampled twice."""
    pct = "—" if tool.ship_pct is None else f"{tool.ship_pct}%"
    if tool.interval is None:
        return pct
    lo, hi = tool.interval
    return f"{pct} ({lo}–{hi}%) · {tool.stable} of {tool.measured} stable"


__all__ = [
    "PairReport",
    "ToolReport",
    "VerdictReport",
    "interval_phrase",
    "pair_report",
    "verdict_report",
]
