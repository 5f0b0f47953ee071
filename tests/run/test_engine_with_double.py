"""The engine's policies, specified with the in-process provider double (no HTTP, no SDK):
cache-aware waves, the concurrency cap, retries by class, billed failures in the cost, and the
synthetic label."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncgens import started_generators, still_suspended
from double_helpers import run_options, verdict_for

from panel.errors import ErrorClass, UpstreamError
from panel.inputs.tools import LoadedTool
from panel.providers.base import VerdictRequest
from panel.providers.function import FunctionProvider, Reply
from panel.run.engine import run_panel
from panel.run.events import VerdictDelta
from panel.runformat import Usage

PERSONAS = ("builder", "skeptic")


async def test_every_pair_gets_a_verdict_and_is_labelled_synthetic(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    double = FunctionProvider(lambda request, call: Reply(verdict_for(request)))
    outcome = await run_panel(tools, run_options(tmp_path, PERSONAS), provider=double)
    assert outcome.manifest.status == "complete"
    assert sorted((r.tool_slug, r.persona, r.status) for r in outcome.results) == sorted(
        (t.slug, p, "ok") for t in tools for p in PERSONAS
    )
    assert all(r.synthetic for r in outcome.results) and outcome.manifest.synthetic
    assert outcome.manifest.model == "function:claude-sonnet-5"


async def test_the_house_leader_goes_alone_then_persona_leaders_then_followers(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    started: list[tuple[str, str]] = []

    async def handler(request: VerdictRequest, call: int) -> Reply:
        started.append((request.tool_slug, request.persona_id))
        if len(started) == 1:
            await asyncio.sleep(0.01)  # the house leader: nobody else may start meanwhile
            assert len(started) == 1
        return Reply(verdict_for(request))

    double = FunctionProvider(handler)
    opts = run_options(tmp_path, PERSONAS, concurrency=8)
    outcome = await run_panel(tools, opts, provider=double)
    assert outcome.manifest.status == "complete"
    plan = outcome.manifest.cache_plan
    assert plan is not None and all(s.cacheable for s in plan.segments), plan
    leader = started[0]
    # After the leader: the other persona's leader comes before that persona's followers.
    other = next(p for p in PERSONAS if p != leader[1])
    first_other = next(i for i, s in enumerate(started) if s[1] == other)
    assert started[first_other][0] == tools[0].slug
    assert len(started) == len(tools) * len(PERSONAS)


async def test_never_more_than_the_concurrency_in_flight(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    async def slow(request: VerdictRequest, call: int) -> Reply:
        await asyncio.sleep(0.005)
        return Reply(verdict_for(request))

    double = FunctionProvider(slow)
    opts = run_options(tmp_path, ("builder", "skeptic", "futurist", "business"), concurrency=2)
    outcome = await run_panel(tools, opts, provider=double)
    assert outcome.manifest.status == "complete"
    assert double.peak_in_flight == 2


async def test_a_retryable_failure_is_retried_and_a_final_one_is_recorded(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    def handler(request: VerdictRequest, call: int) -> Reply:
        if request.tool_slug == tools[0].slug and call == 1:
            raise UpstreamError(ErrorClass.OVERLOADED, "busy")
        if request.tool_slug == tools[1].slug:
            raise UpstreamError(ErrorClass.INVALID_REQUEST, "bad request")
        return Reply(verdict_for(request))

    double = FunctionProvider(handler)
    outcome = await run_panel(tools, run_options(tmp_path, ("skeptic",)), provider=double)
    by_tool = {r.tool_slug: r for r in outcome.results}
    assert by_tool[tools[0].slug].status == "ok" and by_tool[tools[0].slug].attempts == 2
    assert by_tool[tools[1].slug].status == "failed"
    assert by_tool[tools[1].slug].error_class == ErrorClass.INVALID_REQUEST
    assert double.calls[(tools[1].slug, "skeptic")] == 1  # not retried
    assert by_tool[tools[2].slug].status == "ok"


async def test_an_invalid_verdict_is_reasked_once_and_both_attempts_are_paid(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)

    def handler(request: VerdictRequest, call: int) -> Reply:
        data = verdict_for(request)
        if call == 1:
            data["quote"] = "too short"
        else:
            assert request.reask is not None and "quote" in request.reask.message
        return Reply(data, usage=usage)

    double = FunctionProvider(handler)
    outcome = await run_panel(tools[:1], run_options(tmp_path, ("skeptic",)), provider=double)
    (result,) = outcome.results
    assert result.status == "ok" and result.attempts == 2
    prices = double.info.prices if double.info else None
    assert prices is not None
    paid_twice = 2 * (1000 * prices.input + 100 * prices.output) / 1e6  # $0.006 for Sonnet 5
    assert abs(outcome.manifest.cost.usd - paid_twice) < 1e-9


async def test_the_provider_stream_is_closed_by_the_engine_when_an_attempt_stops_early(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    """However an attempt ends (here: the event sink raises at the first partial verdict), the
    engine closes the provider's stream generator itself, at once: never left to the loop's
    finalizer, which runs it whenever the garbage collector drops it."""

    class SinkFailed(Exception):
        pass

    def sink(event: object) -> None:
        if isinstance(event, VerdictDelta):
            raise SinkFailed

    provider = FunctionProvider(lambda request, call: Reply(verdict_for(request)))
    with started_generators() as started:
        with pytest.raises(SinkFailed):
            await run_panel(tools, run_options(tmp_path, ["skeptic"]), sink, provider=provider)
        suspended = await still_suspended(started)
    assert provider.calls, "no verdict was asked: the test proves nothing"
    assert "FunctionProvider.stream_verdict" not in started.dropped + suspended
