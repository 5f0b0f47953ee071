"""Cost accounting: actual, floor and no-cache figures, by hand, for claude-sonnet-5."""

from __future__ import annotations

import pytest

from panel.modeltable import ModelInfo, model_info
from panel.run.costs import cache_stats, cost_summary, estimate_run, usage_cost
from panel.runformat import CachePlan, CacheSegment, Usage

PERSONAS = ("builder", "skeptic", "futurist", "business")
HOUSE, PERSONA, TAIL, OUT = 3000, 1000, 200, 500  # tokens per request


def sonnet() -> ModelInfo:
    info = model_info("claude-sonnet-5")
    assert info is not None and info.prices is not None
    # The figures below are computed by hand from these prices (USD per million).
    assert (info.prices.input, info.prices.cache_write_5m) == (2.0, 2.5)
    assert (info.prices.cache_read, info.prices.output) == (0.2, 10.0)
    return info


def plan(tools: int = 1, ttl: str = "5m") -> CachePlan:
    """One tool × four personas: the house prefix is shared by all, each persona by its own."""
    return CachePlan(
        order=["tools", "house", "persona", "tool"],
        breakpoints=["house", "persona"],
        ttl=ttl,  # type: ignore[arg-type]
        min_cache_tokens=1024,
        segments=[
            CacheSegment(name="tools+house", tokens=HOUSE, shared_by=4 * tools, cacheable=True)
        ]
        + [
            CacheSegment(name=f"persona:{p}", tokens=PERSONA, shared_by=tools, cacheable=True)
            for p in PERSONAS
        ],
    )


def well_scheduled() -> list[Usage]:
    """The first request writes house+persona; the others read house and write their persona."""
    first = Usage(input_tokens=TAIL, cache_write_tokens=HOUSE + PERSONA, output_tokens=OUT)
    rest = Usage(
        input_tokens=TAIL, cache_read_tokens=HOUSE, cache_write_tokens=PERSONA, output_tokens=OUT
    )
    return [first, rest, rest, rest]


def concurrent_misses() -> list[Usage]:
    """All four launched at once: every request pays to write the same house prefix."""
    return [Usage(input_tokens=TAIL, cache_write_tokens=HOUSE + PERSONA, output_tokens=OUT)] * 4


def test_hand_computed_example() -> None:
    cost = cost_summary(sonnet(), well_scheduled(), plan(), ttl="5m")
    # floor: house written once (3000×2.5) and read 3 times (9000×0.2) = 9300;
    # each persona is used by one request only, so base price: 4×1000×2.0 = 8000;
    # tails 4×200×2.0 = 1600; output 4×500×10 = 20000. Total 38900 per million.
    assert cost.floor_usd == pytest.approx(0.0389)
    # actual: writes 7000×2.5 + reads 9000×0.2 + input 800×2.0 + output 20000 = 40900.
    assert cost.usd == pytest.approx(0.0409)
    # no cache: 16800 input × 2.0 + 20000 = 53600.
    assert cost.no_cache_usd == pytest.approx(0.0536)
    assert cost.known and not cost.batch_discount


def test_floor_below_actual_when_misses_are_concurrent() -> None:
    cost = cost_summary(sonnet(), concurrent_misses(), plan(), ttl="5m")
    assert cost.floor_usd == pytest.approx(0.0389)
    assert cost.usd == pytest.approx((16000 * 2.5 + 800 * 2.0 + 20000) / 1e6)
    assert cost.floor_usd < cost.usd
    assert cost.no_cache_usd > cost.floor_usd


def test_personas_shared_across_tools_are_cached_in_the_floor() -> None:
    # 3 tools: house shared by 12, each persona by 3 (written once, read twice).
    usages = [Usage(input_tokens=HOUSE + PERSONA + TAIL, output_tokens=OUT)] * 12
    cost = cost_summary(sonnet(), usages, plan(tools=3), ttl="5m")
    house = HOUSE * 2.5 + 11 * HOUSE * 0.2
    personas = 4 * (PERSONA * 2.5 + 2 * PERSONA * 0.2)
    expected = house + personas + 12 * TAIL * 2.0 + 12 * OUT * 10.0
    assert cost.floor_usd == pytest.approx(expected / 1e6)
    assert cost.usd == cost.no_cache_usd  # nothing was actually cached


def test_one_hour_ttl_uses_the_one_hour_write_price() -> None:
    five = cost_summary(sonnet(), well_scheduled(), plan(), ttl="5m")
    hour = cost_summary(sonnet(), well_scheduled(), plan(ttl="1h"), ttl="1h")
    assert hour.usd - five.usd == pytest.approx(7000 * (4.0 - 2.5) / 1e6)
    assert hour.floor_usd - five.floor_usd == pytest.approx(3000 * (4.0 - 2.5) / 1e6)


def test_batch_halves_every_figure() -> None:
    full = cost_summary(sonnet(), well_scheduled(), plan(), ttl="5m")
    half = cost_summary(sonnet(), well_scheduled(), plan(), ttl="5m", batch=True)
    assert half.batch_discount
    assert half.usd == pytest.approx(full.usd / 2)
    assert half.floor_usd == pytest.approx(full.floor_usd / 2)
    assert half.no_cache_usd == pytest.approx(full.no_cache_usd / 2)
    u = well_scheduled()[1]
    full_one = usage_cost(sonnet(), u)
    assert full_one is not None
    assert usage_cost(sonnet(), u, batch=True) == pytest.approx(full_one / 2)


def test_usage_cost_by_hand() -> None:
    u = Usage(input_tokens=1000, cache_write_tokens=2000, cache_read_tokens=3000, output_tokens=400)
    assert usage_cost(sonnet(), u, ttl="5m") == pytest.approx(
        (1000 * 2.0 + 2000 * 2.5 + 3000 * 0.2 + 400 * 10.0) / 1e6
    )


def test_unknown_prices_or_usage_are_flagged() -> None:
    unpriced = model_info("claude-fable-5-1")
    assert unpriced is not None and unpriced.prices is None
    assert cost_summary(unpriced, well_scheduled(), plan(), ttl="5m").known is False
    assert usage_cost(unpriced, well_scheduled()[0]) is None
    missing = [*well_scheduled(), Usage(known=False)]
    assert cost_summary(sonnet(), missing, plan(), ttl="5m").known is False
    assert usage_cost(sonnet(), Usage(known=False)) is None
    openai = model_info("gpt-5.6-terra")  # no 1-hour write price
    assert openai is not None
    assert usage_cost(openai, Usage(cache_write_tokens=10), ttl="1h") is None
    assert cost_summary(openai, [Usage(cache_write_tokens=10)], None, ttl="1h").known is False


def test_no_plan_means_floor_is_no_cache_and_no_requests_cost_nothing() -> None:
    cost = cost_summary(sonnet(), well_scheduled(), None, ttl="5m")
    assert cost.floor_usd == cost.no_cache_usd
    empty = cost_summary(sonnet(), [], plan(), ttl="5m")
    assert (empty.usd, empty.floor_usd, empty.no_cache_usd) == (0.0, 0.0, 0.0)


def test_estimate_matches_the_floor_of_the_same_tokens() -> None:
    est = estimate_run(sonnet(), plan(), 4, TAIL, OUT)
    actual = cost_summary(sonnet(), well_scheduled(), plan(), ttl="5m")
    assert est.usd == est.floor_usd == pytest.approx(actual.floor_usd)
    assert est.no_cache_usd == pytest.approx(actual.no_cache_usd)
    assert estimate_run(sonnet(), plan(), 4, TAIL, OUT, batch=True).usd == pytest.approx(
        est.usd / 2
    )


def test_cache_stats_are_measured_from_usage() -> None:
    stats = cache_stats(well_scheduled())
    assert stats.requests == 4 and stats.requests_reading_cache == 3
    assert stats.read_tokens == 9000 and stats.write_tokens == 7000
    assert stats.uncached_tokens == 800
