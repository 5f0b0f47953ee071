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
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from panel.digests import json_digest, utc_timestamp
from panel.errors import ConfigError, ErrorClass, UpstreamError
from panel.inputs.personas import Persona, load_personas, select_personas
from panel.inputs.prompts import PromptSet, load_prompts, render_prompt
from panel.inputs.tools import LoadedTool
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.lint.report import Rubric, lint_results
from panel.lint.verdicts import Evidence, lint_result
from panel.lintformat import LintReport
from panel.modeltable import ModelInfo
from panel.providers.base import (
    ArgsDelta,
    Breakpoint,
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
from panel.run.inputcopy import SentInputs, resume_personas
from panel.run.launch import LaunchStrategy
from panel.run.planning import SampledTool, build_cache_plan
from panel.run.resume import check_same_run, open_run_store, run_in
from panel.run.retry import PairRetry, PauseGate, RetryLimits, RunPaused
from panel.run.scheduler import AdaptiveLimit, CacheAwareScheduler
from panel.runformat import (
    SAMPLE_HEADER,
    Attempt,
    CachePlan,
    Cost,
    DrawId,
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
    samples: int = 1  # draws per (tool, persona): the verdict is their majority (panel.aggregate)
    # A jury ("provider:model", …): every persona on every model; `model` is then unused.
    jury: tuple[str, ...] = ()


def lint_run_store(
    store: RunStore, tools: Mapping[str, LoadedTool], rubrics: Mapping[str, Rubric]
) -> LintReport:
    """The run's findings, written to lint.json: the results on disk (earlier invocations'
    too, when resumed), against the run's tools and rubrics. With samples or a jury, each
    pair's shown draw (the one its page quotes): every draw's line carries its own findings,
    but the report, the diff and the publish gate speak of the text that would go out."""
    report = lint_results(
        list(store.results().values()),
        {slug: t.spec for slug, t in tools.items()},
        rubrics,
        run_id=store.run_id,
    )
    store.write_lint(report)
    return report


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
    providers: Sequence[Provider] | None = None,
) -> RunOutcome:
    """Run every persona on every tool; record the run; return what happened.

    `launch` sends the pairs (default: streamed through the cache-aware scheduler; the batch
    services are another strategy, panel.batch.via_api.BatchApiLaunch). `provider` replaces
    the one `options.model` names (a test double such as providers.function.FunctionProvider;
    the caller keeps it open and closes it); `providers` does so for a jury's models.
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
    if options.jury or providers is not None:
        from panel.run.jury import run_jury  # the jury drives one ModelRun per model

        if launch is not None:
            raise ConfigError("a jury streams its requests: --via batch-api takes one model")
        return await run_jury(
            tools, personas, prompts, options, on_event, env=env, providers=providers
        )
    if provider is not None:
        given = ModelSpec(provider=provider.name, model=provider.model)
        run = ModelRun(tools, personas, prompts, provider, given, options, on_event)
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
        run = ModelRun(tools, personas, prompts, provider, spec, options, on_event)
        run.launcher = launch
        return await run.execute()


class ModelRun:
    """One model's part of a run: its provider, cache plan, scheduler, attempts and results.

    A run on one model is one ModelRun; a jury (panel.run.jury) runs one per model over a
    shared run store, each with its own cache, waves and concurrency.
    """

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
        self.spend = Spend()  # a jury's members share one (the budget is the run's)
        self.stop_reason: str | None = None
        self.fatal: UpstreamError | None = None
        self.fatal_result: PairResult | None = None
        self.results: list[PairResult] = []
        self.requested = 0
        self.breakpoints: dict[str, frozenset[Breakpoint]] = {}
        self.sampled_pairs: set[PairId] = set()  # pairs with 2+ draws to send: a tool breakpoint
        self.model = str(spec)
        self.jury = False  # one member of a jury (panel.run.jury): attempts name their model
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
            if self.options.emulator.flips:  # only then: keys without it stay as they were
                s["emulator_flips"] = self.options.emulator.flips
        return s

    @property
    def spent(self) -> float:
        """Dollars spent by this run so far (all of a jury's models)."""
        return self.spend.usd

    @spent.setter
    def spent(self, usd: float) -> None:
        self.spend.usd = usd

    # -- the run ------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        return await run_in(self._open_store(), self._execute)

    def _open_store(self) -> RunStore:
        o = self.options

        def check(before: RunManifest) -> None:  # panel.run.resume: the same run, or refused
            check_same_run(before, str(self.spec), self.inputs, self.settings, samples=o.samples)

        def fresh() -> RunManifest:
            return RunManifest(
                run_id="pending",
                created_at=utc_timestamp(),
                updated_at=utc_timestamp(),
                status="running",
                model=str(self.spec),
                provider=self.provider.name,
                synthetic=self.provider.synthetic,
                # Recorded but not part of the pair key: how the run was driven. A resume
                # keeps the run's choice of the result cache (a --no-cache run stays uncached).
                settings={
                    **self.settings,
                    "concurrency": o.concurrency,
                    "result_cache": o.use_result_cache,
                    **o.labels,
                },
                inputs=self.inputs,
                pairs_total=len(self.tools) * len(self.personas),
                usage=Usage(),
                cost=Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0),
                samples=o.samples,
            )

        return open_run_store(
            o.runs_dir,
            o.resume,
            check=check,
            fresh=fresh,
            sent=self.sent(),
            retry_failed=o.retry_failed,
        )

    def sent(self) -> SentInputs:
        """What the run sends, as the run's input copy keeps it (panel.run.inputcopy)."""
        return list(self.tools.values()), list(self.personas.values()), self.prompts

    async def _execute(self, store: RunStore) -> RunOutcome:
        self.store = store
        if self.options.resume:  # the budget is the run's: earlier invocations' spend counts
            self.spent = spent_so_far(store, self._usage_cost)
        prep = self.prepare(store)
        self.emit(
            RunStarted(
                store.run_id,
                store.path,
                str(self.spec),
                self.provider.synthetic,
                prep.todo,
                prep.reused,
                prep.plan,
                prep.notes,
            )
        )
        pending = await self.launch(prep)
        manifest = self._finish_manifest(store, prep.plan, pending, prep.notes)
        lint = lint_run_store(store, self.tools, self.rubrics)
        order = {draw: i for i, draw in enumerate(prep.all_draws)}
        self.results.sort(key=lambda r: order.get(r.draw, len(order)))
        outcome = RunOutcome(
            run_id=store.run_id,
            run_dir=store.path,
            manifest=manifest,
            results=self.results,
            pending=list(dict.fromkeys(d.pair for d in pending)),
            pending_draws=pending,
            reused=prep.reused,
            requested=self.requested,
            max_in_flight=self.limit.peak,
            lint=lint,
        )
        stopped = self.stopped_error(store.run_id, outcome)
        if stopped is not None:
            raise stopped
        return outcome

    def prepare(self, store: RunStore) -> Prepared:
        """What this model still has to ask: its draws not recorded, minus result-cache hits
        (recorded as reused now), and the cache plan for the rest."""
        self.store = store
        done: set[DrawId] = set()
        for r in store.iter_results():  # streamed: a 10k-pair run never holds every result
            if r.model == self.model:
                done.add(r.draw)
                self._keep(r)
        all_draws = [
            DrawId(t, p, self.model, k)
            for t in self.tools
            for p in self.personas
            for k in range(self.options.samples)
        ]
        todo = [draw for draw in all_draws if draw not in done]
        cache = self._result_cache()
        reused = 0
        notes: list[str] = [
            f"dropped a torn last line of {n}" for n, c in store.dropped.items() if c
        ]
        if done:  # the history reads "stopped: …", then this, not a stop that never ended
            of = f" ({self.model})" if self.options.jury else ""
            notes.append(f"resumed: {len(done)} of {len(all_draws)} already recorded{of}")
        if cache is not None:
            remaining = []
            for draw in todo:
                hit = self._cached(cache, draw)
                if hit is None:
                    remaining.append(draw)
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
        return Prepared(all_draws, todo, plan, cache, reused, notes)

    async def launch(self, prep: Prepared) -> list[DrawId]:
        """Send what `prepare` left to do; return the draws left pending."""
        if self.launcher is None:
            pending = await self.stream(prep.todo, prep.plan, prep.cache)
        else:
            pending = list(await self.launcher.launch(self, prep.todo, prep.plan, prep.cache))
        if prep.cache is not None:
            prep.cache.close()
        return pending

    def stopped_error(self, run_id: str, outcome: RunOutcome) -> RunStoppedError | None:
        """The error an auth failure stops the run with (None when there was none)."""
        if self.fatal is None or self.fatal.error_class is not ErrorClass.AUTH:
            return None
        var = _KEY_VARS.get(self.spec.provider, "the provider's API key variable")
        # The record of this invocation names the pair that met the auth failure as failed
        # (auth); on disk it stays pending, so --resume runs it once the key is fixed.
        seen = [self.fatal_result] if self.fatal_result is not None else []
        return RunStoppedError(
            f"{self.provider.name} rejected the API key ({self.fatal.status}): check {var}. "
            f"Run {run_id} stopped; finish it with --resume {run_id}",
            replace(outcome, results=[*outcome.results, *seen]),
        )

    def _result_cache(self) -> ResultCache | None:
        if not self.options.use_result_cache:
            return None
        return ResultCache(self.options.cache_dir or self.options.runs_dir / ".cache")

    def _pair_key(self, draw: DrawId) -> str:
        return pair_key_for(
            self.inputs,
            draw.tool_slug,
            draw.persona,
            model=self.spec.model,
            provider=self.spec.provider,
            sample=draw.sample,
        )

    def _cached(self, cache: ResultCache, draw: DrawId) -> PairResult | None:
        return cache.get(
            self._pair_key(draw), tool_slug=draw.tool_slug, persona=draw.persona, sample=draw.sample
        )

    def _plan(self, todo: Sequence[DrawId]) -> CachePlan | None:
        # Breakpoints only where another request of this run will read the prefix.
        per_persona = Counter(d.persona for d in todo)
        per_pair = Counter(d.pair for d in todo)
        self.sampled_pairs = {pair for pair, n in per_pair.items() if n > 1}
        self.breakpoints = {}
        for persona, n in per_persona.items():
            marks: set[Breakpoint] = set()
            if len(todo) > 1:
                marks.add("house")
            if n > 1:
                marks.add("persona")
            self.breakpoints[persona] = frozenset(marks)
        # One rendered request per persona stands for all of its pairs (the prefix is what the
        # plan measures): a 10k-pair run never renders every prompt up front.
        firsts: dict[str, DrawId] = {}
        for draw in todo:
            firsts.setdefault(draw.persona, draw)
        requests = [self.request(draw) for draw in firsts.values()]
        # With samples, each sampled pair's tool block is a segment: one request per tool.
        sampled: dict[str, dict[str, int]] = {}
        for (tool, persona), n in per_pair.items():
            if n > 1:
                sampled.setdefault(tool, {})[persona] = n
        tools = [
            SampledTool(self.request(DrawId(tool, next(iter(ks)), self.model)), ks)
            for tool, ks in sampled.items()
        ]
        return build_cache_plan(
            self.provider,
            self.info,
            requests,
            self.options.cache_ttl,
            counts=per_persona,
            sampled=tools,
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

    def request(self, draw: DrawId) -> VerdictRequest:
        tool, persona = self.tools[draw.tool_slug], self.personas[draw.persona]
        marks = self.breakpoints.get(persona.id, frozenset({"house", "persona"}))
        if draw.pair in self.sampled_pairs:
            marks = marks | {"tool"}
        return VerdictRequest(
            breakpoints=marks,
            tool_slug=tool.slug,
            persona_id=persona.id,
            parts=render_prompt(persona, tool, self.prompts),
            tool_schema=self.schema,
            max_tokens=self.options.max_tokens,
            thinking=self.options.thinking,
            cache_ttl=self.options.cache_ttl,
            # Samples share every byte of their body; the header (never part of a cache prefix,
            # ignored by real APIs) is how panel's emulator tells them apart.
            extra_headers={SAMPLE_HEADER: str(draw.sample)} if draw.sample else {},
            sample=draw.sample,
        )

    async def stream(
        self, todo: list[DrawId], plan: CachePlan | None, cache: ResultCache | None
    ) -> list[DrawId]:
        cacheable = {
            s.name: s.cacheable and s.shared_by > 1 for s in (plan.segments if plan else [])
        }
        scheduler = CacheAwareScheduler(
            todo,
            gate_house=cacheable.get("tools+house", False),
            gate_personas=any(v for k, v in cacheable.items() if k.startswith("persona:")),
            gate_samples=any(v for k, v in cacheable.items() if k.startswith("tool-blocks:")),
        )
        pending: list[DrawId] = []

        async def worker() -> None:
            while True:
                if self.stop_reason is not None:
                    pending.extend(await scheduler.drop_rest())
                    return
                draw = await scheduler.next()
                if draw is None:
                    return
                if self.options.budget_usd is not None and self.spent >= self.options.budget_usd:
                    self.stop_reason = f"budget of ${self.options.budget_usd:.2f} reached"
                    pending.append(draw)
                    continue
                finished = await self._claimed_review(draw, scheduler, cache)
                if not finished:
                    pending.append(draw)
                await scheduler.started(draw)

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

    # -- one draw (a pair, or one sample of it) -------------------------------------------

    async def _claimed_review(
        self, draw: DrawId, scheduler: CacheAwareScheduler, cache: ResultCache | None
    ) -> bool:
        """`_review` under a claim on the draw's key, so a concurrent run never pays twice."""
        if cache is None:
            return await self._review(draw, scheduler, cache)
        key = self._pair_key(draw)
        async with claim_pair(cache.directory, key):
            # Looked up again under the claim: a concurrent run may have recorded this very
            # draw since this run's first look (whether or not we had to wait for it).
            hit = self._cached(cache, draw)
            if hit is None:
                return await self._review(draw, scheduler, cache)
            result = self._linted(
                hit.model_copy(update={"reused": True, "attempts": 0, "cost_usd": 0.0})
            )
            self.store.append_result(result)
            self._keep(result)
            self.emit(ReviewFinished(result))
            return True

    async def _review(
        self, draw: DrawId, scheduler: CacheAwareScheduler, cache: ResultCache | None
    ) -> bool:
        """Review one draw to a terminal result; False when the run stopped before that."""
        base = self.request(draw)
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
                        await self._attempt(draw, state, scheduler)
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
                    self.fatal_result = self._result(draw, state, error=exc)
                self.fatal = exc
                return False
            self.finish_pair(draw, state, cache, error=exc)
        else:
            self.finish_pair(draw, state, cache)
        return True

    def finish_pair(
        self,
        draw: DrawId,
        state: PairState,
        cache: ResultCache | None,
        error: UpstreamError | None = None,
    ) -> PairResult:
        """Record a draw's terminal result: run store, result cache, event."""
        if error is None:
            assert state.verdict is not None
        result = self._result(draw, state, error=error)
        self.store.append_result(result)
        self._keep(result)
        if cache is not None and result.status != "failed":
            cache.put(result.pair_key, result)
        self.emit(ReviewFinished(result))
        return result

    async def _attempt(
        self, draw: DrawId, state: PairState, scheduler: CacheAwareScheduler
    ) -> None:
        state.prepare_next()
        state.attempts += 1
        request = state.request
        params_digest = json_digest(self.provider.build_params(request))
        started_at = utc_timestamp()
        tool, persona = draw.pair
        self.emit(ReviewStarted(tool, persona, state.attempts, draw.sample, draw.model))
        completed: StreamCompleted | None = None
        try:
            # Closed on every path (a cancelled run, an event sink that raised), here and now:
            # the provider's own cleanup closes the HTTP stream (providers.streaming.close_stream).
            async with aclosing(self.provider.stream_verdict(request)) as events:
                async for event in events:
                    if isinstance(event, StreamStarted):
                        await scheduler.started(draw)
                    elif isinstance(event, ArgsDelta):
                        self.emit(
                            VerdictDelta(tool, persona, event.snapshot, draw.sample, draw.model)
                        )
                    else:
                        completed = event
            assert completed is not None
            state.verdict = self.validate(draw, completed, state)
        except UpstreamError as exc:
            usage = Usage(**exc.usage) if exc.usage else None
            if exc.error_class is ErrorClass.RATE_LIMITED:
                self.limit.rate_limited()
            self.record_attempt(draw, state, request, params_digest, started_at, usage, exc)
            state.last_error = exc
            if exc.error_class in (
                ErrorClass.RATE_LIMITED,
                ErrorClass.OVERLOADED,
                ErrorClass.SERVER_ERROR,
            ):
                why = exc.error_class.value
                self.emit(ReviewRetrying(tool, persona, why, exc.message, draw.sample, draw.model))
            raise
        state.last_error = None
        self.record_attempt(draw, state, request, params_digest, started_at, completed.usage, None)

    def validate(self, draw: DrawId, completed: StreamCompleted, state: PairState) -> Verdict:
        persona = self.personas[draw.persona]
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
        draw: DrawId,
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
                tool_slug=draw.tool_slug,
                persona=draw.persona,
                pair_key=self._pair_key(draw),
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
                sample=draw.sample,
                model=self.model if self.jury else None,
            )
        )

    def _linted(self, result: PairResult) -> PairResult:
        """The result with its house-rule findings (panel.lint), as it is recorded."""
        if result.status != "ok":
            return result
        tool = self.tools.get(result.tool_slug)
        evidence = Evidence.of(tool.spec if tool else None, self.rubrics.get(result.persona))
        return result.model_copy(update={"lint": lint_result(result, evidence)})

    def _result(
        self, draw: DrawId, state: PairState, error: UpstreamError | None = None
    ) -> PairResult:
        return self._linted(
            pair_result(
                self.tools[draw.tool_slug],
                draw.persona,
                state,
                error=error,
                cost_usd=self._usage_cost(state.usage),
                pair_key=self._pair_key(draw),
                synthetic=self.provider.synthetic,
                model=self.model,
                finished_at=utc_timestamp(),
                canaries=self.options.canaries,
                sample=draw.sample,
            )
        )

    def totals(self, plan: CachePlan | None) -> tuple[Usage, Cost]:
        """What this invocation spent on this model: usage, and actual/floor/no-cache cost."""
        total = Usage()
        for u in [*self.usages, *self.batch_usages]:
            total = total + u
        if self.info is None:
            return total, Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0, known=False)
        return total, costs.run_cost(
            self.info, self.usages, self.batch_usages, plan, ttl=self.options.cache_ttl
        )

    def _finish_manifest(
        self, store: RunStore, plan: CachePlan | None, pending: list[DrawId], notes: list[str]
    ) -> RunManifest:
        total, cost = self.totals(plan)
        status: RunStatus
        if self.fatal is not None and self.fatal.error_class is ErrorClass.AUTH:
            status = "failed"
        elif pending or sum(1 for _ in store.iter_results()) < store.manifest().draws_total:
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


@dataclass
class Spend:
    """Dollars spent, shared by a jury's models so that `--budget` is the run's."""

    usd: float = 0.0


@dataclass
class Prepared:
    """One model's work, between `prepare` and `launch`."""

    all_draws: list[DrawId]
    todo: list[DrawId]
    plan: CachePlan | None
    cache: ResultCache | None
    reused: int
    notes: list[str]


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
