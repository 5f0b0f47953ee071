"""Prompt-cache usage as the SDK sees it: writes, reads, timing of visibility, TTLs, keys."""

from __future__ import annotations

import asyncio

import anthropic
import httpx2

from panel.emulator import anthropic_api, pipeline


def test_write_then_read(anthropic_client, anthropic_request, emulator):
    first = anthropic_client.messages.create(**anthropic_request())
    second = anthropic_client.messages.create(**anthropic_request())
    written = first.usage.cache_creation_input_tokens
    assert written > 1024 and first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == written
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens  # after the breakpoint
    stats = emulator.stats()
    assert stats["cache"] == {
        "writes": 1,
        "reads": 1,
        "write_tokens": written,
        "read_tokens": written,
    }
    assert stats["billed_usd"] > 0


def test_one_hour_ttl_is_reported_separately(anthropic_client, anthropic_request):
    kwargs = anthropic_request()
    kwargs["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    usage = anthropic_client.messages.create(**kwargs).usage
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens > 0
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_below_minimum_prefix_caches_nothing(anthropic_client, anthropic_request):
    for _ in range(2):
        usage = anthropic_client.messages.create(**anthropic_request(system_repeat=20)).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_entries_expire_after_ttl(anthropic_client, anthropic_request, emulator):
    anthropic_client.messages.create(**anthropic_request())
    httpx2.post(emulator.base_url + "/emulator/clock", json={"advance": 301})
    usage = anthropic_client.messages.create(**anthropic_request()).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0


def test_cache_is_isolated_per_key(emulator, anthropic_client, anthropic_request):
    anthropic_client.messages.create(**anthropic_request())
    with anthropic.Anthropic(base_url=emulator.base_url, api_key="another-key", max_retries=0) as c:
        usage = c.messages.create(**anthropic_request()).usage
    assert usage.cache_read_input_tokens == 0


async def test_concurrent_writers_all_write_but_later_request_reads(
    emulator_factory, anthropic_request, monkeypatch
):
    # Latency on, so the four first requests overlap and the late one starts mid-stream. The
    # first token waits (on the emulator's loop) until all four are in: on a loaded machine
    # the fourth could otherwise arrive after the first response began, and read.
    em = emulator_factory(latency_scale=0.3)
    make_pacer = pipeline.make_pacer
    pacers: list[object] = []
    paced: list[asyncio.Event] = []  # one event, made on the emulator's loop

    def gated_pacer(ex, model, result):
        if not paced:
            paced.append(asyncio.Event())
        pacer = make_pacer(ex, model, result)
        pacers.append(pacer)
        if len(pacers) >= 4:
            paced[0].set()
        first_token = pacer.first_token

        async def once_all_four_are_in() -> None:
            await paced[0].wait()
            await first_token()

        pacer.first_token = once_all_four_are_in
        return pacer

    monkeypatch.setattr(pipeline, "make_pacer", gated_pacer)  # streamed responses
    monkeypatch.setattr(anthropic_api, "make_pacer", gated_pacer)  # the others
    kwargs = anthropic_request(model="claude-haiku-5-5")
    async with anthropic.AsyncAnthropic(base_url=em.base_url, api_key="k", max_retries=0) as c:
        started = asyncio.Event()

        async def first() -> anthropic.types.Message:
            async with c.messages.stream(**kwargs) as s:
                async for ev in s:
                    if ev.type == "message_start":
                        started.set()
                return await s.get_final_message()

        async def later() -> anthropic.types.Message:
            await started.wait()
            return await c.messages.create(**kwargs)

        results = await asyncio.gather(
            first(), *(c.messages.create(**kwargs) for _ in range(3)), later()
        )
    concurrent, late = results[:4], results[4]
    written = concurrent[0].usage.cache_creation_input_tokens
    assert written > 0
    for msg in concurrent:
        assert msg.usage.cache_creation_input_tokens == written
        assert msg.usage.cache_read_input_tokens == 0
    assert late.usage.cache_read_input_tokens == written
    assert em.stats()["max_in_flight"] >= 4
