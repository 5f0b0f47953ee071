"""Juries: every persona on every model of `--jury A,B,C`, in one run folder.

    jury ─> one ModelRun per model (its provider, cache plan, scheduler waves, concurrency)
         ─> one run store: results.jsonl holds every model's draws (PairResult.model)
         ─> run.json: the jury, each model's cost, cache plan and cache figures (`members`)

Each model has its own prompt cache, so each keeps its own waves: the models run side by
side, each writing its shared prefixes once. A persona's verdict is the jury's majority
(panel.aggregate); the run's report says how much the models agree (percent agreement,
Fleiss' kappa) and which one dissents most (panel.run.report). `--budget` is the run's: the
models share one spend. One model failing to authenticate stops that model; the others
finish, and `--resume` runs what it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from functools import reduce

from panel.digests import json_digest, utc_timestamp
from panel.errors import ConfigError, ErrorClass
from panel.inputs.personas import Persona
from panel.inputs.prompts import PromptSet
from panel.inputs.tools import LoadedTool
from panel.providers.base import Provider
from panel.providers.select import ModelSpec, open_provider, parse_model
from panel.run import costs
from panel.run.budget import spent_so_far
from panel.run.engine import ModelRun, Prepared, RunOptions, Spend, lint_run_store
from panel.run.events import EventSink, RunOutcome, RunStarted
from panel.run.resume import check_same_run, open_run_store, run_in
from panel.runformat import (
    Cost,
    DrawId,
    Inputs,
    MemberReport,
    PairResult,
    RunManifest,
    RunStatus,
    Usage,
)
from panel.store.runs import RunStore

MAX_JURY = 9


def jury_label(models: Sequence[str]) -> str:
    """The manifest's `model` for a jury run: `jury:A,B,C` (what `panel runs` shows)."""
    return "jury:" + ",".join(models)


def jury_specs(models: Sequence[str], env: Mapping[str, str]) -> list[ModelSpec]:
    """`--jury A,B,C` → model specs: at least two, at most MAX_JURY, no model twice."""
    specs = [parse_model(m.strip(), env) for m in models if m.strip()]
    names = [str(s) for s in specs]
    if len(specs) < 2:
        raise ConfigError(
            "--jury needs two or more models, e.g. --jury emulator:claude-sonnet-5,"
            "emulator:gpt-5.6-luna"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"--jury names a model twice: {', '.join(names)}")
    if len(specs) > MAX_JURY:
        raise ConfigError(f"--jury takes at most {MAX_JURY} models")
    return specs


async def run_jury(
    tools: Sequence[LoadedTool],
    personas: Sequence[Persona],
    prompts: PromptSet,
    options: RunOptions,
    on_event: EventSink | None,
    *,
    env: dict[str, str] | None = None,
    providers: Sequence[Provider] | None = None,
) -> RunOutcome:
    """Run every persona on every tool on every model of the jury; one run, one report."""
    async with contextlib.AsyncExitStack() as stack:
        if providers is not None:  # test doubles: the caller opened them
            specs = [ModelSpec(p.name, p.model) for p in providers]
            opened = list(providers)
        else:
            specs = jury_specs(options.jury, env if env is not None else os.environ)
            opened = [
                await stack.enter_async_context(
                    open_provider(
                        spec,
                        env=env,
                        emulator=options.emulator,
                        base_url=options.base_url,
                        idle_timeout=options.idle_timeout,
                        limits=options.stream_limits,
                    )
                )
                for spec in specs
            ]
        spend = Spend()
        members = []
        for spec, provider in zip(specs, opened, strict=True):
            member = ModelRun(tools, personas, prompts, provider, spec, options, on_event)
            member.jury, member.spend = True, spend
            members.append(member)
        return await Jury(members, options, on_event).execute()


class Jury:
    def __init__(
        self, members: list[ModelRun], options: RunOptions, on_event: EventSink | None
    ) -> None:
        self.members = members
        self.options = options
        self.emit: EventSink = on_event or (lambda _event: None)
        self.models = [m.model for m in members]
        self.label = jury_label(self.models)
        first = members[0].inputs
        self.inputs = Inputs(
            tools=first.tools,
            personas=first.personas,
            templates=first.templates,
            verdict_schema=first.verdict_schema,
            # Each model's own settings digest keys its results; this one names them all.
            settings=json_digest({m.model: m.inputs.settings for m in members}),
        )
        shared: dict[str, str | int | float | bool | None] = {}
        for m in members:
            shared.update({k: v for k, v in m.settings.items() if k not in _OWN})
        self.settings = shared

    async def execute(self) -> RunOutcome:
        return await run_in(self._open_store(), self._execute)

    def _open_store(self) -> RunStore:
        o = self.options

        def check(before: RunManifest) -> None:  # the same jury and run, or refused
            check_same_run(
                before, self.label, self.inputs, self.settings, samples=o.samples, jury=self.models
            )

        def fresh() -> RunManifest:
            zero = Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0)
            return RunManifest(
                run_id="pending",
                created_at=utc_timestamp(),
                updated_at=utc_timestamp(),
                status="running",
                model=self.label,
                provider="jury",
                synthetic=any(m.provider.synthetic for m in self.members),
                settings={
                    **self.settings,
                    "concurrency": o.concurrency,
                    "result_cache": o.use_result_cache,
                    **o.labels,
                },
                inputs=self.inputs,
                pairs_total=len(self.inputs.tools) * len(self.inputs.personas),
                usage=Usage(),
                cost=zero,
                samples=o.samples,
                jury=self.models,
                members={
                    m.model: MemberReport(
                        provider=m.provider.name,
                        synthetic=m.provider.synthetic,
                        settings=m.inputs.settings,
                        usage=Usage(),
                        cost=zero,
                    )
                    for m in self.members
                },
            )

        return open_run_store(
            o.runs_dir,
            o.resume,
            check=check,
            fresh=fresh,
            sent=self.members[0].sent(),
            retry_failed=o.retry_failed,
        )

    async def _execute(self, store: RunStore) -> RunOutcome:
        if self.options.resume:  # the budget is the run's, over every model
            before = store.manifest().cost.usd
            ledger = sum(spent_so_far(store, m._usage_cost, model=m.model) for m in self.members)
            self.members[0].spent = max(before, ledger)
        preps = [m.prepare(store) for m in self.members]
        notes = [n for p in preps for n in p.notes]
        self.emit(
            RunStarted(
                store.run_id,
                store.path,
                self.label,
                any(m.provider.synthetic for m in self.members),
                [d for p in preps for d in p.todo],
                sum(p.reused for p in preps),
                None,
                list(dict.fromkeys(notes)),
                plans={m.model: p.plan for m, p in zip(self.members, preps, strict=True)},
            )
        )
        pendings = await asyncio.gather(
            *(m.launch(p) for m, p in zip(self.members, preps, strict=True))
        )
        pending = [d for ds in pendings for d in ds]
        manifest = self._finish_manifest(store, preps, pending, notes)
        first = self.members[0]
        lint = lint_run_store(store, first.tools, first.rubrics)
        order = {
            d: i
            for i, d in enumerate(
                DrawId(t, p, m, k)
                for t in self.inputs.tools
                for p in self.inputs.personas
                for m in self.models
                for k in range(self.options.samples)
            )
        }
        results: list[PairResult] = sorted(
            (r for m in self.members for r in m.results),
            key=lambda r: order.get(r.draw, len(order)),
        )
        outcome = RunOutcome(
            run_id=store.run_id,
            run_dir=store.path,
            manifest=manifest,
            results=results,
            pending=list(dict.fromkeys(d.pair for d in pending)),
            pending_draws=pending,
            reused=sum(p.reused for p in preps),
            requested=sum(m.requested for m in self.members),
            max_in_flight=max(m.limit.peak for m in self.members),
            lint=lint,
        )
        for m in self.members:
            stopped = m.stopped_error(store.run_id, outcome)
            if stopped is not None:
                raise stopped
        return outcome

    def _finish_manifest(
        self,
        store: RunStore,
        preps: list[Prepared],
        pending: list[DrawId],
        notes: list[str],
    ) -> RunManifest:
        before = store.manifest()
        resumed = bool(self.options.resume)
        members: dict[str, MemberReport] = {}
        for m, prep in zip(self.members, preps, strict=True):
            usage, cost = m.totals(prep.plan)
            old = before.members.get(m.model)
            if resumed and old is not None:
                usage, cost = old.usage + usage, costs.add_costs(old.cost, cost)
            members[m.model] = MemberReport(
                provider=m.provider.name,
                synthetic=(old.synthetic if old else False) or m.provider.synthetic,
                settings=m.inputs.settings,
                usage=usage,
                cost=cost,
                cache_plan=prep.plan or (old.cache_plan if old else None),
                cache_stats=costs.cache_stats([*m.usages, *m.batch_usages]),
            )
        status: RunStatus
        fatal = [m for m in self.members if m.fatal and m.fatal.error_class is ErrorClass.AUTH]
        if fatal:
            status = "failed"
        elif pending or sum(1 for _ in store.iter_results()) < before.draws_total:
            status = "paused"
        else:
            status = "complete"
        stops = [
            f"stopped launching {m.model}: {m.stop_reason}" for m in self.members if m.stop_reason
        ]
        reports = list(members.values())
        manifest = before.model_copy(
            update={
                "updated_at": utc_timestamp(),
                "status": status,
                "usage": reduce(lambda a, b: a + b, (r.usage for r in reports), Usage()),
                "cost": reduce(costs.add_costs, (r.cost for r in reports)),
                "cache_stats": costs.cache_stats(
                    [u for m in self.members for u in (*m.usages, *m.batch_usages)]
                ),
                "members": members,
                "notes": [*before.notes, *dict.fromkeys(notes), *stops],
                "synthetic": before.synthetic or any(m.provider.synthetic for m in self.members),
            }
        )
        store.write_manifest(manifest)
        return manifest


_OWN = ("provider", "model", "wire")  # a member's settings that name it, not the run


__all__ = ["MAX_JURY", "Jury", "jury_label", "jury_specs", "run_jury"]
