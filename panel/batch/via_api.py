"""`--via batch-api`: the providers' batch services (Anthropic Message Batches, OpenAI Batch).

    warm-up: one streamed request per persona (writes tools+house and each persona prefix,
      1-hour TTL) ─> the rest in batches (≤ limits; custom_id ↔ pair in custom_ids.json)
      ─> batches.json written BEFORE polling ─> poll with backoff ─> results by custom_id
      (any order) ─> validated exactly as in streaming ─> errored/expired/truncated/invalid
      retried in a follow-up batch (bounded by the retry limits) ─> run store

A crashed process resumes polling the batches recorded in batches.json instead of submitting
them again; a pair already recorded is never recorded twice. Costs use the batch discount.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from panel.digests import json_digest, utc_timestamp
from panel.errors import ErrorClass, RunStoreError, UpstreamError
from panel.providers.batchservices import Api, BatchService, ItemResult, open_service, unbilled
from panel.providers.classify import RETRYABLE, RUN_FATAL, classify_exception
from panel.run.attempts import PairState
from panel.run.events import ReviewStarted
from panel.run.launch import RunView
from panel.run.retry import ONCE
from panel.runformat import CachePlan, DrawId, Usage
from panel.store.atomicio import write_json_atomic
from panel.store.resultcache import ResultCache

LEDGER = "batches.json"
CUSTOM_IDS = "custom_ids.json"
MAX_LEDGER_BYTES = 64 * 1024 * 1024
# Our own cap per batch, well inside the providers' (256 MB / 200 MB): it bounds the memory a
# submission holds, and a smaller batch starts returning results sooner.
CHUNK_BYTES = 32 * 1024 * 1024


# -- the run folder's record of batches ------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LedgerEntry(_Frozen):
    id: str
    round: int
    custom_ids: list[str]
    submitted_at: str
    collected: bool = False


class Ledger(_Frozen):
    """batches.json: every batch submitted for the run, written before it is polled."""

    format: int = 1
    api: Api
    batches: list[LedgerEntry] = Field(default_factory=list)


class CustomIds(_Frozen):
    """custom_ids.json: custom_id -> [tool_slug, persona]."""

    format: int = 1
    ids: dict[str, tuple[str, str]] = Field(default_factory=dict)


def custom_id(pair: DrawId) -> str:
    """A short id the APIs accept (^[a-zA-Z0-9_-]{1,64}$), stable for the pair."""
    return "p" + hashlib.sha256(f"{pair[0]}\0{pair[1]}".encode()).hexdigest()[:24]


def _read(path: Path, model: type[_Frozen]) -> Any:
    if not path.exists():
        return None
    if path.is_symlink():
        raise RunStoreError(f"{path} is a symlink; refusing to read it")
    raw = path.read_bytes()
    if len(raw) > MAX_LEDGER_BYTES:
        raise RunStoreError(f"{path}: larger than {MAX_LEDGER_BYTES} bytes")
    try:
        return model.model_validate_json(raw)
    except ValueError as e:
        raise RunStoreError(f"{path}: unreadable ({e})") from None


def recorded_batch_ids(run_dir: Path) -> list[str]:
    ledger = _read(run_dir / LEDGER, Ledger)
    return [b.id for b in ledger.batches] if ledger else []


# -- the run ---------------------------------------------------------------------------------


@dataclass
class _Submitted:
    """A pair between submission and result: its state only while it may need a follow-up."""

    tries: int = 0  # attempts so far, across resumes (attempts.jsonl)
    once: frozenset[ErrorClass] = frozenset()
    state: PairState | None = None
    started_at: str = ""


class BatchApiLaunch:
    """Launch a run's pairs through batches, after a streamed warm-up per persona."""

    poll_initial = 5.0
    poll_max = 60.0
    control_tries = 5  # create/retrieve/results calls that got an error status

    async def launch(
        self, run: RunView, todo: list[DrawId], plan: CachePlan | None, cache: ResultCache | None
    ) -> list[DrawId]:
        self.run = run
        self.service = open_service(self.run.provider)
        if self.run.provider.synthetic:
            self.poll_initial, self.poll_max = 0.05, 2.0
        run_dir = self.run.store.path
        self.ledger: Ledger = _read(run_dir / LEDGER, Ledger) or Ledger(api=self.service.api)
        self.ids: CustomIds = _read(run_dir / CUSTOM_IDS, CustomIds) or CustomIds()
        open_batches = [b for b in self.ledger.batches if not b.collected]
        waiting = {self._draw(c) for b in open_batches for c in b.custom_ids if c in self.ids.ids}
        fresh = [p for p in todo if p not in waiting]
        self.track: dict[DrawId, _Submitted] = {}
        prior = Counter(
            DrawId(a.tool_slug, a.persona, self.run.model, a.sample)
            for a in self.run.store.iter_attempts()
        )
        for pair in todo:
            self.track[pair] = _Submitted(tries=prior[pair])
        pending: list[DrawId] = []
        if not self.ledger.batches and fresh:
            # Warm the shared prefixes with one streamed request per persona: a cache entry
            # exists only once a response has begun, and batch hits are best effort.
            leaders = list({p[1]: p for p in reversed(fresh)}.values())[::-1]
            pending += await self.run.stream(leaders, plan, cache)
            taken = set(leaders)
            fresh = [p for p in fresh if p not in taken]
        self.run.batch_pricing = True
        queue = fresh
        rounds = max((b.round for b in self.ledger.batches), default=0)
        while queue or open_batches:
            if queue and self.run.stop_reason is None and self._over_budget():
                self.run.stop_reason = f"budget of ${self.run.options.budget_usd:.2f} reached"
            if queue and self.run.stop_reason is None:
                rounds += 1
                open_batches += await self._submit(queue, rounds)
                queue = []
            elif queue:
                pending += queue
                queue = []
            if not open_batches:
                break
            ended = await self._poll(open_batches)
            if ended is None:  # the run stopped while polling: what is open stays resumable
                pending += [self._draw(c) for b in open_batches for c in b.custom_ids]
                break
            for entry in ended:
                queue += await self._collect(entry, cache)
                open_batches.remove(entry)
                self._mark_collected(entry.id)
        return pending

    def _draw(self, cid: str) -> DrawId:
        """The draw a custom_id stands for (batches carry first samples only)."""
        tool, persona = self.ids.ids[cid]
        return DrawId(tool, persona, self.run.model)

    def _over_budget(self) -> bool:
        return (
            self.run.options.budget_usd is not None
            and self.run.spent >= self.run.options.budget_usd
        )

    # -- submit ------------------------------------------------------------------------------

    def _chunks(self, pairs: Sequence[DrawId]) -> Iterator[list[tuple[DrawId, dict[str, Any]]]]:
        limit_n = self.service.max_requests
        limit_bytes = min(self.service.max_bytes, CHUNK_BYTES)
        chunk: list[tuple[DrawId, dict[str, Any]]] = []
        size = 0
        for pair in pairs:
            t = self.track[pair]
            request = t.state.request if t.state is not None else self.run.request(pair)
            params = self.service.item_params(self.run.provider.build_params(request))
            n = len(json.dumps(params)) + 200
            if chunk and (len(chunk) >= limit_n or size + n > limit_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append((pair, params))
            size += n
        if chunk:
            yield chunk

    async def _submit(self, pairs: Sequence[DrawId], round_no: int) -> list[LedgerEntry]:
        entries = []
        for chunk in self._chunks(pairs):
            cids = [custom_id(pair) for pair, _ in chunk]
            new = {
                c: pair.pair
                for c, (pair, _) in zip(cids, chunk, strict=True)
                if c not in self.ids.ids
            }
            if new:
                self.ids = CustomIds(ids={**self.ids.ids, **new})
                write_json_atomic(self.run.store.path / CUSTOM_IDS, self.ids)
            items = [(c, p) for c, (_, p) in zip(cids, chunk, strict=True)]
            batch_id = await self._control(
                lambda items=items: self.service.submit(items), retry_unsent_only=True
            )
            del items  # the chunk's bodies are not needed any more
            entry = LedgerEntry(
                id=batch_id, round=round_no, custom_ids=cids, submitted_at=utc_timestamp()
            )
            # Recorded before any poll: a crash from here on resumes polling this batch.
            self.ledger = self.ledger.model_copy(update={"batches": [*self.ledger.batches, entry]})
            write_json_atomic(self.run.store.path / LEDGER, self.ledger)
            for pair, _ in chunk:
                t = self.track[pair]
                if t.tries == 0:
                    self.run.requested += 1
                t.started_at = utc_timestamp()
                self.run.emit(ReviewStarted(pair[0], pair[1], t.tries + 1))
            entries.append(entry)
        return entries

    # -- poll --------------------------------------------------------------------------------

    async def _poll(self, open_batches: Sequence[LedgerEntry]) -> list[LedgerEntry] | None:
        delay = self.poll_initial
        while True:
            ended = []
            for entry in open_batches:
                done = await self._control(lambda e=entry: self.service.ended(e.id))
                if done is None:
                    return None
                if done:
                    ended.append(entry)
            if ended:
                return ended
            await asyncio.sleep(delay)
            delay = min(self.poll_max, delay * 1.5)

    async def _control(self, call: Any, *, retry_unsent_only: bool = False) -> Any:
        """One control-plane call, retried on error statuses; None once the run stopped."""
        delay = 0.5
        for n in range(self.control_tries):
            try:
                return await call()
            except Exception as exc:
                err = classify_exception(exc, provider=self.run.provider.name)
                if err.error_class in RUN_FATAL:
                    self.run.stop_reason, self.run.fatal = err.message, err
                    if retry_unsent_only:
                        raise err from None
                    return None
                # A create that got no answer may have created the batch: never send it twice.
                unsent = err.status is not None
                if err.error_class not in RETRYABLE or (retry_unsent_only and not unsent):
                    raise err from None
                if n == self.control_tries - 1:
                    raise err from None
                await asyncio.sleep(err.retry_after if err.retry_after is not None else delay)
                delay = min(30.0, delay * 2)
        raise AssertionError("unreachable")

    # -- collect -----------------------------------------------------------------------------

    async def _collect(self, entry: LedgerEntry, cache: ResultCache | None) -> list[DrawId]:
        """Record what a finished batch returned; return the pairs that earned a follow-up."""
        expected = {c: self._draw(c) for c in entry.custom_ids if c in self.ids.ids}
        again: list[DrawId] = []
        seen: set[str] = set()
        results = await self._control(lambda: _first_and_rest(self.service.results(entry.id)))
        if results is None:
            return []
        async with aclosing(results):  # a failed write stops early: the download closes now
            async for item in results:
                pair = expected.get(item.custom_id)
                if pair is None or item.custom_id in seen:
                    continue  # not ours, or a repeated line: one result per pair
                seen.add(item.custom_id)
                if self._handle(pair, item, cache):
                    again.append(pair)
        missing = [(c, pair) for c, pair in expected.items() if c not in seen]
        for c, pair in missing:  # no line at all: as if it expired
            lost = ItemResult(c, error=unbilled("missing", self.run.provider.name))
            if self._handle(pair, lost, cache):
                again.append(pair)
        return again

    def _handle(self, pair: DrawId, item: ItemResult, cache: ResultCache | None) -> bool:
        """Record one item's outcome; True when it goes into a follow-up batch."""
        if self.run.store.recorded(*pair):  # (tool, persona, model, sample)
            return False  # recorded before a crash, or reused from the cache meanwhile
        t = self.track.setdefault(pair, _Submitted())
        state = t.state or PairState(request=self.run.request(pair))
        t.tries += 1
        state.attempts = t.tries
        digest = json_digest(self.run.provider.build_params(state.request))
        error = item.error
        if item.completed is not None:
            try:
                state.verdict = self.run.validate(pair, item.completed, state)
            except UpstreamError as exc:
                error = exc
        if error is None:
            assert item.completed is not None
            self.run.record_attempt(
                pair,
                state,
                state.request,
                digest,
                t.started_at or utc_timestamp(),
                item.completed.usage,
                None,
            )
            self.run.finish_pair(pair, state, cache)
            self.track.pop(pair, None)
            return False
        usage = Usage(**error.usage) if error.usage else None
        self.run.record_attempt(
            pair, state, state.request, digest, t.started_at or utc_timestamp(), usage, error
        )
        state.last_error = error
        klass = error.error_class
        if klass in RUN_FATAL:
            self.run.stop_reason, self.run.fatal = error.message, error
            return True  # left for the caller to list as pending
        retry = klass in RETRYABLE or (klass in ONCE and klass not in t.once)
        if retry and t.tries < self.run.options.retry.max_attempts:
            t.once = t.once | ({klass} if klass in ONCE else set())
            state.prepare_next()
            t.state = state
            return True
        self.run.finish_pair(pair, state, cache, error=error)
        self.track.pop(pair, None)
        return False

    def _mark_collected(self, batch_id: str) -> None:
        batches = [
            b.model_copy(update={"collected": True}) if b.id == batch_id else b
            for b in self.ledger.batches
        ]
        self.ledger = self.ledger.model_copy(update={"batches": batches})
        write_json_atomic(self.run.store.path / LEDGER, self.ledger)


async def _first_and_rest(
    items: AsyncGenerator[ItemResult, None],
) -> AsyncGenerator[ItemResult, None]:
    """Start the results download inside the retried call (errors surface there), then stream
    (closing `items` however the streaming ends)."""
    first = await anext(items, None)

    async def rest() -> AsyncGenerator[ItemResult, None]:
        async with aclosing(items):
            if first is not None:
                yield first
                async for item in items:
                    yield item

    return rest()


__all__ = [
    "BatchApiLaunch",
    "BatchService",
    "CustomIds",
    "ItemResult",
    "Ledger",
    "LedgerEntry",
    "custom_id",
    "open_service",
    "recorded_batch_ids",
]
