"""Prompt-cache accounting: the rules a user sees in the usage fields."""

from __future__ import annotations

from typing import Any

import pytest

from panel.emulator.promptcache import (
    AnthropicCache,
    CacheControlError,
    CacheResult,
    OpenAICache,
)
from panel.modeltable import ModelInfo, model_info
from panel.providers.cacheblocks import anthropic_blocks, openai_blocks
from panel.tokens import count_json_tokens, count_tokens

CC = {"type": "ephemeral"}
CC_1H = {"type": "ephemeral", "ttl": "1h"}
TOOL = {"name": "record_verdict", "description": "Record it.", "input_schema": {"type": "object"}}


def model(model_id: str) -> ModelInfo:
    info = model_info(model_id)
    assert info is not None
    return info


SONNET = model("claude-sonnet-5")  # 1,024-token minimum


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def words(n: int, tag: str) -> str:
    # Every short word counts one token, so n words are n tokens.
    return " ".join(f"{tag}{i % 97}" for i in range(n))


def body(
    *,
    house: str = words(1100, "h"),
    persona: str = words(300, "p"),
    tail: str = "review tool x",
    house_cc: dict[str, Any] | None = CC,
    persona_cc: dict[str, Any] | None = CC,
    tool_choice: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    system: list[dict[str, Any]] = [{"type": "text", "text": house}]
    if house_cc:
        system[0]["cache_control"] = house_cc
    msg: dict[str, Any] = {"type": "text", "text": persona}
    if persona_cc:
        msg["cache_control"] = persona_cc
    b: dict[str, Any] = {
        "model": SONNET.id,
        "tools": tools if tools is not None else [TOOL],
        "system": system,
        "messages": [{"role": "user", "content": [msg, {"type": "text", "text": tail}]}],
    }
    if tool_choice is not None:
        b["tool_choice"] = tool_choice
    return b


def total(result: CacheResult) -> int:
    return result.read_tokens + result.write_tokens + result.uncached_tokens


def test_blocks_follow_prefix_order_and_count_tokens() -> None:
    b = body()
    b["system"] = "plain system text"
    blocks = anthropic_blocks(b)
    assert [x.level for x in blocks] == ["tools", "system", "messages", "messages"]
    assert blocks[0].tokens == count_json_tokens(TOOL)
    assert blocks[1].tokens == count_tokens("plain system text")
    assert [x.ttl for x in blocks] == [None, None, "5m", None]
    # Moving cache_control does not change what a block is.
    assert anthropic_blocks(body(persona_cc=CC_1H))[2].digest == blocks[2].digest


def test_write_then_read_after_activation() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body())
    tail = count_tokens("review tool x")
    first = cache.account("key", SONNET, blocks)
    assert (first.read_tokens, first.uncached_tokens) == (0, tail)
    assert first.write_5m_tokens == sum(b.tokens for b in blocks) - tail
    cache.activate(first.ticket)
    second = cache.account("key", SONNET, anthropic_blocks(body(tail="another tool")))
    assert second.read_tokens == first.write_tokens
    assert second.write_tokens == 0
    assert second.uncached_tokens == count_tokens("another tool")


def test_concurrent_same_prefix_requests_both_write() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body())
    a = cache.account("key", SONNET, blocks)
    b = cache.account("key", SONNET, blocks)
    assert a.write_tokens == b.write_tokens > 0
    assert a.read_tokens == b.read_tokens == 0
    cache.activate(a.ticket)
    cache.activate(b.ticket)
    c = cache.account("key", SONNET, blocks)
    assert c.read_tokens == a.write_tokens and c.write_tokens == 0


def test_abandoned_request_writes_nothing() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body())
    a = cache.account("key", SONNET, blocks)
    cache.abandon(a.ticket)
    cache.activate(a.ticket)  # too late: abandoned stays abandoned
    assert cache.account("key", SONNET, blocks).read_tokens == 0


def lookback_body(n_blocks: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": f"part {i}"} for i in range(n_blocks)]
    content[-1]["cache_control"] = CC
    return {
        "tools": [TOOL],
        "system": [{"type": "text", "text": words(1100, "h")}],
        "messages": [{"role": "user", "content": content}],
    }


@pytest.mark.parametrize(("n_blocks", "found"), [(19, True), (20, False), (30, False)])
def test_lookback_reaches_twenty_blocks(n_blocks: int, found: bool) -> None:
    cache = AnthropicCache(Clock())
    first = cache.account("key", SONNET, anthropic_blocks(body()))  # writes the house prefix
    cache.activate(first.ticket)
    house = sum(b.tokens for b in anthropic_blocks(body())[:2])
    # The only breakpoint is the last block; the house prefix ends n_blocks blocks before it.
    result = cache.account("key", SONNET, anthropic_blocks(lookback_body(n_blocks)))
    assert result.read_tokens == (house if found else 0)
    assert total(result) == sum(b.tokens for b in anthropic_blocks(lookback_body(n_blocks)))


def test_below_minimum_caches_nothing() -> None:
    cache = AnthropicCache(Clock())
    small = body(house="short house rules", persona="short persona")
    blocks = anthropic_blocks(small)
    for _ in range(2):
        result = cache.account("key", SONNET, blocks)
        assert (result.read_tokens, result.write_tokens) == (0, 0)
        assert result.uncached_tokens == sum(b.tokens for b in blocks)
        cache.activate(result.ticket)
    # The same prompt reaches the 512-token minimum of Opus 5 only with a longer house block.
    assert cache.account("key", model("claude-opus-5"), blocks).write_tokens == 0


def test_breakpoint_below_minimum_is_skipped_but_later_one_writes() -> None:
    cache = AnthropicCache(Clock())
    b = body(house="short house", persona=words(1100, "p"))
    result = cache.account("key", SONNET, anthropic_blocks(b))
    assert result.write_tokens == sum(x.tokens for x in anthropic_blocks(b)[:3])


def test_ttl_expires_from_request_start_and_refreshes_on_hit() -> None:
    clock = Clock()
    cache = AnthropicCache(clock)
    blocks = anthropic_blocks(body())
    first = cache.account("key", SONNET, blocks)
    clock.now += 100
    cache.activate(first.ticket)  # the lifetime still counts from the request's start
    clock.now += 199
    assert cache.account("key", SONNET, blocks).read_tokens > 0  # refreshed: now + 5 min
    clock.now += 299
    assert cache.account("key", SONNET, blocks).read_tokens > 0
    clock.now += 301
    miss = cache.account("key", SONNET, blocks)
    assert miss.read_tokens == 0 and miss.write_tokens > 0


def test_one_hour_ttl_outlives_five_minutes() -> None:
    clock = Clock()
    cache = AnthropicCache(clock)
    blocks = anthropic_blocks(body(house_cc=CC_1H, persona_cc=CC))
    cache.activate(cache.account("key", SONNET, blocks).ticket)
    clock.now += 1800
    result = cache.account("key", SONNET, blocks)
    house = sum(b.tokens for b in blocks[:2])
    assert result.read_tokens == house  # the 1h house entry survived, the 5m persona did not
    assert result.write_5m_tokens == blocks[2].tokens


def test_write_tokens_split_by_breakpoint_ttl() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body(house_cc=CC_1H, persona_cc=CC))
    result = cache.account("key", SONNET, blocks)
    assert result.write_1h_tokens == blocks[0].tokens + blocks[1].tokens
    assert result.write_5m_tokens == blocks[2].tokens


def test_namespaces_are_isolated() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body())
    cache.activate(cache.account("key-a", SONNET, blocks).ticket)
    assert cache.account("key-b", SONNET, blocks).read_tokens == 0
    assert cache.account("key-a", SONNET, blocks).read_tokens > 0


def test_models_do_not_share_entries() -> None:
    cache = AnthropicCache(Clock())
    blocks = anthropic_blocks(body())
    cache.activate(cache.account("key", SONNET, blocks).ticket)
    assert cache.account("key", model("claude-sonnet-4-5"), blocks).read_tokens == 0


def test_tool_choice_change_invalidates_messages_only() -> None:
    cache = AnthropicCache(Clock())
    auto = anthropic_blocks(body(tool_choice={"type": "auto"}))
    cache.activate(cache.account("key", SONNET, auto).ticket)
    forced = anthropic_blocks(body(tool_choice={"type": "any"}))
    result = cache.account("key", SONNET, forced)
    assert result.read_tokens == auto[0].tokens + auto[1].tokens  # tools + system still read
    assert result.write_5m_tokens == forced[2].tokens


def test_tools_change_invalidates_everything() -> None:
    cache = AnthropicCache(Clock())
    cache.activate(cache.account("key", SONNET, anthropic_blocks(body())).ticket)
    other_tool = {**TOOL, "description": "Record it, please."}
    result = cache.account("key", SONNET, anthropic_blocks(body(tools=[other_tool])))
    assert result.read_tokens == 0 and result.write_tokens > 0


def test_automatic_caching_breakpoint_at_last_block() -> None:
    cache = AnthropicCache(Clock())
    b = body(house_cc=None, persona_cc=None)
    blocks = anthropic_blocks(b)
    result = cache.account("key", SONNET, blocks, auto_ttl="5m")
    assert result.write_5m_tokens == sum(x.tokens for x in blocks)
    assert result.uncached_tokens == 0
    assert cache.account("key", SONNET, blocks).write_tokens == 0  # no breakpoint, no cache


def test_breakpoint_limit_and_ttl_order_are_enforced() -> None:
    cache = AnthropicCache(Clock())
    b = lookback_body(5)
    for block in b["messages"][0]["content"]:
        block["cache_control"] = CC
    with pytest.raises(CacheControlError, match="maximum of 4"):
        cache.account("key", SONNET, anthropic_blocks(b))
    with pytest.raises(CacheControlError, match="1h"):
        cache.account("key", SONNET, anthropic_blocks(body(house_cc=CC, persona_cc=CC_1H)))


def openai_body(tail: str = "review tool x", system: str = words(1100, "s")) -> dict[str, Any]:
    return {
        "model": "gpt-5.6-luna",
        "tools": [{"type": "function", "function": {"name": "record_verdict"}}],
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": tail}],
    }


def test_openai_exact_accounting_reports_writes_then_exact_reads() -> None:
    cache = OpenAICache(Clock())
    luna = model("gpt-5.6-luna")
    blocks = openai_blocks(openai_body())
    first = cache.account("key", luna, blocks)
    whole = sum(b.tokens for b in blocks)
    assert (first.read_tokens, first.write_5m_tokens, first.uncached_tokens) == (0, whole, 0)
    assert cache.account("key", luna, blocks).read_tokens == 0  # not activated yet
    cache.activate(first.ticket)
    other = openai_blocks(openai_body(tail="a different tool entirely"))
    second = cache.account("key", luna, other)
    assert second.read_tokens == other[0].tokens + other[1].tokens
    assert second.write_5m_tokens == other[2].tokens


def test_openai_rounded_accounting_rounds_down_and_reports_no_writes() -> None:
    cache = OpenAICache(Clock())
    mini = model("gpt-5.4-mini")
    blocks = openai_blocks(openai_body())
    first = cache.account("key", mini, blocks)
    assert first.write_tokens == 0 and first.uncached_tokens == sum(b.tokens for b in blocks)
    cache.activate(first.ticket)
    second = cache.account("key", mini, openai_blocks(openai_body(tail="another")))
    prefix = blocks[0].tokens + blocks[1].tokens
    assert second.read_tokens == prefix - prefix % 128 > 0
    assert second.read_tokens % 128 == 0
    assert total(second) == sum(b.tokens for b in openai_blocks(openai_body(tail="another")))


def test_openai_short_prompts_are_not_cached() -> None:
    cache = OpenAICache(Clock())
    luna = model("gpt-5.6-luna")
    blocks = openai_blocks(openai_body(system="short"))
    cache.activate(cache.account("key", luna, blocks).ticket)
    result = cache.account("key", luna, blocks)
    assert (result.read_tokens, result.write_tokens) == (0, 0)


def test_openai_prompt_cache_key_partitions() -> None:
    cache = OpenAICache(Clock())
    luna = model("gpt-5.6-luna")
    blocks = openai_blocks(openai_body())
    cache.activate(cache.account("key", luna, blocks, cache_key="run-a").ticket)
    assert cache.account("key", luna, blocks, cache_key="run-b").read_tokens == 0
    assert cache.account("key", luna, blocks).read_tokens == 0
    assert cache.account("key", luna, blocks, cache_key="run-a").read_tokens > 0


def test_openai_entries_expire() -> None:
    clock = Clock()
    cache = OpenAICache(clock)
    luna = model("gpt-5.6-luna")
    blocks = openai_blocks(openai_body())
    cache.activate(cache.account("key", luna, blocks).ticket)
    clock.now += 301
    assert cache.account("key", luna, blocks).read_tokens == 0


def test_store_ttl_keeps_entries_longer_without_changing_the_bill() -> None:
    clock = Clock()
    cache = AnthropicCache(clock)
    blocks = anthropic_blocks(body())
    first = cache.account("key", SONNET, blocks, store_ttl="1h")
    assert first.write_5m_tokens > 0 and first.write_1h_tokens == 0  # billed as requested
    cache.activate(first.ticket)
    clock.now += 1800
    assert cache.account("key", SONNET, blocks).read_tokens == first.write_5m_tokens
