"""Samples, specified with the in-process provider double: the sample wave under the persona
waves, the request each sample gets, majority and agreement, and re-asking failed draws only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from double_helpers import run_options, verdict_for

from panel.errors import ErrorClass, UpstreamError
from panel.inputs.tools import LoadedTool
from panel.providers.base import VerdictRequest
from panel.providers.function import FunctionProvider, Reply
from panel.run.engine import run_panel
from panel.runformat import SAMPLE_HEADER
from panel.store.runs import RunStore

PERSONAS = ("builder", "skeptic")


async def test_a_pair_s_samples_wait_for_its_first_sample_to_start(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    seen: list[VerdictRequest] = []
    slow_first: set[tuple[str, str]] = set()

    async def handler(request: VerdictRequest, call: int) -> Reply:
        seen.append(request)
        if request.sample == 0:  # the pair's lead: none of its samples may start meanwhile
            slow_first.add((request.tool_slug, request.persona_id))
            await asyncio.sleep(0.01)
        return Reply(verdict_for(request, ship=request.sample != 2))

    double = FunctionProvider(handler)
    opts = run_options(tmp_path, PERSONAS, concurrency=8, samples=3)
    outcome = await run_panel(tools, opts, provider=double)
    assert outcome.manifest.status == "complete" and outcome.manifest.samples == 3
    assert len(outcome.results) == len(tools) * len(PERSONAS) * 3
    order = [(r.tool_slug, r.persona_id, r.sample) for r in seen]
    for tool, persona in slow_first:
        lead = order.index((tool, persona, 0))
        assert all(order.index((tool, persona, k)) > lead for k in (1, 2))
    for r in seen:  # every sample of a pair carries the tool breakpoint; later ones the header
        assert "tool" in r.breakpoints
        assert r.extra_headers == ({SAMPLE_HEADER: str(r.sample)} if r.sample else {})
    plan = outcome.manifest.cache_plan
    assert plan is not None
    tool_blocks = [s for s in plan.segments if s.name.startswith("tool-blocks:")]
    assert sorted(s.name for s in tool_blocks) == ["tool-blocks:builder×3", "tool-blocks:skeptic×3"]
    assert all(s.shared_by == 3 and s.cacheable for s in tool_blocks)
    verdicts = RunStore.open(tmp_path / "runs", outcome.run_id).verdicts()
    assert len(verdicts) == len(tools) * len(PERSONAS)
    for v in verdicts.values():  # samples 0 and 1 ship, 2 does not
        assert (v.ship, v.agreement, v.of, v.stable) == (True, 2, 3, False)
        assert v.shown.sample == 0  # equal confidence: the earlier sample is quoted


async def test_retry_failed_re_asks_only_the_failed_draws(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    broken = (tools[0].slug, "skeptic", 1)

    def first(request: VerdictRequest, call: int) -> Reply:
        if (request.tool_slug, request.persona_id, request.sample) == broken:
            raise UpstreamError(ErrorClass.INVALID_REQUEST, "bad request", billed=False)
        return Reply(verdict_for(request))

    opts = run_options(tmp_path, PERSONAS, samples=2)
    outcome = await run_panel(tools, opts, provider=FunctionProvider(first))
    failed = [(r.tool_slug, r.persona, r.sample) for r in outcome.results if r.status == "failed"]
    assert failed == [broken]
    again = FunctionProvider(lambda request, call: Reply(verdict_for(request)))
    resumed = run_options(tmp_path, PERSONAS, samples=2, resume=outcome.run_id, retry_failed=True)
    final = await run_panel(tools, resumed, provider=again)
    assert list(again.draw_calls) == [broken] and final.manifest.status == "complete"
    lines = list(RunStore.open(tmp_path / "runs", outcome.run_id).iter_results())
    assert len(lines) == len({r.draw for r in lines}) == len(tools) * len(PERSONAS) * 2
