"""Unit specs for the cache plan (run/planning.py) and the dollar figures (run/costs.py).

Planning is computed on the exact request bodies the double builds (the Anthropic Messages
bodies); costs are plain arithmetic over the model table's prices, worked by hand here.
"""

from __future__ import annotations

import pytest

from panel.modeltable import ModelInfo, model_info
from panel.providers.base import PromptParts, VerdictRequest
from panel.providers.cacheblocks import anthropic_blocks
from panel.providers.function import FunctionProvider, Reply
from panel.run.costs import cost_summary, estimate_run, usage_cost
from panel.run.planning import build_cache_plan
from panel.runformat import CachePlan, CacheSegment, Usage
from panel.verdict import verdict_tool_schema


def _double(model: str) -> FunctionProvider:
    return FunctionProvider(lambda request, call: Reply({}), model=model)


def _request(tool: str, persona: str, house_words: int, persona_words: int) -> VerdictRequest:
    parts = PromptParts(
        house="house rule " * house_words,
        persona=f"persona {persona} " * persona_words,
        tool=f"the tool {tool} " * 50,
    )
    return VerdictRequest(tool, persona, parts, verdict_tool_schema())


def _plan(name: str, *, tokens: int, shared_by: int) -> CachePlan:
    """A plan with one cacheable segment."""
    segment = CacheSegment(name=name, tokens=tokens, shared_by=shared_by, cacheable=True)
    return CachePlan(
        order=["tools", "house", "persona", "tool"], breakpoints=["house", "persona"],
        ttl="5m", min_cache_tokens=1024, warnings=[], segments=[segment],
    )  # fmt: skip


def _info(model: str) -> ModelInfo:
    info = model_info(model)
    assert info is not None
    return info


def test_segments_are_sized_on_the_exact_bodies_and_shared_by_every_pair() -> None:
    double = _double("claude-sonnet-5")
    requests = [_request(t, p, 1500, 400) for t in ("a", "b", "c") for p in ("x", "y")]
    plan = build_cache_plan(double, _info("claude-sonnet-5"), requests, "5m")
    assert plan is not None
    blocks = anthropic_blocks(double.build_params(requests[0]))
    house = sum(b.tokens for b in blocks[:2])  # the verdict tool definition + the house block
    assert [(s.name, s.shared_by) for s in plan.segments] == [
        ("tools+house", 6), ("persona:x", 3), ("persona:y", 3),
    ]  # fmt: skip
    assert plan.segments[0].tokens == house
    assert plan.segments[1].tokens == blocks[2].tokens
    assert all(s.cacheable for s in plan.segments) and plan.warnings == []
    assert plan.breakpoints == ["house", "persona"]


def test_a_prefix_below_the_model_minimum_is_not_cacheable_and_says_so() -> None:
    # Haiku 4.5 caches nothing under 4,096 tokens; a short house block stays uncached.
    double = _double("claude-haiku-4-5")
    requests = [_request(t, "x", 50, 20) for t in ("a", "b")]
    plan = build_cache_plan(double, _info("claude-haiku-4-5"), requests, "5m")
    assert plan is not None and not any(s.cacheable for s in plan.segments)
    expected = "below claude-haiku-4-5's minimum cacheable length (4096)"
    assert any(expected in w for w in plan.warnings)


def test_a_persona_with_one_pair_gets_no_breakpoint_benefit_in_the_floor() -> None:
    info = _info("claude-sonnet-5")
    plan = _plan("persona:x", tokens=2000, shared_by=1)
    # One request: writing the segment (1.25×) would cost more than sending it plain.
    cost = cost_summary(info, [Usage(input_tokens=2500, output_tokens=0)], plan)
    assert cost.floor_usd == pytest.approx(2500 * 2.0 / 1e6)


def test_actual_floor_and_no_cache_worked_by_hand() -> None:
    info = _info("claude-sonnet-5")  # $2 in, $2.5 write (5m), $0.2 read, $10 out per million
    plan = _plan("tools+house", tokens=3000, shared_by=4)
    writer = Usage(input_tokens=500, cache_write_tokens=3000, output_tokens=100)
    readers = [Usage(input_tokens=500, cache_read_tokens=3000, output_tokens=100)] * 3
    cost = cost_summary(info, [writer, *readers], plan)
    output = 4 * 100 * 10.0
    assert cost.usd == pytest.approx((4 * 500 * 2.0 + 3000 * 2.5 + 9000 * 0.2 + output) / 1e6)
    # The floor: the segment written once and read three times; the tails at the base price.
    assert cost.floor_usd == pytest.approx((3000 * 2.5 + 9000 * 0.2 + 2000 * 2.0 + output) / 1e6)
    assert cost.no_cache_usd == pytest.approx((14000 * 2.0 + output) / 1e6)
    assert cost.usd == pytest.approx(cost.floor_usd)  # this run realised its plan
    assert cost.known and not cost.batch_discount
    half = cost_summary(info, [writer, *readers], plan, batch=True)
    assert half.usd == pytest.approx(cost.usd / 2)


def test_unknown_prices_and_missing_1h_write_price_are_unknown_not_zero() -> None:
    luna = _info("gpt-5.6-luna")  # no 1-hour write price
    assert usage_cost(luna, Usage(input_tokens=10, cache_write_tokens=5), ttl="1h") is None
    assert usage_cost(luna, Usage(input_tokens=10, output_tokens=5), ttl="1h") == pytest.approx(
        (10 * 0.2 + 5 * 1.2) / 1e6
    )
    fable = _info("claude-fable-5-1")  # no prices in the table
    assert not cost_summary(fable, [Usage(input_tokens=10)], None).known


def test_the_preflight_estimate_assumes_the_plan_is_realised() -> None:
    info = _info("claude-sonnet-5")
    plan = _plan("tools+house", tokens=3000, shared_by=4)
    est = estimate_run(info, plan, 4, est_tail_tokens=500, est_output_tokens=100)
    assert est.usd == est.floor_usd
    assert est.floor_usd == pytest.approx((3000 * 2.5 + 9000 * 0.2 + 2000 * 2.0 + 4000) / 1e6)
    assert est.no_cache_usd == pytest.approx((14000 * 2.0 + 4000) / 1e6)
