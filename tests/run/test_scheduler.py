"""Unit specs for the cache-aware waves and the adaptive concurrency limit (run/scheduler.py)."""

from __future__ import annotations

import asyncio

from panel.run.scheduler import AdaptiveLimit, CacheAwareScheduler

PAIRS = [(t, p) for t in ("a", "b", "c") for p in ("x", "y")]


async def _available(s: CacheAwareScheduler) -> list[tuple[str, str]]:
    """Every pair handed out without waiting."""
    got = []
    while True:
        try:
            pair = await asyncio.wait_for(s.next(), 0.05)
        except TimeoutError:
            return got
        if pair is None:
            return got
        got.append(pair)


async def test_waves_house_leader_then_persona_leaders_and_its_followers_then_the_rest() -> None:
    s = CacheAwareScheduler(PAIRS, gate_house=True, gate_personas=True)
    assert await _available(s) == [("a", "x")]  # the house leader, alone
    await s.started(("a", "x"))
    wave2 = await _available(s)
    assert sorted(wave2) == [("a", "y"), ("b", "x"), ("c", "x")]  # y's leader, x's followers
    await s.started(("a", "y"))
    assert sorted(await _available(s)) == [("b", "y"), ("c", "y")]
    assert await s.next() is None  # all handed out


async def test_nothing_gated_when_no_segment_is_cacheable() -> None:
    s = CacheAwareScheduler(PAIRS, gate_house=False, gate_personas=False)
    assert sorted(await _available(s)) == sorted(PAIRS)


async def test_a_leader_that_ends_without_streaming_still_releases_its_followers() -> None:
    s = CacheAwareScheduler(PAIRS, gate_house=False, gate_personas=True)
    assert sorted(await _available(s)) == [("a", "x"), ("a", "y")]
    await s.started(("a", "x"))  # the engine calls this when a pair ends, streamed or not
    await s.started(("a", "x"))  # twice is harmless
    assert sorted(await _available(s)) == [("b", "x"), ("c", "x")]


async def test_drop_rest_returns_every_pair_never_taken() -> None:
    s = CacheAwareScheduler(PAIRS, gate_house=True, gate_personas=True)
    assert await s.next() == ("a", "x")
    rest = await s.drop_rest()
    assert sorted(rest) == sorted(p for p in PAIRS if p != ("a", "x"))
    assert await s.next() is None
    # Every worker calls drop_rest when the run stops: the pairs go to the first caller only.
    assert await s.drop_rest() == []


async def test_drop_rest_gives_the_rest_once_and_a_late_leader_releases_nothing() -> None:
    # Every worker that sees a budget stop calls drop_rest: the rest must be pending once
    # (eight workers used to report 8x the pending pairs), and a leader whose stream starts
    # after the stop must not hand out followers that are already pending.
    s = CacheAwareScheduler(PAIRS, gate_house=True, gate_personas=True)
    assert await s.next() == ("a", "x")
    rest = await s.drop_rest()
    assert len(rest) == len(PAIRS) - 1
    assert await s.drop_rest() == []
    await s.started(("a", "x"))
    assert await s.next() is None


async def test_the_limit_halves_on_a_rate_limit_and_grows_back_by_one_per_success() -> None:
    limit = AdaptiveLimit(8)
    limit.rate_limited()
    limit.rate_limited()
    assert limit.limit == 2
    await limit.succeeded()
    assert limit.limit == 3
    for _ in range(10):
        await limit.succeeded()
    assert limit.limit == 8  # never above the configured cap
    for _ in range(5):
        limit.rate_limited()
    assert limit.limit == 1  # never below one


async def test_the_limit_bounds_what_is_in_flight() -> None:
    limit = AdaptiveLimit(3)
    peak = 0

    async def job() -> None:
        nonlocal peak
        async with limit:
            peak = max(peak, limit.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak == limit.peak == 3 and limit.in_flight == 0
