"""`POST /v1/messages`: validation, cache accounting, faults, and the streamed or plain reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from panel.emulator import anthropic_reply as ar
from panel.emulator.exchange import BadRequest, Exchange, serve, strict_schema_problem
from panel.emulator.pipeline import GARBAGE, begin_response, make_pacer, settle, stream_body
from panel.emulator.promptcache import CacheControlError, CacheResult
from panel.emulator.ratelimit import anthropic_headers, nominal_anthropic_headers
from panel.emulator.requestshape import check_anthropic
from panel.emulator.sse import (
    SSE_HEADERS,
    ClosingStreamingResponse,
    ConnectionReset,
    anthropic_error,
    anthropic_error_body,
    derived_id,
    dumps,
    event,
)
from panel.modeltable import ModelInfo, model_info
from panel.providers.cacheblocks import anthropic_blocks

VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING = ("temperature", "top_p", "top_k")
FORCED_MESSAGE = 'tool_choice: type "tool" and "any" are not supported for this model.'
THINKING_FORCED_MESSAGE = "Thinking may not be enabled when tool_choice forces tool use."
HTML_500 = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n"
)


def _bad(message: str) -> BadRequest:
    return BadRequest(400, "invalid_request_error", message)


def validate(body: dict[str, Any], version: str) -> ModelInfo:
    """The checks the real API makes that panel can trip; returns the model's table entry."""
    if version == "2026-10-21":
        for name in SAMPLING:
            if name in body:
                raise _bad(f"{name}: is not supported with anthropic-version 2026-10-21")
    check_anthropic(body)  # the body's shape first: nothing below reads a type-confused field
    if "model" not in body:
        raise _bad("model: Field required")
    if "max_tokens" not in body:
        raise _bad("max_tokens: Field required")
    if "messages" not in body:
        raise _bad("messages: Field required")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise _bad("max_tokens: Input should be a valid non-negative integer")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required")
    model = model_info(str(body["model"]))
    if model is None or model.provider != "anthropic":
        raise BadRequest(404, "not_found_error", f"model: {body['model']}")
    if max_tokens == 0 and body.get("stream"):
        raise _bad("max_tokens: must be greater than 0 when stream is true")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    names = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or "name" not in tool:
            raise _bad(f"tools.{i}: each tool needs a name")
        names.add(tool["name"])
        if "input_schema" in tool and tool.get("strict"):
            problem = strict_schema_problem(tool["input_schema"], all_required=False)
            if problem:
                raise _bad(f"tools.{i}.custom.input_schema{problem.removeprefix('schema')}")
    thinking = body.get("thinking")
    kind_of_thinking = thinking.get("type") if isinstance(thinking, dict) else None
    if kind_of_thinking == "disabled" and model.thinking_always:
        raise _bad("thinking: cannot be disabled for this model")
    thinking_on = kind_of_thinking in ("enabled", "adaptive") or (
        model.thinking_default and kind_of_thinking != "disabled"
    )
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            raise _bad("tool_choice: Input tag does not match any of the expected tags")
        if kind in ("any", "tool"):
            if not model.forced_tool_choice:
                raise _bad(FORCED_MESSAGE)
            if thinking_on:
                raise _bad(THINKING_FORCED_MESSAGE)
            if max_tokens == 0:
                raise _bad("max_tokens: must be greater than 0 when tool use is forced")
            if kind == "tool" and choice.get("name") not in names:
                raise _bad(f"tool_choice.name: tool {choice.get('name')!r} not found in tools")
        if kind != "none" and not tools and kind in ("any", "tool"):
            raise _bad("tool_choice: requires tools")
    return model


def _auto_ttl(body: dict[str, Any]) -> Any:
    cc = body.get("cache_control")
    if isinstance(cc, dict):
        return "1h" if cc.get("ttl") == "1h" else "5m"
    return None


async def create_message(request: Request) -> Response:
    return await serve(request, "anthropic", _handle, error_response)


def error_response(err: BadRequest, request_id: str) -> Response:
    """A `BadRequest` in the Anthropic error shape (Messages and Message Batches alike)."""
    return anthropic_error(
        err.status,
        err.kind,
        err.message,
        request_id,
        headers=err.extra.get("headers"),
        details=err.extra.get("details"),
    )


def _pre_response_fault(ex: Exchange) -> BadRequest | Response | None:
    fault = ex.fault
    if fault is None:
        return None
    if fault.name == "overloaded":
        return BadRequest(529, "overloaded_error", "Overloaded")
    if fault.name == "rate_limited":
        retry = fault.arg or "2"
        headers = {
            "retry-after": retry,
            "x-should-retry": "true",
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
        }
        return BadRequest(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per "
            "minute. Please reduce the prompt length or the maximum tokens requested, or try "
            "again later.",
            headers=headers,
        )
    if fault.name == "spend_cap":
        return BadRequest(
            429,
            "rate_limit_error",
            "You have reached your specified workspace API usage limits. You will regain access "
            "on the first day of next month.",
            details={"error_code": "enforced_spend_limit_reached"},
        )
    if fault.name == "auth":
        return BadRequest(401, "authentication_error", "invalid x-api-key")
    if fault.name == "server_error":
        return Response(
            HTML_500, status_code=500, media_type="text/html", headers={"request-id": ex.request_id}
        )
    return None


async def _handle(request: Request, ex: Exchange) -> Response:
    await ex.read(request)
    version = request.headers.get("anthropic-version")
    if not version:
        raise _bad("anthropic-version: header is required")
    if version not in VERSIONS:
        raise _bad(f"anthropic-version: {version!r} is not a supported version")
    body = ex.body
    model = validate(body, version)
    state = ex.state
    cache = state.anthropic_cache
    try:
        result = cache.account(
            ex.namespace, model, anthropic_blocks(body), auto_ttl=_auto_ttl(body)
        )
    except CacheControlError as exc:
        raise _bad(str(exc)) from exc
    try:
        ex.pick_fault(request)
        rl_headers: dict[str, str] = nominal_anthropic_headers()
        if state.ratelimiter.limits.any:
            verdict = state.ratelimiter.admit(ex.key, result.uncached_tokens + result.write_tokens)
            rl_headers = anthropic_headers(verdict)
            if not verdict.allowed:
                raise BadRequest(
                    429,
                    "rate_limit_error",
                    "This request would exceed your organization's rate limit. "
                    "Please try again later.",
                    headers=rl_headers,
                )
        early = _pre_response_fault(ex)
        if isinstance(early, BadRequest):
            raise early
        if early is not None:
            ex.finish(early.status_code)
            cache.abandon(result.ticket)
            return early
    except BaseException:
        cache.abandon(result.ticket)
        raise
    reply = ar.build_reply(
        body,
        model,
        seed=ex.seed,
        digest=ex.digest,
        behaviour=ex.behaviour,
        fault=ex.fault_name,
        draw=ex.draw,
    )
    headers = {**rl_headers, "request-id": ex.request_id}
    if body.get("stream"):
        return ClosingStreamingResponse(
            _stream(ex, model, result, reply),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    return await _plain(ex, model, result, reply, headers)


def _usage(ex: Exchange, result: CacheResult, output: int, *, final: bool) -> dict[str, Any]:
    if ex.fault_name == "missing_usage":
        # The SDK tolerates zeros at message_start and an empty usage on message_delta.
        return {} if final else {"input_tokens": 0, "output_tokens": 0}
    return ar.usage_fields(
        uncached=result.uncached_tokens,
        write_5m=result.write_5m_tokens,
        write_1h=result.write_1h_tokens,
        read=result.read_tokens,
        output=output,
        final=final,
    )


def _stream(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply
) -> AsyncGenerator[bytes, None]:
    usage = _usage(ex, result, reply.output_tokens, final=True)

    def events() -> list[tuple[ar.Tag, bytes, int]]:
        return ar.stream_events(
            reply,
            msg_id=derived_id("msg_01", ex.digest + str(ex.attempt)),
            model=str(ex.body["model"]),
            start_usage=_usage(ex, result, min(1, reply.output_tokens), final=False),
            final_usage=usage,
            seed=ex.seed,
            digest=ex.digest,
        )

    overloaded = event(
        "error", anthropic_error_body("overloaded_error", "Overloaded", ex.request_id)
    )
    return stream_body(
        ex,
        model,
        result,
        ex.state.anthropic_cache,
        output=reply.output_tokens,
        usage=usage,
        events=events,
        ping=event("ping", {"type": "ping"}),
        error_event=lambda fault, index: overloaded,
    )


async def _plain(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply, headers: dict[str, str]
) -> Response:
    fault = ex.fault_name
    pacer = make_pacer(ex, model, result)
    await pacer.first_token()
    if fault in ("overloaded_midstream", "error_after_partial", "garbage", "stall"):
        ex.state.anthropic_cache.abandon(result.ticket)
        if fault == "garbage":
            ex.finish(200)
            return Response(GARBAGE, media_type="application/json", headers=headers)
        if fault == "stall":
            return ClosingStreamingResponse(
                _plain_stall(ex), media_type="application/json", headers=headers
            )
        status, kind = (
            (529, "overloaded_error") if fault == "overloaded_midstream" else (500, "api_error")
        )
        ex.finish(status)
        message = "Overloaded" if status == 529 else "Internal server error"
        return anthropic_error(status, kind, message, ex.request_id)
    begin_response(ex, ex.state.anthropic_cache, result)
    await pacer.tokens_emitted(reply.output_tokens)
    usage = _usage(ex, result, reply.output_tokens, final=False)
    msg_id = derived_id("msg_01", ex.digest + str(ex.attempt))
    payload = dumps(
        ar.message_json(reply, msg_id=msg_id, model=str(ex.body["model"]), usage=usage)
    ).encode()
    settle(ex, model, result, reply.output_tokens)
    if fault == "eof_early":
        ex.finish(200, usage)
        return Response(
            payload[: len(payload) // 2], media_type="application/json", headers=headers
        )
    if fault == "reset_midstream":
        return ClosingStreamingResponse(
            _plain_reset(ex, payload, usage), media_type="application/json", headers=headers
        )
    ex.finish(200, usage)
    return Response(payload, media_type="application/json", headers=headers)


async def _plain_stall(ex: Exchange) -> AsyncIterator[bytes]:
    try:
        await asyncio.sleep(ex.state.config.stall_seconds)
        yield b""
    finally:
        ex.finish(200, note="stall")


async def _plain_reset(ex: Exchange, payload: bytes, usage: dict[str, Any]) -> AsyncIterator[bytes]:
    try:
        yield payload[: len(payload) // 2]
        await asyncio.sleep(0)
        raise ConnectionReset(ex.request_id)
    finally:
        ex.finish(200, usage, "connection reset")
