"""Juries, specified with in-process provider doubles: each model keeps its own waves and its
own cost report, a persona's verdict is the models' majority, and a resume stays the same jury."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from double_helpers import run_options, verdict_for

from panel.errors import RunStoreError
from panel.inputs.tools import LoadedTool
from panel.providers.base import VerdictRequest
from panel.providers.function import FunctionProvider, Handler, Reply
from panel.run.engine import run_panel
from panel.run.report import verdict_report
from panel.store.runs import RunStore

PERSONAS = ("builder", "skeptic")


def jury(*handlers: Handler) -> list[FunctionProvider]:
    models = ("claude-sonnet-5", "gpt-5.6-luna", "claude-haiku-4-5")
    return [FunctionProvider(h, model=m) for h, m in zip(handlers, models, strict=False)]


async def test_each_model_keeps_its_own_waves_and_the_others_do_not_wait(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    sonnet_started: list[VerdictRequest] = []
    luna_done_while_sonnet_leads: list[int] = []
    luna_finished = 0

    async def sonnet(request: VerdictRequest, call: int) -> Reply:
        sonnet_started.append(request)
        if len(sonnet_started) == 1:  # sonnet's house leader: alone among sonnet's requests
            for _ in range(50):
                await asyncio.sleep(0.001)
            assert len(sonnet_started) == 1
            luna_done_while_sonnet_leads.append(luna_finished)
        return Reply(verdict_for(request))

    async def luna(request: VerdictRequest, call: int) -> Reply:
        nonlocal luna_finished
        luna_finished += 1
        return Reply(verdict_for(request))

    doubles = jury(sonnet, luna)
    opts = run_options(tmp_path, PERSONAS, concurrency=8)
    outcome = await run_panel(tools, opts, providers=doubles)
    assert outcome.manifest.status == "complete"
    assert outcome.manifest.jury == ["function:claude-sonnet-5", "function:gpt-5.6-luna"]
    assert outcome.manifest.model == "jury:function:claude-sonnet-5,function:gpt-5.6-luna"
    assert luna_done_while_sonnet_leads[0] > 0  # luna's waves went on meanwhile
    assert len(outcome.results) == 2 * len(tools) * len(PERSONAS)
    assert {r.model for r in outcome.results} == set(outcome.manifest.jury)
    for model, member in outcome.manifest.members.items():
        assert member.cache_plan is not None and member.cache_stats is not None
        assert member.cache_stats.requests == len(tools) * len(PERSONAS), model
        assert member.cost.usd > 0 and member.cost.floor_usd > 0
    total = sum(m.cost.usd for m in outcome.manifest.members.values())
    assert outcome.manifest.cost.usd == pytest.approx(total)
    # Each model is priced at its own rates: the same tokens cost less on luna.
    sonnet_cost, luna_cost = (m.cost.usd for m in outcome.manifest.members.values())
    assert luna_cost < sonnet_cost


async def test_the_verdict_is_the_majority_of_models_and_the_report_names_the_dissenter(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    def says(ship: bool) -> Callable[[VerdictRequest, int], Reply]:
        return lambda request, call: Reply(verdict_for(request, ship=ship))

    def skeptical(request: VerdictRequest, call: int) -> Reply:
        return Reply(verdict_for(request, ship=request.persona_id != "skeptic"))

    doubles = jury(says(True), skeptical, says(True))
    opts = run_options(tmp_path, PERSONAS)
    outcome = await run_panel(tools, opts, providers=doubles)
    verdicts = RunStore.open(tmp_path / "runs", outcome.run_id).verdicts()
    for (_, persona), v in verdicts.items():
        assert v.ship is True  # 3-0 for builders, 2-1 for skeptics
        assert (v.agreement, v.of) == ((3, 3) if persona == "builder" else (2, 3))
        assert v.shown.model != "function:gpt-5.6-luna" or persona == "builder"
        assert [m.ship for m in v.models] == [True, persona == "builder", True]
    report = verdict_report(outcome.manifest, outcome.results)
    agreement = report.agreement
    assert agreement is not None and agreement.dissents_most == "function:gpt-5.6-luna"
    assert agreement.pairs == len(tools) * 2 and agreement.unanimous == len(tools)
    # Builders 3-0, skeptics 2-1: P̄ = (1 + 1/3) / 2 = 2/3; p_ship = 5/6 → P_e = 26/36;
    # κ = (2/3 − 26/36) / (1 − 26/36) = −0.2: the models agree less than chance would.
    assert agreement.percent_agreement == pytest.approx(2 / 3)
    assert agreement.fleiss_kappa == pytest.approx(-0.2)


async def test_a_resume_is_refused_with_another_jury(
    tmp_path: Path, tools: list[LoadedTool]
) -> None:
    def ok(request: VerdictRequest, call: int) -> Reply:
        return Reply(verdict_for(request))

    outcome = await run_panel(tools, run_options(tmp_path, PERSONAS), providers=jury(ok, ok))
    other = jury(ok, ok, ok)
    with pytest.raises(RunStoreError, match=r"the jury .* but the run's is"):
        await run_panel(
            tools, run_options(tmp_path, PERSONAS, resume=outcome.run_id), providers=other
        )
    again = await run_panel(
        tools, run_options(tmp_path, PERSONAS, resume=outcome.run_id), providers=jury(ok, ok)
    )
    assert again.manifest.status == "complete" and again.requested == 0
