"""providers/responses.py against the emulator's /v1/responses: events, end evidence, faults,
the usage every billed failure carries, and what the provider sends."""

from __future__ import annotations

from typing import Any

import pytest

from panel.emulator.runner import EmulatorHandle
from panel.errors import ErrorClass, UpstreamError
from panel.providers.base import (
    ArgsDelta,
    PromptParts,
    Reask,
    StreamCompleted,
    StreamStarted,
    VerdictRequest,
)
from panel.providers.cacheblocks import responses_blocks, responses_breakpoints
from panel.providers.responses import EventReader, ResponsesProvider
from panel.providers.select import ModelSpec, open_provider
from panel.verdict import TOOL_NAME, Verdict, verdict_tool_schema


def _request(**extra: Any) -> VerdictRequest:
    parts = PromptParts(
        house="You review developer tools for a living. " * 150,
        persona='<persona id="builder" name="Ada Builder"> You build things.',
        tool="The tool under review: a YAML linter. Call record_verdict.",
    )
    return VerdictRequest(
        tool_slug="yamllint",
        persona_id="builder",
        parts=parts,
        tool_schema=verdict_tool_schema(),
        **extra,
    )


def _provider(emulator: EmulatorHandle, model: str = "gpt-6-astra") -> ResponsesProvider:
    return ResponsesProvider(
        model, api_key="test-key", base_url=emulator.openai_base_url, name="emulator"
    )


async def _collect(provider: ResponsesProvider, request: VerdictRequest) -> list[Any]:
    return [ev async for ev in provider.stream_verdict(request)]


async def test_streams_partial_verdicts_and_completes_with_usage(emulator):
    provider = _provider(emulator)
    try:
        events = await _collect(provider, _request())
    finally:
        await provider.aclose()
    assert isinstance(events[0], StreamStarted) and events[0].request_id
    deltas = [e for e in events if isinstance(e, ArgsDelta)]
    assert len(deltas) > 3 and "ship" in deltas[-1].snapshot
    done = events[-1]
    assert isinstance(done, StreamCompleted) and done.stop_reason == "completed"
    Verdict.model_validate(done.tool_input)
    assert done.call_id and done.call_id.startswith("call_")
    assert done.usage.known and done.usage.output_tokens > 0
    assert done.usage.cache_write_tokens > 0 and done.usage.cache_read_tokens == 0
    assert emulator.requests()[-1]["path"] == "/v1/responses"


async def test_second_request_reads_what_the_first_wrote(emulator):
    provider = _provider(emulator)
    try:
        first = (await _collect(provider, _request()))[-1]
        second = (await _collect(provider, _request()))[-1]
    finally:
        await provider.aclose()
    total = first.usage.input_tokens + first.usage.cache_write_tokens
    assert second.usage.cache_read_tokens == total and second.usage.cache_write_tokens == 0


@pytest.mark.parametrize(
    ("fault", "klass", "billed_usage"),
    [
        ("max_tokens", ErrorClass.TRUNCATED_MAX_TOKENS, True),
        ("invalid_json", ErrorClass.INVALID_JSON, True),
        ("no_tool_call", ErrorClass.NO_TOOL_CALL, True),
        ("refusal", ErrorClass.REFUSED, True),
        ("error_after_partial", ErrorClass.SERVER_ERROR, False),
        ("overloaded_midstream", ErrorClass.OVERLOADED, False),
        ("eof_early", ErrorClass.TRUNCATED_EOF, False),
        ("garbage", ErrorClass.PROTOCOL, False),
        ("overloaded", ErrorClass.SERVER_ERROR, False),  # a 503, as on Chat Completions
        ("rate_limited", ErrorClass.RATE_LIMITED, False),
        ("auth", ErrorClass.AUTH, False),
    ],
)
async def test_faults_are_classified_and_billed_ones_carry_usage(
    emulator, fault, klass, billed_usage
):
    provider = _provider(emulator)
    request = _request(extra_headers={"x-emulator-fault": fault})
    try:
        with pytest.raises(UpstreamError) as info:
            await _collect(provider, request)
    finally:
        await provider.aclose()
    err = info.value
    assert err.error_class is klass, err
    if billed_usage:  # the final event came with usage: the run's cost must see it
        assert err.billed and err.usage is not None
        assert err.usage["output_tokens"] > 0 or fault == "refusal"
        assert err.usage["input_tokens"] + err.usage["cache_write_tokens"] > 1000
    if fault == "max_tokens":
        assert err.raw_text  # the cut arguments, for the retry with more room


async def test_missing_usage_still_a_verdict_with_usage_unknown(emulator):
    provider = _provider(emulator)
    request = _request(extra_headers={"x-emulator-fault": "missing_usage"})
    try:
        done = (await _collect(provider, request))[-1]
    finally:
        await provider.aclose()
    assert isinstance(done, StreamCompleted) and not done.usage.known


async def test_a_stalled_stream_is_stalled_not_a_hang(emulator_factory):
    from panel.providers.streaming import StreamLimits

    emu = emulator_factory(stall_seconds=5.0)
    provider = ResponsesProvider(
        "gpt-6-astra",
        api_key="k",
        base_url=emu.openai_base_url,
        limits=StreamLimits(first_byte=5.0, idle=0.3, total=10.0),
    )
    request = _request(extra_headers={"x-emulator-fault": "stall"})
    try:
        with pytest.raises(UpstreamError) as info:
            await _collect(provider, request)
    finally:
        await provider.aclose()
    assert info.value.error_class is ErrorClass.STALLED


async def test_the_request_body(emulator):
    provider = _provider(emulator)
    try:
        params = provider.build_params(_request(breakpoints=frozenset({"house"})))
    finally:
        await provider.aclose()
    (tool,) = params["tools"]
    assert tool["type"] == "function" and tool["name"] == TOOL_NAME and tool["strict"] is True
    assert "function" not in tool  # flat, not the Chat Completions shape
    assert params["store"] is False and params["stream"] is True
    assert params["tool_choice"] == {"type": "function", "name": TOOL_NAME}
    assert params["max_output_tokens"] == 2048 and params["prompt_cache_key"].startswith("panel-")
    roles = [item["role"] for item in params["input"]]
    assert roles == ["developer", "developer", "user"]
    # Blocks: tools, house, persona, tool; the breakpoint sits on the house part only.
    assert len(responses_blocks(params)) == 4
    assert responses_breakpoints(params) == [1]


async def test_reask_resends_the_call_and_its_output(emulator):
    provider = _provider(emulator)
    reask = Reask("invalid_verdict", "ship must be a boolean", {"ship": "yes"}, call_id="call_1")
    try:
        params = provider.build_params(_request(reask=reask))
        done = (await _collect(provider, _request(reask=reask)))[-1]
    finally:
        await provider.aclose()
    kinds = [item["type"] for item in params["input"]]
    assert kinds[-2:] == ["function_call", "function_call_output"]
    assert params["input"][-1]["call_id"] == "call_1"
    assert isinstance(done, StreamCompleted)


async def test_select_picks_the_responses_provider_for_astra(emulator):
    env = {"PANEL_EMULATOR_URL": emulator.base_url}
    async with open_provider(ModelSpec("emulator", "gpt-6-astra"), env=env) as p:
        assert isinstance(p, ResponsesProvider) and p.synthetic
    key_env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": emulator.openai_base_url}
    async with open_provider(ModelSpec("openai", "gpt-6-astra"), env=key_env) as p:
        assert isinstance(p, ResponsesProvider) and p.name == "openai"
    async with open_provider(ModelSpec("openai", "gpt-5.6-luna"), env=key_env) as p:
        assert not isinstance(p, ResponsesProvider)  # Chat Completions stays its default


class _Ev:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def test_reader_ignores_other_calls_and_unknown_events() -> None:
    reader = EventReader("openai")
    item = _Ev(type="function_call", name="other_tool", call_id="c0")
    mine = _Ev(type="function_call", name=TOOL_NAME, call_id="c1")
    events = [
        _Ev(type="response.created", response=None),
        _Ev(type="response.some_future_event"),
        _Ev(type="response.output_item.added", output_index=0, item=item),
        _Ev(type="response.function_call_arguments.delta", output_index=0, delta='{"x": 1}'),
        _Ev(type="response.output_item.added", output_index=1, item=mine),
        _Ev(type="response.function_call_arguments.delta", output_index=1, delta='{"ship": '),
        _Ev(type="response.function_call_arguments.delta", output_index=1, delta="true}"),
    ]
    for ev in events:
        reader.handle(ev, None)
    with pytest.raises(UpstreamError) as info:  # no final event: truncated, never a verdict
        reader.finish(None)
    assert info.value.error_class is ErrorClass.TRUNCATED_EOF
    usage = _Ev(
        input_tokens=100,
        output_tokens=5,
        input_tokens_details=_Ev(cached_tokens=60, cache_write_tokens=30),
    )
    final = _Ev(type="response.completed", response=_Ev(output=[], usage=usage))
    reader.handle(final, None)
    done = reader.finish("req-1")
    assert done.tool_input == {"ship": True} and done.call_id == "c1"
    assert (done.usage.input_tokens, done.usage.cache_read_tokens) == (10, 60)
    assert done.usage.cache_write_tokens == 30


def test_reader_content_filter_is_a_refusal_and_failed_is_classified_by_code() -> None:
    reader = EventReader("openai")
    reader.handle(_Ev(type="response.created"), None)
    details = _Ev(reason="content_filter")
    reader.handle(
        _Ev(type="response.incomplete", response=_Ev(incomplete_details=details, usage=None)),
        None,
    )
    with pytest.raises(UpstreamError) as info:
        reader.finish(None)
    assert info.value.error_class is ErrorClass.REFUSED
    failed = EventReader("openai")
    failed.handle(_Ev(type="response.created"), None)
    error = _Ev(code="rate_limit_exceeded", message="slow down")
    failed.handle(_Ev(type="response.failed", response=_Ev(error=error, usage=None)), None)
    with pytest.raises(UpstreamError) as info:
        failed.finish(None)
    assert info.value.error_class is ErrorClass.RATE_LIMITED


def test_stream_started_waits_for_the_output_not_the_acknowledgement() -> None:
    reader = EventReader("openai")
    assert reader.handle(_Ev(type="response.created", response=None), "r") == []
    assert reader.handle(_Ev(type="response.in_progress", response=None), "r") == []
    assert reader.started and not reader.announced  # billed from here, but not yet begun
    item = _Ev(type="function_call", name=TOOL_NAME, call_id="c1")
    out = reader.handle(_Ev(type="response.output_item.added", output_index=0, item=item), "r")
    assert out == [StreamStarted("r")]
