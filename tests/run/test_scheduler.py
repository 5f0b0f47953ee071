"""Unit specs for the cache-aware waves and the adaptive concurrency limit (run/scheduler.py)."""

from __future__ import annotations

import asyncio

from panel.run.scheduler import AdaptiveLimit, CacheAwareScheduler
from panel.runformat import DrawId

PAIRS = [(t, p) for t in ("a", "b", "c") for p in ("x", "y")]


def draws(pairs: list[tuple[str, str]], samples: int = 1) -> list[DrawId]:
    return [DrawId(t, p, "m", k) for t, p in pairs for k in range(samples)]


def d(tool: str, persona: str, sample: int = 0) -> DrawId:
    return DrawId(tool, persona, "m", sample)


async def _available(s: CacheAwareScheduler) -> list[tuple[str, str]]:
    """Every first sample handed out without waiting, as (tool, persona)."""
    return [(x.tool_slug, x.persona) for x in await _drawn(s)]


async def _drawn(s: CacheAwareScheduler) -> list[DrawId]:
    """Every draw handed out without waiting."""
    got = []
    while True:
        try:
            draw = await asyncio.wait_for(s.next(), 0.05)
        except TimeoutError:
            return got
        if draw is None:
            return got
        got.append(draw)


async def test_waves_house_leader_then_persona_leaders_and_its_followers_then_the_rest() -> None:
    s = CacheAwareScheduler(draws(PAIRS), gate_house=True, gate_personas=True)
    assert await _available(s) == [("a", "x")]  # the house leader, alone
    await s.started(d("a", "x"))
    wave2 = await _available(s)
    assert sorted(wave2) == [("a", "y"), ("b", "x"), ("c", "x")]  # y's leader, x's followers
    await s.started(d("a", "y"))
    assert sorted(await _available(s)) == [("b", "y"), ("c", "y")]
    assert await s.next() is None  # all handed out


async def test_nothing_gated_when_no_segment_is_cacheable() -> None:
    s = CacheAwareScheduler(draws(PAIRS), gate_house=False, gate_personas=False)
    assert sorted(await _available(s)) == sorted(PAIRS)


async def test_a_leader_that_ends_without_streaming_still_releases_its_followers() -> None:
    s = CacheAwareScheduler(draws(PAIRS), gate_house=False, gate_personas=True)
    assert sorted(await _available(s)) == [("a", "x"), ("a", "y")]
    await s.started(d("a", "x"))  # the engine calls this when a pair ends, streamed or not
    await s.started(d("a", "x"))  # twice is harmless
    assert sorted(await _available(s)) == [("b", "x"), ("c", "x")]


async def test_drop_rest_returns_every_pair_never_taken() -> None:
    s = CacheAwareScheduler(draws(PAIRS), gate_house=True, gate_personas=True)
    assert await s.next() == d("a", "x")
    rest = await s.drop_rest()
    assert sorted(rest) == sorted(x for x in draws(PAIRS) if x != d("a", "x"))
    assert await s.next() is None
    # Every worker calls drop_rest when the run stops: the pairs go to the first caller only.
    assert await s.drop_rest() == []


async def test_drop_rest_gives_the_rest_once_and_a_late_leader_releases_nothing() -> None:
    # Every worker that sees a budget stop calls drop_rest: the rest must be pending once
    # (eight workers used to report 8x the pending pairs), and a leader whose stream starts
    # after the stop must not hand out followers that are already pending.
    s = CacheAwareScheduler(draws(PAIRS), gate_house=True, gate_personas=True)
    assert await s.next() == d("a", "x")
    rest = await s.drop_rest()
    assert len(rest) == len(PAIRS) - 1
    assert await s.drop_rest() == []
    await s.started(d("a", "x"))
    assert await s.next() is None


async def test_samples_wait_for_their_pairs_first_sample_under_the_persona_waves() -> None:
    # The tool block is a breakpoint: sample 0 writes the whole prompt, 1..K-1 read it.
    s = CacheAwareScheduler(
        draws(PAIRS, samples=3), gate_house=True, gate_personas=True, gate_samples=True
    )
    assert await _drawn(s) == [d("a", "x")]  # the house leader, alone, as before
    await s.started(d("a", "x"))
    wave2 = await _drawn(s)
    # y's leader, x's pair leaders, and the house leader's own samples
    assert sorted(wave2) == [d("a", "x", 1), d("a", "x", 2), d("a", "y"), d("b", "x"), d("c", "x")]
    await s.started(d("b", "x"))
    assert sorted(await _drawn(s)) == [d("b", "x", 1), d("b", "x", 2)]
    await s.started(d("a", "y"))
    assert sorted(await _drawn(s)) == [d("a", "y", 1), d("a", "y", 2), d("b", "y"), d("c", "y")]
    for leader in (d("c", "x"), d("b", "y"), d("c", "y")):
        await s.started(leader)
    rest = await _drawn(s)
    assert sorted(rest) == [
        d(t, p, k) for t, p in (("b", "y"), ("c", "x"), ("c", "y")) for k in (1, 2)
    ]
    assert await s.next() is None


async def test_samples_go_with_their_pair_when_the_tool_block_is_not_cached() -> None:
    s = CacheAwareScheduler(
        draws(PAIRS, samples=2), gate_house=True, gate_personas=False, gate_samples=False
    )
    assert sorted(await _drawn(s)) == [d("a", "x"), d("a", "x", 1)]
    await s.started(d("a", "x"))
    assert len(await _drawn(s)) == 10  # every other draw: nothing else is gated


async def test_a_resumed_pair_is_led_by_its_first_outstanding_sample() -> None:
    # Sample 0 of (a, x) was recorded before a crash: sample 1 now leads the pair.
    todo = [x for x in draws([("a", "x")], samples=3) if x.sample != 0]
    s = CacheAwareScheduler(todo, gate_house=False, gate_personas=False, gate_samples=True)
    assert await _drawn(s) == [d("a", "x", 1)]
    await s.started(d("a", "x", 1))
    assert await _drawn(s) == [d("a", "x", 2)]


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


async def test_drop_rest_with_samples_names_every_draw_once() -> None:
    # A budget stop in a sampled run: every draw not handed out is pending exactly once, the
    # waiting samples included, and a pair leader starting afterwards releases none of them.
    s = CacheAwareScheduler(
        draws(PAIRS, samples=3), gate_house=True, gate_personas=True, gate_samples=True
    )
    assert await s.next() == d("a", "x")
    rest = await s.drop_rest()
    assert sorted(rest) == sorted(set(draws(PAIRS, samples=3)) - {d("a", "x")})
    assert await s.drop_rest() == []
    await s.started(d("a", "x"))
    assert await s.next() is None
