"""Chat Completions over loopback with the official openai SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from panel.verdict import TOOL_NAME, Verdict, verdict_tool_schema


def _request(model: str = "gpt-5.6-luna", repeat: int = 400, **extra: Any) -> dict[str, Any]:
    tool = {
        "type": "function",
        "function": {"name": TOOL_NAME, "parameters": verdict_tool_schema(), "strict": True},
    }
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "You review developer tools. " * repeat},
            {"role": "user", "content": 'As <persona id="p1" name="Ada"> call record_verdict.'},
        ],
        "tools": [tool],
        **extra,
    }


def _stream(client: openai.OpenAI, **kwargs: Any) -> tuple[list[Any], str, Any]:
    chunks = list(
        client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
    )
    args = "".join(
        tc.function.arguments or ""
        for ch in chunks
        for choice in ch.choices
        for tc in choice.delta.tool_calls or []
    )
    return chunks, args, chunks[-1].usage


def test_streamed_tool_call_and_cached_tokens_on_repeat(openai_client):
    chunks, args, usage = _stream(openai_client, **_request())
    Verdict.model_validate(json.loads(args))
    first_tc = next(
        ch.choices[0].delta.tool_calls[0]
        for ch in chunks
        if ch.choices and ch.choices[0].delta.tool_calls
    )
    assert first_tc.id.startswith("call_") and first_tc.type == "function"
    assert first_tc.function.name == TOOL_NAME and first_tc.function.arguments == ""
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    assert chunks[-1].choices == []
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.prompt_tokens_details.cache_write_tokens == usage.prompt_tokens
    _, _, again = _stream(openai_client, **_request())
    assert again.prompt_tokens_details.cached_tokens == usage.prompt_tokens
    assert again.prompt_tokens_details.cache_write_tokens == 0


def test_older_model_rounds_cached_tokens(openai_client):
    openai_client.chat.completions.create(**_request(model="gpt-5.4-mini"))
    usage = openai_client.chat.completions.create(**_request(model="gpt-5.4-mini")).usage
    cached = usage.prompt_tokens_details.cached_tokens
    assert cached > 0 and cached % 128 == 0
    assert usage.prompt_tokens_details.cache_write_tokens is None


def test_plain_completion(openai_client):
    resp = openai_client.chat.completions.create(**_request())
    call = resp.choices[0].message.tool_calls[0]
    Verdict.model_validate(json.loads(call.function.arguments))
    assert resp.choices[0].finish_reason == "tool_calls"


def test_raw_stream_ends_with_done(emulator):
    r = httpx2.post(
        emulator.openai_base_url + "/chat/completions",
        json={**_request(), "stream": True},
        headers={"authorization": "Bearer k"},
    )
    assert r.text.rstrip().endswith("data: [DONE]")


def test_strict_schema_must_require_every_property(openai_client):
    kwargs = _request()
    kwargs["tools"][0]["function"]["parameters"] = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(**kwargs)
    assert info.value.code == "invalid_function_parameters"


def test_missing_key_is_401(emulator):
    r = httpx2.post(emulator.openai_base_url + "/chat/completions", json=_request())
    assert r.status_code == 401 and "error" in r.json()


def _h(fault: str) -> dict[str, Any]:
    return {"extra_headers": {"x-emulator-fault": fault}}


def test_overloaded_is_503(openai_client):
    with pytest.raises(openai.InternalServerError) as info:
        openai_client.chat.completions.create(**_request(), **_h("overloaded"))
    assert info.value.status_code == 503


def test_rate_limited_and_spend_cap(openai_client):
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(**_request(), **_h("rate_limited"))
    assert info.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(**_request(), **_h("spend_cap"))
    assert info.value.code == "insufficient_quota"


def test_max_tokens_fault_is_length(openai_client):
    chunks, args, _ = _stream(openai_client, **_request(), **_h("max_tokens"))
    finish = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert finish == ["length"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(args)


def test_refusal(openai_client):
    chunks, _, _ = _stream(openai_client, **_request(), **_h("refusal"))
    refusal = "".join(ch.choices[0].delta.refusal or "" for ch in chunks if ch.choices)
    assert refusal
    finish = [
        ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
    ]
    assert finish == ["stop"]


def test_midstream_error_raises(openai_client):
    with pytest.raises(openai.APIError):
        _stream(openai_client, **_request(), **_h("overloaded_midstream"))


def test_eof_early_has_no_finish_reason(openai_client):
    chunks = list(
        openai_client.chat.completions.create(**_request(), stream=True, **_h("eof_early"))
    )
    assert chunks and not any(ch.choices and ch.choices[0].finish_reason for ch in chunks)


def test_reset_midstream(openai_client):
    with pytest.raises((httpx2.RemoteProtocolError, openai.APIConnectionError)):
        _stream(openai_client, **_request(), **_h("reset_midstream"))


def test_no_tool_call_and_missing_usage(openai_client):
    resp = openai_client.chat.completions.create(**_request(), **_h("no_tool_call"))
    assert resp.choices[0].finish_reason == "stop" and resp.choices[0].message.content
    chunks, _, usage = _stream(openai_client, **_request(), **_h("missing_usage"))
    assert usage is None and chunks[-1].choices
