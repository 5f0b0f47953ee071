"""Cache-aware scheduling: every shared prefix is written once, then read by the rest.

A cache entry exists only once the response that writes it has begun (api-facts.md), so a
burst of requests with the same new prefix would all miss and all pay the write premium.
The scheduler releases draws in waves instead:

    1. the house leader — the first pair — alone: it writes tools+house and its persona block;
    2. once its stream has begun: the first pair of every other persona (each reads the house
       block and writes its own persona block), and the house leader's persona followers;
    3. once a persona leader's stream has begun: the rest of that persona's pairs;
    4. with samples (--samples K), under every pair: the pair's first outstanding draw is
       released with its pair's wave and writes the whole prompt (the tool block is a
       breakpoint); once its stream has begun, the pair's other samples go, and read it all.

A segment that cannot be cached (below the model's minimum, or caching off) gates nothing.
A leader that ends without ever starting a stream releases its followers anyway: one of them
then writes the prefix. Concurrency is bounded separately (AdaptiveLimit).

Draws are `DrawId`s (tool, persona, model, sample); a scheduler serves one model (a jury
runs one per model, each with its own cache and waves).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from panel.runformat import DrawId, PairId


class CacheAwareScheduler:
    def __init__(
        self,
        draws: Sequence[DrawId],
        *,
        gate_house: bool,
        gate_personas: bool,
        gate_samples: bool = False,
    ) -> None:
        # The pair's first outstanding draw leads it; its other samples follow it.
        by_pair: dict[PairId, list[DrawId]] = {}
        for draw in draws:
            by_pair.setdefault(draw.pair, []).append(draw)
        pair_leads = [group[0] for group in by_pair.values()]
        self._samples = {group[0]: group[1:] for group in by_pair.values()}
        self._gate_samples = gate_samples
        groups: dict[str, list[DrawId]] = {}
        for lead in pair_leads:
            groups.setdefault(lead.persona, []).append(lead)
        self._all = list(draws)
        self._ready: deque[DrawId] = deque()
        self._waiting = len(draws)
        self._released: set[DrawId] = set()
        self._fired: set[DrawId] = set()
        self._stopped = False  # after drop_rest: nothing is released or handed out again
        self._cond = asyncio.Condition()
        self._followers: dict[DrawId, list[DrawId]] = {}
        leaders = [group[0] for group in groups.values()]
        own = {group[0]: group[1:] for group in groups.values()}
        if gate_personas:
            self._followers = {leader: list(own[leader]) for leader in leaders}
        if gate_house and leaders:
            house = leaders[0]
            later = own[house] if gate_personas else [p for g in own.values() for p in g]
            self._followers[house] = [*leaders[1:], *later]
            self._release([house])
        elif gate_personas:
            self._release(leaders)
        else:
            self._release(pair_leads)
        if gate_samples:
            for lead, rest in self._samples.items():
                if rest:
                    self._followers.setdefault(lead, []).extend(rest)

    def _release(self, draws: Sequence[DrawId]) -> None:
        if self._stopped:
            return  # a leader starting after drop_rest: its followers are already pending
        for draw in draws:
            if draw not in self._released:
                self._released.add(draw)
                self._ready.append(draw)
                if not self._gate_samples:  # nothing to wait for: the samples go with it
                    self._release(self._samples.get(draw, []))

    async def started(self, draw: DrawId) -> None:
        """The draw's response has begun (or the draw is over): release what waited on it."""
        if draw in self._fired:
            return
        self._fired.add(draw)
        followers = self._followers.pop(draw, [])
        if followers:
            async with self._cond:
                self._release(followers)
                self._cond.notify_all()

    async def next(self) -> DrawId | None:
        """The next draw to launch, waiting for one to be released; None when all were taken."""
        async with self._cond:
            while not self._ready:
                if self._waiting == 0:
                    return None
                await self._cond.wait()
            self._waiting -= 1
            if self._waiting == 0:
                self._cond.notify_all()
            return self._ready.popleft()

    async def drop_rest(self) -> list[DrawId]:
        """Stop handing out draws (budget, spend cap, pause); return those never taken.

        Every worker calls this when the run stops launching: each draw is returned once, to
        the first caller, so the run's pending list names every draw exactly once.
        """
        async with self._cond:
            if self._stopped:
                return []
            self._stopped = True
            taken = set(self._released) - set(self._ready)
            rest = [d for d in self._all if d not in taken]
            self._released.update(rest)  # dropped: never handed out again, never returned again
            self._ready.clear()
            self._waiting = 0
            self._cond.notify_all()
            return rest


class AdaptiveLimit:
    """At most `limit` in flight; halves on a rate limit, grows back by one per success."""

    def __init__(self, limit: int) -> None:
        self.max = max(1, limit)
        self.limit = self.max
        self.in_flight = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            while self.in_flight >= self.limit:
                await self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def rate_limited(self) -> None:
        self.limit = max(1, self.limit // 2)

    async def succeeded(self) -> None:
        if self.limit < self.max:
            async with self._cond:
                self.limit += 1
                self._cond.notify_all()
