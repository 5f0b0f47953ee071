"""Prompt-cache accounting with the providers' rules, for the emulator (no HTTP here).

A request is cut into blocks in prefix order; the cache key of a prefix is the hash of the
model id and the chain of block digests up to it, so a change in one block invalidates it and
every later prefix. `account()` decides how many input tokens a request reads, writes and
pays in full, and returns a ticket: its writes stay pending (invisible to every request)
until `activate(ticket)` says the response has begun, and `abandon(ticket)` drops them.

Token counting (the shared approximation of `panel.tokens`): a text block (system text,
message `text` block, string message content) counts `count_tokens(text)`; every other block
(a tool definition, an image, a tool_use or tool_result block, an OpenAI message) counts
`count_json_tokens` of its canonical JSON without `cache_control`. A request's total input is
the sum of its blocks, and every CacheResult splits it exactly:
`read_tokens + write_tokens + uncached_tokens == total`.

Anthropic (`AnthropicCache`): writes only at breakpoints (`cache_control`, or the last block
with top-level automatic caching), at most 4 of them, 1h segments before 5m ones. A read is
the longest prefix, found by walking back from each breakpoint over at most 20 blocks (the
breakpoint's own and the 19 before it), that an earlier, activated request wrote in the same
namespace and that has not expired. Everything after the read up to the last breakpoint is
written; each breakpoint's segment is billed at its own TTL. A breakpoint whose whole prefix
is under the model's `min_cache_tokens` neither reads nor writes. Messages-level digests fold
in `tool_choice` and `thinking`, so changing either invalidates the messages part only.

OpenAI (`OpenAICache`): automatic; the tools list is one block and each message one block;
once activated, an entry exists at every block boundary whose prefix reaches
`min_cache_tokens`. A read is the longest readable prefix at a block boundary (no lookback
limit). `cache_accounting == "exact"`: exact cached tokens, and the uncached rest of a prompt
of at least `min_cache_tokens` is reported as written (`write_5m_tokens`, billed 1.25x);
`"rounded128"`: cached tokens rounded down to a multiple of 128, no writes reported.
`prompt_cache_key` partitions the namespace. OpenAI publishes no fixed lifetime; the emulator
treats entries like Anthropic's 5-minute ones (refreshed on every hit).

Lifetimes are measured from the writing request's start (the clock at `account()`), and a
hit moves the entry's expiry to now + its TTL. Expired entries are gone.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from panel.modeltable import ModelInfo
from panel.providers.cacheblocks import (
    LOOKBACK_BLOCKS,
    MAX_BREAKPOINTS,
    TTL_SECONDS,
    CacheBlock,
)
from panel.runformat import Ttl

OPENAI_TTL: Ttl = "5m"
_SWEEP_EVERY = 256


class CacheControlError(ValueError):
    """The request's cache_control is invalid (the HTTP layer answers 400 with the message)."""


@dataclass(frozen=True)
class CacheResult:
    read_tokens: int
    write_5m_tokens: int
    write_1h_tokens: int
    uncached_tokens: int
    ticket: object

    @property
    def write_tokens(self) -> int:
        return self.write_5m_tokens + self.write_1h_tokens


def _prefix_keys(model: ModelInfo, blocks: Sequence[CacheBlock]) -> list[str]:
    keys: list[str] = []
    key = hashlib.sha256(("model:" + model.id).encode()).hexdigest()
    for block in blocks:
        key = hashlib.sha256((key + block.digest).encode()).hexdigest()
        keys.append(key)
    return keys


def _cumulative(blocks: Sequence[CacheBlock]) -> list[int]:
    return list(itertools.accumulate(b.tokens for b in blocks))


@dataclass
class _Ticket:
    """A request's pending writes: (namespace, prefix key, expiry, ttl seconds)."""

    writes: list[tuple[str, str, float, float]] = field(default_factory=list)
    state: Literal["pending", "active", "abandoned"] = "pending"


class _Store:
    """Committed entries, (namespace, prefix key) -> (expiry, ttl seconds); thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, float]] = {}
        self._calls = 0

    def readable(self, namespace: str, key: str, now: float) -> bool:
        entry = self._entries.get((namespace, key))
        if entry is None:
            return False
        if entry[0] <= now:
            del self._entries[(namespace, key)]
            return False
        return True

    def refresh(self, namespace: str, key: str, now: float) -> None:
        _, ttl = self._entries[(namespace, key)]
        self._entries[(namespace, key)] = (now + ttl, ttl)

    def sweep(self, now: float) -> None:
        # Lookups drop expired entries too; the sweep only bounds memory on long runs.
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            for k in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                del self._entries[k]

    def activate(self, ticket: object) -> None:
        if not isinstance(ticket, _Ticket):
            raise TypeError("not a ticket of this cache")
        with self.lock:
            if ticket.state != "pending":
                return
            ticket.state = "active"
            now = self.clock()
            for namespace, key, expires, ttl in ticket.writes:
                old = self._entries.get((namespace, key))
                # Concurrent writers of one prefix leave a single entry: the longest-lived.
                if expires > now and (old is None or old[0] < expires):
                    self._entries[(namespace, key)] = (expires, ttl)
            ticket.writes = []

    def abandon(self, ticket: object) -> None:
        if not isinstance(ticket, _Ticket):
            raise TypeError("not a ticket of this cache")
        with self.lock:
            if ticket.state == "pending":
                ticket.state = "abandoned"
                ticket.writes = []


def _breakpoints(blocks: Sequence[CacheBlock], auto_ttl: Ttl | None) -> list[tuple[int, Ttl]]:
    points: list[tuple[int, Ttl]] = [(i, b.ttl) for i, b in enumerate(blocks) if b.ttl]
    if auto_ttl is not None and blocks and (not points or points[-1][0] != len(blocks) - 1):
        points.append((len(blocks) - 1, auto_ttl))
    if len(points) > MAX_BREAKPOINTS:
        raise CacheControlError(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(points)}."
        )
    seen_5m = False
    for _, ttl in points:
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise CacheControlError(
                "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control "
                "block. Note that blocks are processed in the following order: `tools`, "
                "`system`, `messages`."
            )
    return points


class AnthropicCache:
    """Anthropic's explicit-breakpoint prompt cache (rules in the module docstring)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._store = _Store(clock)

    def account(
        self,
        namespace: str,
        model: ModelInfo,
        blocks: Sequence[CacheBlock],
        *,
        auto_ttl: Ttl | None = None,
        store_ttl: Ttl | None = None,
    ) -> CacheResult:
        """Split the request's input into read / written / uncached tokens.

        `store_ttl` keeps written entries at least that long without changing how the
        write is billed (the batch endpoints' best-effort cache uses "1h").
        """
        points = _breakpoints(blocks, auto_ttl)
        floor = TTL_SECONDS[store_ttl] if store_ttl else 0.0
        totals = _cumulative(blocks)
        total = totals[-1] if totals else 0
        cacheable = [(i, ttl) for i, ttl in points if totals[i] >= model.min_cache_tokens]
        ticket = _Ticket()
        if not cacheable:
            ticket.state = "active"
            return CacheResult(0, 0, 0, total, ticket)
        keys = _prefix_keys(model, blocks)
        store = self._store
        with store.lock:
            now = store.clock()
            store.sweep(now)
            read_end = -1  # index of the last block of the read prefix
            for i, _ in cacheable:
                for j in range(i, max(-1, i - LOOKBACK_BLOCKS), -1):
                    if j <= read_end:
                        break
                    if store.readable(namespace, keys[j], now):
                        read_end = j
                        break
            if read_end >= 0:
                store.refresh(namespace, keys[read_end], now)
            read = totals[read_end] if read_end >= 0 else 0
            writes = {"5m": 0, "1h": 0}
            done = read
            for i, ttl in cacheable:
                if i <= read_end:
                    continue
                writes[ttl] += totals[i] - done
                done = totals[i]
                life = max(TTL_SECONDS[ttl], floor)
                ticket.writes.append((namespace, keys[i], now + life, life))
        return CacheResult(read, writes["5m"], writes["1h"], total - done, ticket)

    def activate(self, ticket: object) -> None:
        """The response has begun: the request's pending writes become readable."""
        self._store.activate(ticket)

    def abandon(self, ticket: object) -> None:
        """The request failed before its response began: its pending writes are dropped."""
        self._store.abandon(ticket)


class OpenAICache:
    """OpenAI's automatic prefix cache (rules in the module docstring)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._store = _Store(clock)

    def account(
        self,
        namespace: str,
        model: ModelInfo,
        blocks: Sequence[CacheBlock],
        *,
        cache_key: str | None = None,
    ) -> CacheResult:
        totals = _cumulative(blocks)
        total = totals[-1] if totals else 0
        ticket = _Ticket()
        if total < model.min_cache_tokens:
            ticket.state = "active"
            return CacheResult(0, 0, 0, total, ticket)
        space = namespace + "\x00" + (cache_key or "")
        keys = _prefix_keys(model, blocks)
        ttl = TTL_SECONDS[OPENAI_TTL]
        store = self._store
        with store.lock:
            now = store.clock()
            store.sweep(now)
            read_end = -1
            for j in range(len(blocks) - 1, -1, -1):
                if totals[j] < model.min_cache_tokens:
                    break
                if store.readable(space, keys[j], now):
                    read_end = j
                    store.refresh(space, keys[j], now)
                    break
            for j in range(len(blocks)):
                if totals[j] >= model.min_cache_tokens and j > read_end:
                    ticket.writes.append((space, keys[j], now + ttl, ttl))
        read = totals[read_end] if read_end >= 0 else 0
        if model.cache_accounting == "rounded128":
            read -= read % 128
            return CacheResult(read, 0, 0, total - read, ticket)
        return CacheResult(read, total - read, 0, 0, ticket)

    def activate(self, ticket: object) -> None:
        """The response has begun: the request's prefixes become readable."""
        self._store.activate(ticket)

    def abandon(self, ticket: object) -> None:
        """The request failed before its response began: nothing is written."""
        self._store.abandon(ticket)
