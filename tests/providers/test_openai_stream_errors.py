"""OpenAI-wire streams shaped like the ones real servers send (own fixtures, written from the
recorded corpus's shapes): where a stream is complete, and how an error inside it is classified."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from panel.errors import ErrorClass, UpstreamError
from panel.inputs.prompts import PromptParts
from panel.providers.base import StreamCompleted, StreamEvent, VerdictRequest
from panel.providers.openai import OpenAIProvider
from panel.verdict import TOOL_NAME, verdict_tool_schema

USAGE = {"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53}


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def _call(args: str, head: bool = False) -> dict[str, Any]:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": args}}
    if head:
        call.update(id="call_1", type="function")
        call["function"]["name"] = TOOL_NAME
    return {"tool_calls": [call]}


def _sse(*items: dict[str, Any] | str) -> bytes:
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item if item.startswith(("event:", ":")) else f"data: {item}\n\n")
        else:
            out.append(f"data: {json.dumps(item)}\n\n")
    return "".join(out).encode()


def _provider(body: bytes) -> OpenAIProvider:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body, headers={"content-type": "text/event-stream", "x-request-id": "r1"}
        )

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIProvider(
        "m", api_key="k", base_url="http://127.0.0.1:9/v1", flavour="compatible",
        name="compatible", http_client=client,
    )  # fmt: skip


def _request() -> VerdictRequest:
    return VerdictRequest(
        tool_slug="t",
        persona_id="p",
        parts=PromptParts(house="house", persona="persona", tool="tool"),
        tool_schema=verdict_tool_schema(),
    )


async def _events(body: bytes) -> list[StreamEvent]:
    provider = _provider(body)
    try:
        return [e async for e in provider.stream_verdict(_request())]
    finally:
        await provider.aclose()


async def _error(body: bytes) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        await _events(body)
    return info.value


async def test_no_finish_reason_but_usage_after_a_whole_call_is_a_verdict() -> None:
    body = _sse(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"role": "assistant", **_call("", head=True)}),
        _chunk(_call('{"ship": ')),
        _chunk(_call("true}")),
        _chunk({"content": ""}, usage=USAGE),
        "[DONE]",
    )
    done = (await _events(body))[-1]
    assert isinstance(done, StreamCompleted) and done.tool_input == {"ship": True}
    assert done.usage.input_tokens == 43 and done.usage.output_tokens == 10


async def test_no_finish_reason_and_half_a_call_is_truncation_with_the_usage() -> None:
    body = _sse(_chunk(_call('{"ship": tr', head=True)), _chunk({}, usage=USAGE), "[DONE]")
    err = await _error(body)
    assert err.error_class is ErrorClass.TRUNCATED_EOF and err.billed
    assert err.usage is not None and err.usage["output_tokens"] == 10


async def test_token_limit_error_after_finish_length_is_a_truncation() -> None:
    body = _sse(
        ": OPENROUTER PROCESSING\n\n",
        _chunk({"content": "", "reasoning": "to respond"}, "length"),
        _chunk({"content": ""}, "length"),
        {**_chunk({"content": ""}), "error": {"code": 400, "message": "Token limit reached"}},
        "[DONE]",
    )
    err = await _error(body)
    assert err.error_class is ErrorClass.TRUNCATED_MAX_TOKENS and err.billed
    assert "Token limit reached" in err.message


async def test_a_tool_call_the_server_failed_to_validate_is_invalid_json() -> None:
    error = {
        "error": {
            "message": "Tool call validation failed: parameters did not match schema",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
            "failed_generation": '{"name": "record_verdict", "arguments": {"x": 1}}',
            "status_code": 400,
        }
    }
    body = _sse(_chunk({"reasoning": "We need"}), f"event: error\ndata: {json.dumps(error)}\n\n")
    err = await _error(body)
    assert err.error_class is ErrorClass.INVALID_JSON and err.billed
    assert err.raw_text and "record_verdict" in err.raw_text


@pytest.mark.parametrize(
    ("error", "klass"),
    [
        ({"message": "Overloaded", "code": 503}, ErrorClass.OVERLOADED),
        ({"message": "busy", "type": "overloaded_error"}, ErrorClass.OVERLOADED),
        ({"message": "slow down", "code": 429}, ErrorClass.RATE_LIMITED),
        ({"message": "The server had an error", "type": "server_error"}, ErrorClass.SERVER_ERROR),
    ],
)
async def test_other_errors_inside_the_stream_by_their_code(
    error: dict[str, Any], klass: ErrorClass
) -> None:
    body = _sse(_chunk(_call('{"ship"', head=True)), {"error": error})
    err = await _error(body)
    assert err.error_class is klass and err.billed
