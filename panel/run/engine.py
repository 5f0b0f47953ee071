"""The engine: run a panel — every (tool, persona) pair — and record the run.

    load inputs ─> render prompts ─> cache plan ─> reuse cached results ─> schedule the rest
      ─> stream each verdict (provider) ─> validate ─> record (run store, result cache)
      ─> cost and cache report ─> manifest

Events (ReviewStarted, VerdictDelta, ReviewRetrying, ReviewFinished) go to an `on_event`
callback as they happen; `run_panel` returns the assembled RunOutcome. One pair failing never
fails the panel: it becomes a recorded result with an error class. Auth and spend-cap errors,
the budget, and a rate-limit wait too long to sleep through stop new launches; the pairs not
yet launched stay pending, and `resume` finishes them later without re-paying for anything
recorded.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from panel.digests import json_digest, utc_timestamp
from panel.errors import ConfigError, ErrorClass, UpstreamError
from panel.inputs.personas import Persona, load_personas, select_personas
from panel.inputs.prompts import PromptSet, load_prompts, render_prompt
from panel.inputs.tools import LoadedTool
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.lint.report import lint_results
from panel.lint.verdicts import Evidence, lint_result
from panel.lintformat import LintReport
from panel.modeltable import ModelInfo
from panel.providers.base import (
    ArgsDelta,
    Provider,
    Reask,
    StreamCompleted,
    StreamStarted,
    VerdictRequest,
)
from panel.providers.classify import RUN_FATAL
from panel.providers.select import EmulatorSettings, ModelSpec, open_provider, parse_model
from panel.providers.streaming import StreamLimits
from panel.run import costs
from panel.run.attempts import PairState, pair_result, validation_message
from panel.run.budget import spent_so_far
from panel.run.events import (
    Event,
    EventSink,
    ReviewFinished,
    ReviewRetrying,
    ReviewStarted,
    RunOutcome,
    RunStarted,
    VerdictDelta,
)
from panel.run.inputcopy import copy_files, keep_copy, resume_personas
from panel.run.launch import LaunchStrategy
from panel.run.planning import build_cache_plan
from panel.run.resume import check_same_run, mark_stopped
from panel.run.retry import PairRetry, PauseGate, RetryLimits, RunPaused
from panel.run.scheduler import AdaptiveLimit, CacheAwareScheduler
from panel.runformat import (
    Attempt,
    CachePlan,
    Cost,
    InputDigest,
    Inputs,
    PairId,
    PairResult,
    RunManifest,
    RunStatus,
    Ttl,
    Usage,
)
from panel.store.claims import claim_pair
from panel.store.resultcache import ResultCache, digest_settings, pair_key_for
from panel.store.runinputs import INPUTS_DIR
from panel.store.runs import RunStore
from panel.tokens import canonical_json
from panel.verdict import (
    Verdict,
    VerdictProblem,
    schema_digest,
    validate_verdict,
    verdict_tool_schema,
)

_KEY_VARS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}


@dataclass(frozen=True)
class RunOptions:
    model: str | None = None  # "provider:model"; None picks by the keys that are set
    personas: Sequence[str] | None = None  # ids; None = all, in display order
    runs_dir: Path = Path("runs")
    cwd: Path | None = None  # workspace for personas/ and prompts/ overrides
    concurrency: int = 8
    max_tokens: int = 2048
    cache_ttl: Ttl = "5m"
    use_result_cache: bool = True
    cache_dir: Path | None = None  # default: <runs_dir>/.cache
    retry: RetryLimits = field(default_factory=RetryLimits)
    idle_timeout: float = 60.0
    # Every attempt's deadlines and byte cap (providers.streaming); None: defaults, idle above.
    stream_limits: StreamLimits | None = None
    budget_usd: float | None = None
    emulator: EmulatorSettings = field(default_factory=EmulatorSettings)
    base_url: str | None = None
    resume: str | None = None  # run id to finish
    retry_failed: bool = False  # with resume: re-ask the pairs whose result is "failed"
    canaries: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # free settings recorded in the manifest
    # False: RunOutcome.results stays empty and results live only on disk (bounded memory for
    # big batches; read them back with RunStore.iter_results).
    keep_results: bool = True
    thinking: bool = False  # let models think (their default); off: disabled where allowed


class RunStoppedError(ConfigError):
    """The run stopped on an auth failure; `outcome` is what it recorded (for `--json`)."""

    def __init__(self, message: str, outcome: RunOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


async def run_panel(
    tools: Sequence[LoadedTool],
    options: RunOptions,
    on_event: EventSink | None = None,
    *,
    env: dict[str, str] | None = None,
    launch: LaunchStrategy | None = None,
    provider: Provider | None = None,
) -> RunOutcome:
    """Run every persona on every tool; record the run; return what happened.

    `launch` sends the pairs (default: streamed through the cache-aware scheduler; the batch
    services are another strategy, panel.batch.via_api.BatchApiLaunch). `provider` replaces
    the one `options.model` names (a test double such as providers.function.FunctionProvider;
    the caller keeps it open and closes it).
    """
    found = load_personas(persona_dirs(options.cwd))
    if options.resume and options.personas:  # a persona the workspace lost: the run's copy
        asked = RunStore.open(options.runs_dir, options.resume)
        found = resume_personas(found, options.personas, asked.path, asked.manifest())
    personas = select_personas(found, options.personas)
    prompts = load_prompts(prompt_dirs(options.cwd))
    prompts.prepare(personas)  # a bad persona or template fails before any request
    if not tools:
        raise ConfigError("no tools to review")
    if provider is not None:
        given = ModelSpec(provider=provider.name, model=provider.model)
        run = _PanelRun(tools, personas, prompts, provider, given, options, on_event)
        run.launcher = launch
        return await run.execute()
    spec = parse_model(options.model, env if env is not None else os.environ)
    async with open_provider(
        spec,
        env=env,
        emulator=options.emulator,
        base_url=options.base_url,
        idle_timeout=options.idle_timeout,
        limits=options.stream_limits,
    ) as provider:
        run = _PanelRun(tools, personas, prompts, provider, spec, options, on_event)
        run.launcher = launch
        return await run.execute()


class _PanelRun:
    def __init__(
        self,
        tools: Sequence[LoadedTool],
        personas: Sequence[Persona],
        prompts: PromptSet,
        provider: Provider,
        spec: ModelSpec,
        options: RunOptions,
        on_event: EventSink | None,
    ) -> None:
        self.tools = {t.slug: t for t in tools}
        self.personas = {p.id: p for p in personas}
        self.rubrics = {p.id: {q.id: q.question for q in p.rubric} for p in personas}
        self.prompts = prompts
        self.provider = provider
        self.spec = spec
        self.options = options
        self.emit: EventSink = on_event or (lambda _event: None)
        self.info: ModelInfo | None = provider.info
        self.schema = verdict_tool_schema()
        self.settings = self._settings()
        self.inputs = Inputs(
            tools={t.slug: InputDigest(path=t.path, digest=t.digest) for t in tools},
            personas={p.id: InputDigest(path=p.path, digest=p.digest) for p in personas},
            templates=prompts.template_digests(),
            verdict_schema=schema_digest(),
            settings=digest_settings(self.settings),
        )
        self.gate = PauseGate()
        self.limit = AdaptiveLimit(options.concurrency)
        self.usages: list[Usage] = []  # one per billed attempt at standard prices
        self.batch_usages: list[Usage] = []  # one per billed attempt at the batch discount
        self.batch_pricing = False  # set while attempts go through a provider's batch service
        self.spent = 0.0
        self.stop_reason: str | None = None
        self.fatal: UpstreamError | None = None
        self.fatal_result: PairResult | None = None
        self.results: list[PairResult] = []
        self.requested = 0
        self.breakpoints: dict[str, frozenset[Literal["house", "persona"]]] = {}
        self.launcher: LaunchStrategy | None = None

    def _settings(self) -> dict[str, str | int | float | bool | None]:
        s: dict[str, str | int | float | bool | None] = {
            "provider": self.spec.provider,
            "model": self.spec.model,
            "max_tokens": self.options.max_tokens,
            "thinking": self.options.thinking,
            "cache_ttl": self.options.cache_ttl,
        }
        if getattr(self.provider, "wire", None) == "responses":
            s["wire"] = "responses"  # only then: the other wires' keys stay as they were
        if self.provider.synthetic:
            s["emulator_seed"] = self.options.emulator.seed
            s["emulator_behaviour"] = self.options.emulator.behaviour
        return s

    # -- the run ------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        store = self._open_store()
        try:
            return await self._execute(store)
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C or SIGTERM: never leave "running" behind; what is recorded stays.
            mark_stopped(store, "interrupted (SIGINT/SIGTERM)")
            raise
        finally:
            store.release()

    def _open_store(self) -> RunStore:
        o = self.options
        if o.resume:
            store = RunStore.open(o.runs_dir, o.resume, write=True)
            try:  # the same run, or refused with the run untouched (panel.run.resume)
                check_same_run(store.manifest(), str(self.spec), self.inputs, self.settings)
                if o.retry_failed:
                    failed = {(r.tool_slug, r.persona) for r in store.iter_results()}
                    failed -= {
                        (r.tool_slug, r.persona)
                        for r in store.iter_results()
                        if r.status != "failed"
                    }
                    store.drop_results(failed)
            except BaseException:
                store.release()
                raise
            if not (store.path / INPUTS_DIR).exists():  # a run made before copies: add it now
                keep_copy(store, copy_files(*self._sent()))
            return store
        taken = copy_files(*self._sent())  # read before the run exists: a changed file stops it
        pairs_total = len(self.tools) * len(self.personas)
        manifest = RunManifest(
            run_id="pending",
            created_at=utc_timestamp(),
            updated_at=utc_timestamp(),
            status="running",
            model=str(self.spec),
            provider=self.provider.name,
            synthetic=self.provider.synthetic,
            # Recorded but not part of the pair key: how the run was driven. A resume keeps
            # the run's choice of the result cache (a --no-cache run stays uncached).
            settings={
                **self.settings,
                "concurrency": o.concurrency,
                "result_cache": o.use_result_cache,
                **o.labels,
            },
            inputs=self.inputs,
            pairs_total=pairs_total,
            usage=Usage(),
            cost=Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0),
        )
        return keep_copy(RunStore.create(o.runs_dir, manifest), taken)

    def _sent(self) -> tuple[list[LoadedTool], list[Persona], PromptSet]:
        return list(self.tools.values()), list(self.personas.values()), self.prompts

    async def _execute(self, store: RunStore) -> RunOutcome:
        self.store = store
        if self.options.resume:  # the budget is the run's: earlier invocations' spend counts
            self.spent = spent_so_far(store, self._usage_cost)
        done: set[PairId] | dict[PairId, PairResult]
        if self.options.keep_results:
            done = store.results()
            self.results = list(done.values())
        else:  # stream the file: a 10k-pair run never holds every result
            done = {(r.tool_slug, r.persona) for r in store.iter_results()}
        all_pairs = [(t, p) for t in self.tools for p in self.personas]
        todo = [pair for pair in all_pairs if pair not in done]
        cache = self._result_cache()
        reused = 0
        notes: list[str] = [
            f"dropped a torn last line of {n}" for n, c in store.dropped.items() if c
        ]
        if cache is not None:
            remaining = []
            for pair in todo:
                hit = cache.get(self._pair_key(pair), tool_slug=pair[0], persona=pair[1])
                if hit is None:
                    remaining.append(pair)
                    continue
                result = self._linted(
                    hit.model_copy(update={"reused": True, "attempts": 0, "cost_usd": 0.0})
                )
                store.append_result(result)
                self._keep(result)
                self.emit(ReviewFinished(result))
                reused += 1
            todo = remaining
            notes += cache.warnings  # e.g. a row holding another pair's result, skipped
        plan = self._plan(todo)
        notes += plan.warnings if plan else []
        self.emit(
            RunStarted(
                store.run_id,
                store.path,
                str(self.spec),
                self.provider.synthetic,
                todo,
                reused,
                plan,
                notes,
            )
        )
        if self.launcher is None:
            pending = await self.stream(todo, plan, cache)
        else:
            pending = list(await self.launcher.launch(self, todo, plan, cache))
        if cache is not None:
            cache.close()
        manifest = self._finish_manifest(store, plan, pending, notes)
        lint = self._lint_run(store)
        order = {pair: i for i, pair in enumerate(all_pairs)}
        self.results.sort(key=lambda r: order.get((r.tool_slug, r.persona), len(order)))
        outcome = RunOutcome(
            run_id=store.run_id,
            run_dir=store.path,
            manifest=manifest,
            results=self.results,
            pending=pending,
            reused=reused,
            requested=self.requested,
            max_in_flight=self.limit.peak,
            lint=lint,
        )
        if self.fatal is not None and self.fatal.error_class is ErrorClass.AUTH:
            var = _KEY_VARS.get(self.spec.provider, "the provider's API key variable")
            # The record of this invocation names the pair that met the auth failure as failed
            # (auth); on disk it stays pending, so --resume runs it once the key is fixed.
            seen = [self.fatal_result] if self.fatal_result is not None else []
            raise RunStoppedError(
                f"{self.provider.name} rejected the API key ({self.fatal.status}): check {var}. "
                f"Run {store.run_id} stopped; finish it with --resume {store.run_id}",
                replace(outcome, results=[*self.results, *seen]),
            )
        return outcome

    def _result_cache(self) -> ResultCache | None:
        if not self.options.use_result_cache:
            return None
        return ResultCache(self.options.cache_dir or self.options.runs_dir / ".cache")

    def _pair_key(self, pair: PairId) -> str:
        return pair_key_for(
            self.inputs, pair[0], pair[1], model=self.spec.model, provider=self.spec.provider
        )

    def _plan(self, todo: Sequence[PairId]) -> CachePlan | None:
        # Breakpoints only where another request of this run will read the prefix.
        per_persona = Counter(p for _, p in todo)
        self.breakpoints = {}
        for persona, n in per_persona.items():
            marks: set[Literal["house", "persona"]] = set()
            if len(todo) > 1:
                marks.add("house")
            if n > 1:
                marks.add("persona")
            self.breakpoints[persona] = frozenset(marks)
        # One rendered request per persona stands for all of its pairs (the prefix is what the
        # plan measures): a 10k-pair run never renders every prompt up front.
        firsts: dict[str, PairId] = {}
        for pair in todo:
            firsts.setdefault(pair[1], pair)
        samples = [self.request(pair) for pair in firsts.values()]
        return build_cache_plan(
            self.provider, self.info, samples, self.options.cache_ttl, counts=per_persona
        )

    def _keep(self, result: PairResult) -> None:
        if self.options.keep_results:
            self.results.append(result)

    def _usage_cost(self, usage: Usage) -> float | None:
        if self.info is None:
            return None
        return costs.usage_cost(
            self.info, usage, ttl=self.options.cache_ttl, batch=self.batch_pricing
        )

    def request(self, pair: PairId) -> VerdictRequest:
        tool, persona = self.tools[pair[0]], self.personas[pair[1]]
        return VerdictRequest(
            breakpoints=self.breakpoints.get(persona.id, frozenset({"house", "persona"})),
            tool_slug=tool.slug,
            persona_id=persona.id,
            parts=render_prompt(persona, tool, self.prompts),
            tool_schema=self.schema,
            max_tokens=self.options.max_tokens,
            thinking=self.options.thinking,
            cache_ttl=self.options.cache_ttl,
        )

    async def stream(
        self, todo: list[PairId], plan: CachePlan | None, cache: ResultCache | None
    ) -> list[PairId]:
        cacheable = {
            s.name: s.cacheable and s.shared_by > 1 for s in (plan.segments if plan else [])
        }
        scheduler = CacheAwareScheduler(
            todo,
            gate_house=cacheable.get("tools+house", False),
            gate_personas=any(v for k, v in cacheable.items() if k.startswith("persona:")),
        )
        pending: list[PairId] = []

        async def worker() -> None:
            while True:
                if self.stop_reason is not None:
                    pending.extend(await scheduler.drop_rest())
                    return
                pair = await scheduler.next()
                if pair is None:
                    return
                if self.options.budget_usd is not None and self.spent >= self.options.budget_usd:
                    self.stop_reason = f"budget of ${self.options.budget_usd:.2f} reached"
                    pending.append(pair)
                    continue
                finished = await self._claimed_review(pair, scheduler, cache)
                if not finished:
                    pending.append(pair)
                await scheduler.started(pair)

        workers = max(1, min(self.options.concurrency, len(todo)))
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One worker's failure (a full disk) ends the run: the others are cancelled and
            # awaited here, so none raises again during shutdown (one error line, no traces).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return pending

    # -- one pair -----------------------------------------------------------------------

    async def _claimed_review(
        self, pair: PairId, scheduler: CacheAwareScheduler, cache: ResultCache | None
    ) -> bool:
        """`_review` under a claim on the pair key, so a concurrent run never pays twice."""
        if cache is None:
            return await self._review(pair, scheduler, cache)
        key = self._pair_key(pair)
        async with claim_pair(cache.directory, key):
            # Looked up again under the claim: a concurrent run may have recorded this very
            # pair since this run's first look (whether or not we had to wait for it).
            hit = cache.get(key, tool_slug=pair[0], persona=pair[1])
            if hit is None:
                return await self._review(pair, scheduler, cache)
            result = self._linted(
                hit.model_copy(update={"reused": True, "attempts": 0, "cost_usd": 0.0})
            )
            self.store.append_result(result)
            self._keep(result)
            self.emit(ReviewFinished(result))
            return True

    async def _review(
        self, pair: PairId, scheduler: CacheAwareScheduler, cache: ResultCache | None
    ) -> bool:
        """Review one pair to a terminal result; False when the run stopped before that."""
        base = self.request(pair)
        retry = PairRetry(self.options.retry, self.gate)
        state = PairState(request=base)
        self.requested += 1
        try:
            async for attempt in retry.retrying():
                with attempt:
                    await self.gate.wait()
                    async with self.limit:
                        if self.stop_reason is not None and state.attempts == 0:
                            raise _Stopped
                        await self._attempt(pair, state, scheduler)
                        await self.limit.succeeded()
        except _Stopped:
            return False
        except RunPaused as paused:
            self.stop_reason = paused.reason
            return False
        except UpstreamError as exc:
            if exc.error_class in RUN_FATAL:
                self.stop_reason = exc.message
                if self.fatal is None:  # what this invocation saw, for the stopped record
                    self.fatal_result = self._result(pair, state, error=exc)
                self.fatal = exc
                return False
            self.finish_pair(pair, state, cache, error=exc)
        else:
            self.finish_pair(pair, state, cache)
        return True

    def finish_pair(
        self,
        pair: PairId,
        state: PairState,
        cache: ResultCache | None,
        error: UpstreamError | None = None,
    ) -> PairResult:
        """Record a pair's terminal result: run store, result cache, event."""
        if error is None:
            assert state.verdict is not None
        result = self._result(pair, state, error=error)
        self.store.append_result(result)
        self._keep(result)
        if cache is not None and result.status != "failed":
            cache.put(result.pair_key, result)
        self.emit(ReviewFinished(result))
        return result

    async def _attempt(
        self, pair: PairId, state: PairState, scheduler: CacheAwareScheduler
    ) -> None:
        state.prepare_next()
        state.attempts += 1
        request = state.request
        params_digest = json_digest(self.provider.build_params(request))
        started_at = utc_timestamp()
        self.emit(ReviewStarted(pair[0], pair[1], state.attempts))
        completed: StreamCompleted | None = None
        try:
            # Closed on every path (a cancelled run, an event sink that raised), here and now:
            # the provider's own cleanup closes the HTTP stream (providers.streaming.close_stream).
            async with aclosing(self.provider.stream_verdict(request)) as events:
                async for event in events:
                    if isinstance(event, StreamStarted):
                        await scheduler.started(pair)
                    elif isinstance(event, ArgsDelta):
                        self.emit(VerdictDelta(pair[0], pair[1], event.snapshot))
                    else:
                        completed = event
            assert completed is not None
            state.verdict = self.validate(pair, completed, state)
        except UpstreamError as exc:
            usage = Usage(**exc.usage) if exc.usage else None
            if exc.error_class is ErrorClass.RATE_LIMITED:
                self.limit.rate_limited()
            self.record_attempt(pair, state, request, params_digest, started_at, usage, exc)
            state.last_error = exc
            if exc.error_class in (
                ErrorClass.RATE_LIMITED,
                ErrorClass.OVERLOADED,
                ErrorClass.SERVER_ERROR,
            ):
                self.emit(ReviewRetrying(pair[0], pair[1], exc.error_class.value, exc.message))
            raise
        state.last_error = None
        self.record_attempt(pair, state, request, params_digest, started_at, completed.usage, None)

    def validate(self, pair: PairId, completed: StreamCompleted, state: PairState) -> Verdict:
        persona = self.personas[pair[1]]
        try:
            return validate_verdict(completed.tool_input, persona.rubric_ids)
        except (ValidationError, VerdictProblem) as exc:
            message = validation_message(exc)
            state.reask = Reask(
                kind="invalid_verdict",
                message=f"That verdict was invalid: {message}. "
                "Call the tool again with every field corrected.",
                previous_input=completed.tool_input,
                call_id=completed.call_id,
            )
            raise UpstreamError(
                ErrorClass.SCHEMA_INVALID,
                f"the verdict broke the schema: {message}",
                billed=True,
                request_id=completed.request_id,
                usage=completed.usage.model_dump(exclude={"known"}),
                raw_text=canonical_json(completed.tool_input),
            ) from None

    def record_attempt(
        self,
        pair: PairId,
        state: PairState,
        request: VerdictRequest,
        request_digest: str,
        started_at: str,
        usage: Usage | None,
        error: UpstreamError | None,
    ) -> None:
        billed = error is None or error.billed
        if billed and usage is not None:
            state.usage = state.usage + usage
            (self.batch_usages if self.batch_pricing else self.usages).append(usage)
            self.spent += self._usage_cost(usage) or 0.0
        elif billed:
            state.usage = state.usage + Usage(known=False)
        self.store.append_attempt(
            Attempt(
                tool_slug=pair[0],
                persona=pair[1],
                pair_key=self._pair_key(pair),
                request_digest=request_digest,
                attempt=state.attempts,
                started_at=started_at,
                ended_at=utc_timestamp(),
                outcome="error" if error else "ok",
                error_class=error.error_class.value if error else None,
                billed=billed,
                usage=usage,
                request_id=error.request_id if error else None,
                retry_after=error.retry_after if error else None,
            )
        )

    def _linted(self, result: PairResult) -> PairResult:
        """The result with its house-rule findings (panel.lint), as it is recorded."""
        if result.status != "ok":
            return result
        tool = self.tools.get(result.tool_slug)
        evidence = Evidence.of(tool.spec if tool else None, self.rubrics.get(result.persona))
        return result.model_copy(update={"lint": lint_result(result, evidence)})

    def _lint_run(self, store: RunStore) -> LintReport:
        """Every finding of the run, written to lint.json: the results on disk (earlier
        invocations' too, when resumed), against this run's tools and rubrics."""
        report = lint_results(
            list(store.iter_results()),
            {slug: t.spec for slug, t in self.tools.items()},
            self.rubrics,
            run_id=store.run_id,
        )
        store.write_lint(report)
        return report

    def _result(
        self, pair: PairId, state: PairState, error: UpstreamError | None = None
    ) -> PairResult:
        return self._linted(
            pair_result(
                self.tools[pair[0]],
                pair[1],
                state,
                error=error,
                cost_usd=self._usage_cost(state.usage),
                pair_key=self._pair_key(pair),
                synthetic=self.provider.synthetic,
                model=str(self.spec),
                finished_at=utc_timestamp(),
                canaries=self.options.canaries,
            )
        )

    def _finish_manifest(
        self, store: RunStore, plan: CachePlan | None, pending: list[PairId], notes: list[str]
    ) -> RunManifest:
        total = Usage()
        for u in [*self.usages, *self.batch_usages]:
            total = total + u
        if self.info is None:
            cost = Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0, known=False)
        else:
            cost = costs.run_cost(
                self.info, self.usages, self.batch_usages, plan, ttl=self.options.cache_ttl
            )
        status: RunStatus
        if self.fatal is not None and self.fatal.error_class is ErrorClass.AUTH:
            status = "failed"
        elif pending or sum(1 for _ in store.iter_results()) < store.manifest().pairs_total:
            status = "paused"  # never "complete" with a pair missing
        else:
            status = "complete"
        if self.stop_reason:
            notes = [*notes, f"stopped launching: {self.stop_reason}"]
        before = store.manifest()
        manifest = before.model_copy(
            update={
                "updated_at": utc_timestamp(),
                "status": status,
                "usage": before.usage + total if self.options.resume else total,
                "cost": costs.add_costs(before.cost, cost) if self.options.resume else cost,
                "cache_plan": plan or before.cache_plan,
                "cache_stats": costs.cache_stats([*self.usages, *self.batch_usages]),
                "notes": [*before.notes, *notes],
                # The provider learns it reached panel's emulator from the first response.
                "synthetic": before.synthetic or self.provider.synthetic,
            }
        )
        store.write_manifest(manifest)
        return manifest


class _Stopped(Exception):
    """The run stopped before this pair's first attempt."""


__all__ = [
    "Event",
    "EventSink",
    "ReviewFinished",
    "ReviewRetrying",
    "ReviewStarted",
    "RunOptions",
    "RunOutcome",
    "RunStarted",
    "VerdictDelta",
    "run_panel",
]
