"""Why panel goes around instructor 1.17.0 for its own providers, and what it uses it for.

Each test pins a measured fact against the emulator with the official SDK clients wrapped by
instructor. If a future instructor fixes one, its test fails: revisit ARCHITECTURE.md then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import instructor
import openai
import pytest
from instructor import Mode
from instructor.core import InstructorRetryException
from pydantic import ValidationError

from panel.emulator.runner import EmulatorHandle
from panel.errors import ErrorClass
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import ArgsDelta, PromptParts, StreamCompleted, VerdictRequest
from panel.providers.classify import classify_exception
from panel.tokens import canonical_json
from panel.verdict import TOOL_NAME, Verdict, verdict_tool_schema
from tests.conftest import TEST_KEY

FORCED_400 = 'tool_choice: type "tool" and "any" are not supported for this model.'
# Thinking (on by default on Sonnet 5) excludes the forced tool call instructor sends.
NO_THINKING = {"type": "disabled"}
# Well above the 1,024-token minimum cacheable prefix of claude-sonnet-5.
HOUSE = "You review developer tools for a publication that ships verdicts. " * 200
USER: Any = [{"role": "user", "content": "Review the tool under review and record your verdict."}]


def _bodies(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [r["body"] for r in emulator.requests()]


@pytest.fixture
def async_anthropic(emulator: EmulatorHandle) -> Iterator[anthropic.AsyncAnthropic]:
    # Closed by the test (an async close needs the test's loop).
    yield anthropic.AsyncAnthropic(base_url=emulator.base_url, api_key=TEST_KEY, max_retries=0)


def _system() -> list[dict[str, Any]]:
    return [{"type": "text", "text": HOUSE, "cache_control": {"type": "ephemeral"}}]


def _panel_request(tool_text: str) -> VerdictRequest:
    return VerdictRequest(
        tool_slug="t",
        persona_id="p1",
        parts=PromptParts(house=HOUSE, persona='<persona id="p1" name="Ada">', tool=tool_text),
        tool_schema=verdict_tool_schema(),
        max_tokens=3000,
    )


async def _panel_usage(provider: AnthropicProvider, request: VerdictRequest) -> StreamCompleted:
    completed = None
    async for event in provider.stream_verdict(request):
        if isinstance(event, StreamCompleted):
            completed = event
    assert completed is not None
    return completed


# -- a. forced tool choice on the models that reject it -------------------------------------


async def test_a_tools_mode_forces_the_tool_and_the_5_5_generation_answers_400(
    emulator: EmulatorHandle, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    client = instructor.from_anthropic(async_anthropic, mode=Mode.TOOLS)
    with pytest.raises(InstructorRetryException) as info:
        await client.create(
            model="claude-opus-5-5", max_tokens=3000, messages=USER, response_model=Verdict
        )
    [sent] = emulator.requests()
    assert sent["status"] == 400
    assert sent["body"]["tool_choice"] == {
        "type": "tool",
        "name": "Verdict",
        "disable_parallel_tool_use": True,
    }
    # Not retried (an API error is not a validation failure), SDK error kept as the cause.
    assert info.value.n_attempts == 1
    cause = info.value.__cause__
    assert isinstance(cause, anthropic.BadRequestError) and cause.status_code == 400
    assert FORCED_400 in str(cause)
    assert classify_exception(cause, provider="anthropic").error_class is ErrorClass.INVALID_REQUEST

    # The workaround instructor allows: an explicit tool_choice is kept as given.
    verdict = await client.create(
        model="claude-opus-5-5",
        max_tokens=3000,
        messages=USER,
        response_model=Verdict,
        tool_choice={"type": "auto"},
    )
    await async_anthropic.close()
    assert isinstance(verdict, Verdict)
    assert emulator.requests()[-1]["status"] == 200
    assert _bodies(emulator)[-1]["tool_choice"] == {"type": "auto"}


async def test_a_on_the_openai_wire_an_explicit_tool_choice_is_overwritten(
    emulator: EmulatorHandle,
) -> None:
    sdk = openai.AsyncOpenAI(base_url=emulator.openai_base_url, api_key=TEST_KEY, max_retries=0)
    client = instructor.from_openai(sdk, mode=Mode.TOOLS)
    await client.create(
        model="gpt-5.6-luna",
        max_tokens=3000,
        messages=USER,
        response_model=Verdict,
        tool_choice="auto",
    )
    await sdk.close()
    assert _bodies(emulator)[-1]["tool_choice"] == {
        "type": "function",
        "function": {"name": "Verdict"},
    }


async def test_a_from_provider_anthropic_forwards_base_url_into_every_create_call(
    emulator: EmulatorHandle,
) -> None:
    client = instructor.from_provider(
        "anthropic/claude-sonnet-5", async_client=True, api_key=TEST_KEY, base_url=emulator.base_url
    )
    with pytest.raises(InstructorRetryException) as info:
        await client.create(messages=USER, response_model=Verdict, max_retries=0)
    sdk = client.client
    assert isinstance(sdk, anthropic.AsyncAnthropic)
    await sdk.close()
    assert isinstance(info.value.__cause__, TypeError)
    assert "base_url" in str(info.value.__cause__)
    assert emulator.requests() == []  # it never reached the wire
    # ... and the SDK client it builds keeps its own retries on (panel.run.retry is the owner).
    assert sdk.max_retries == 2


# -- b. tools blocks: create vs create_partial vs panel, and what that does to the cache -----


async def test_b_create_and_create_partial_send_different_tools_blocks_and_miss_the_cache(
    emulator: EmulatorHandle, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    client = instructor.from_anthropic(async_anthropic, mode=Mode.TOOLS)
    kwargs: dict[str, Any] = {
        "model": "claude-sonnet-5",
        "max_tokens": 3000,
        "system": _system(),
        "messages": USER,
        "response_model": Verdict,
        "thinking": NO_THINKING,  # instructor forces the tool; Sonnet 5 would think by default
    }
    await client.create(**kwargs)  # writes the tools+system prefix
    async for _ in client.create_partial(**kwargs):  # same system block, other tools block
        pass
    await client.create(**kwargs)  # control: the same path reads what the first wrote
    await async_anthropic.close()

    create_body, partial_body, _ = _bodies(emulator)
    assert [t["name"] for t in create_body["tools"]] == ["Verdict"]
    assert [t["name"] for t in partial_body["tools"]] == ["PartialVerdict"]
    assert partial_body["tool_choice"]["name"] == "PartialVerdict"
    assert partial_body["system"] == create_body["system"]

    panel_tools = AnthropicProvider("claude-sonnet-5", api_key=TEST_KEY).build_params(
        _panel_request("x")
    )["tools"]
    blocks = {canonical_json(b) for b in (create_body["tools"], partial_body["tools"], panel_tools)}
    assert len(blocks) == 3  # pairwise different: no two paths share a cached prefix
    assert [t["name"] for t in panel_tools] == [TOOL_NAME]

    first, partial, again = (r["usage"] for r in emulator.requests())
    assert first["cache_creation_input_tokens"] > 1024
    assert partial["cache_read_input_tokens"] == 0  # the prefix it needs was never written
    assert partial["cache_creation_input_tokens"] > 1024  # so it pays the write premium again
    assert again["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


async def test_b_two_panel_built_requests_share_the_cache(emulator: EmulatorHandle) -> None:
    provider = AnthropicProvider("claude-sonnet-5", api_key=TEST_KEY, base_url=emulator.base_url)
    try:
        first = await _panel_usage(provider, _panel_request("Tool one: a linter."))
        second = await _panel_usage(provider, _panel_request("Tool two: a profiler."))
    finally:
        await provider.aclose()
    assert first.usage.cache_write_tokens > 1024 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens


# -- c. synchronous create_partial is not incremental ---------------------------------------


def _sync_partial(handle: EmulatorHandle, kwargs: dict[str, Any]) -> tuple[float, float, bool]:
    with anthropic.Anthropic(base_url=handle.base_url, api_key=TEST_KEY, max_retries=0) as sdk:
        client = instructor.from_anthropic(sdk, mode=Mode.TOOLS)
        logged = len(handle.requests())
        start, first, in_flight = time.perf_counter(), None, False
        for _ in client.create_partial(**kwargs):
            if first is None:
                first = time.perf_counter() - start
                in_flight = len(handle.requests()) == logged  # the emulator logs at stream end
        assert first is not None
        return first, time.perf_counter() - start, in_flight


async def _async_partial(
    handle: EmulatorHandle, kwargs: dict[str, Any]
) -> tuple[float, float, bool]:
    sdk = anthropic.AsyncAnthropic(base_url=handle.base_url, api_key=TEST_KEY, max_retries=0)
    client = instructor.from_anthropic(sdk, mode=Mode.TOOLS)
    logged = len(handle.requests())
    start, first, in_flight = time.perf_counter(), None, False
    async for _ in client.create_partial(**kwargs):
        if first is None:
            first = time.perf_counter() - start
            in_flight = len(handle.requests()) == logged
    await sdk.close()
    assert first is not None
    return first, time.perf_counter() - start, in_flight


async def _panel_stream(handle: EmulatorHandle) -> tuple[float, float, bool]:
    provider = AnthropicProvider("claude-sonnet-5", api_key=TEST_KEY, base_url=handle.base_url)
    logged = len(handle.requests())
    start, first, in_flight = time.perf_counter(), None, False
    try:
        async for event in provider.stream_verdict(_panel_request("Review the tool.")):
            if isinstance(event, ArgsDelta) and first is None:
                first = time.perf_counter() - start
                in_flight = len(handle.requests()) == logged
    finally:
        await provider.aclose()
    assert first is not None
    return first, time.perf_counter() - start, in_flight


async def test_c_sync_create_partial_yields_only_after_the_stream_ends(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = emulator_factory(latency_scale=0.2)  # ~1.5 s per verdict on claude-sonnet-5
    kwargs: dict[str, Any] = {
        "model": "claude-sonnet-5",
        "max_tokens": 3000,
        "messages": USER,
        "response_model": Verdict,
        "thinking": NO_THINKING,
    }
    sync_first, sync_total, sync_in_flight = await asyncio.to_thread(_sync_partial, handle, kwargs)
    async_first, async_total, async_in_flight = await _async_partial(handle, kwargs)
    panel_first, panel_total, panel_in_flight = await _panel_stream(handle)

    # Ratios measured in this test (time to first partial / total); ~1.0 vs ~0.2 here.
    assert sync_first / sync_total > 0.8
    assert async_first / async_total < 0.5
    assert panel_first / panel_total < 0.5
    # The same fact without a clock: was the response still streaming at the first partial?
    assert not sync_in_flight
    assert async_in_flight and panel_in_flight


# -- d. what instructor is good at: the validation re-ask -----------------------------------


def _fault_first_request(fault: str) -> httpx2.AsyncClient:
    """An HTTP client that asks the emulator for `fault` on its first request only."""
    sent = 0

    async def hook(request: httpx2.Request) -> None:
        nonlocal sent
        sent += 1
        if sent == 1:
            request.headers["x-emulator-fault"] = fault

    return httpx2.AsyncClient(event_hooks={"request": [hook]})


async def test_d_max_retries_reasks_after_a_schema_violation_and_recovers(
    emulator: EmulatorHandle,
) -> None:
    sdk = anthropic.AsyncAnthropic(
        base_url=emulator.base_url,
        api_key=TEST_KEY,
        max_retries=0,
        http_client=_fault_first_request("schema_violation"),
    )
    client = instructor.from_anthropic(sdk, mode=Mode.TOOLS)
    verdict, raw = await client.create_with_completion(
        model="claude-sonnet-5",
        max_tokens=3000,
        messages=USER,
        response_model=Verdict,
        max_retries=1,
        thinking=NO_THINKING,
    )
    await sdk.close()
    assert isinstance(verdict, Verdict)
    first, second = emulator.requests()
    assert first["fault"] == "schema_violation" and second["fault"] is None
    # The re-ask: the bad tool call, then a tool_result carrying the pydantic error.
    reask = second["body"]["messages"][-1]["content"][0]
    assert reask["type"] == "tool_result" and reask["is_error"] is True
    assert "Validation Error found" in reask["content"] and "ship" in reask["content"]
    # Usage is summed over both attempts.
    assert (
        raw.usage.input_tokens == first["usage"]["input_tokens"] + (second["usage"]["input_tokens"])
    )
    assert (
        raw.usage.output_tokens
        == first["usage"]["output_tokens"] + (second["usage"]["output_tokens"])
    )


async def test_d_a_fault_header_hits_every_reask_because_each_is_a_new_body(
    emulator: EmulatorHandle, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    # `@1` counts attempts per body; instructor's re-ask grows the body, so it is attempt 1 too.
    client = instructor.from_anthropic(async_anthropic, mode=Mode.TOOLS)
    with pytest.raises(InstructorRetryException) as info:
        await client.create(
            model="claude-sonnet-5",
            max_tokens=3000,
            messages=USER,
            response_model=Verdict,
            max_retries=1,
            thinking=NO_THINKING,
            extra_headers={"x-emulator-fault": "schema_violation@1"},
        )
    await async_anthropic.close()
    assert info.value.n_attempts == 2
    assert isinstance(info.value.__cause__, ValidationError)
    assert [(r["attempt"], r["fault"]) for r in emulator.requests()] == [
        (1, "schema_violation"),
        (1, "schema_violation"),
    ]
