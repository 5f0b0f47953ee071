"""`POST /v1/chat/completions`: the OpenAI wire format over the same stub, cache and faults.

OpenAI has no 529: `overloaded` answers 503 with a `server_error` body (what OpenAI sends when
it sheds load). Mid-stream errors are a `data: {"error": …}` chunk, which the SDK raises as
APIError.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from panel.emulator import anthropic_reply as ar
from panel.emulator.anthropic_api import HTML_500
from panel.emulator.exchange import BadRequest, Exchange, serve, strict_schema_problem
from panel.emulator.pipeline import GARBAGE, begin_response, make_pacer, settle, stream_body
from panel.emulator.promptcache import CacheResult
from panel.emulator.ratelimit import nominal_openai_headers, openai_headers
from panel.emulator.requestshape import check_openai
from panel.emulator.sse import (
    SSE_HEADERS,
    ClosingStreamingResponse,
    ConnectionReset,
    data_only,
    derived_id,
    dumps,
    openai_error,
    quoted,
)
from panel.modeltable import ModelInfo, model_info
from panel.providers.cacheblocks import openai_blocks

Chunk = tuple[ar.Tag, bytes, int]
_MIDSTREAM_MESSAGE = "The server had an error while processing your request. Sorry about that!"
_MIDSTREAM_ERROR: dict[str, Any] = {
    "error": {
        "message": _MIDSTREAM_MESSAGE,
        "type": "server_error",
        "param": None,
        "code": None,
    }
}


def _bad(message: str, param: str | None = None, code: str | None = None) -> BadRequest:
    return BadRequest(400, "invalid_request_error", message, param=param, code=code)


def validate(body: dict[str, Any]) -> ModelInfo:
    check_openai(body)  # the body's shape first: nothing below reads a type-confused field
    for name in ("model", "messages"):
        if name not in body:
            raise _bad(
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise _bad("Invalid 'messages': empty array.", param="messages", code="empty_array")
    model = model_info(str(body["model"]))
    if model is None or model.provider != "openai":
        raise BadRequest(
            404,
            "invalid_request_error",
            f"The model `{body['model']}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if body.get("tools") and not model.takes("chat_completions"):
        raise _bad(  # gpt-6-astra: tool calls only on the Responses API (api-facts.md)
            f"Function tools are not supported with {model.id} in /v1/chat/completions. "
            "Use /v1/responses instead.",
            param="tools",
            code="unsupported_parameter",
        )
    for i, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or "name" not in fn:
            raise _bad(
                f"Missing required parameter: 'tools[{i}].function'.", param=f"tools[{i}].function"
            )
        if fn.get("strict"):
            problem = strict_schema_problem(fn.get("parameters") or {}, all_required=True)
            if problem:
                raise _bad(
                    f"Invalid schema for function '{fn['name']}': {problem}",
                    param=f"tools[{i}].function.parameters",
                    code="invalid_function_parameters",
                )
    return model


def anthropic_view(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the shared reply builder reads it (tools, choice, budget, texts)."""
    tools = [
        {"name": t["function"]["name"], "input_schema": t["function"].get("parameters") or {}}
        for t in body.get("tools") or []
    ]
    choice = body.get("tool_choice")
    mapped: dict[str, Any] = {"type": "auto"}
    if choice == "none":
        mapped = {"type": "none"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    budget = body.get("max_completion_tokens") or body.get("max_tokens") or 1_000_000
    view: dict[str, Any] = {
        "messages": body["messages"],
        "tools": tools,
        "tool_choice": mapped,
        "max_tokens": budget,
    }
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        view["output_config"] = {"format": {"type": "json_schema", "schema": spec.get("schema")}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        view["output_config"] = {"format": {"type": "json_object"}}
    return view


async def chat_completions(request: Request) -> Response:
    return await serve(request, "openai", _handle, error_response)


def error_response(err: BadRequest, request_id: str) -> Response:
    """A `BadRequest` in the OpenAI error shape (Chat Completions, Responses and Batch alike)."""
    return openai_error(
        err.status,
        err.kind,
        err.message,
        request_id,
        code=err.extra.get("code"),
        param=err.extra.get("param"),
        headers=err.extra.get("headers"),
    )


def _pre_response_fault(ex: Exchange) -> BadRequest | Response | None:
    name = ex.fault_name
    if name == "overloaded":
        return BadRequest(503, "server_error", "The server is overloaded or not ready yet.")
    if name == "rate_limited":
        retry = ex.fault.arg if ex.fault and ex.fault.arg else "2"
        return BadRequest(
            429,
            "requests",
            "Rate limit reached for requests. Please try again later.",
            code="rate_limit_exceeded",
            headers={
                "retry-after": retry,
                "x-should-retry": "true",
                "x-ratelimit-remaining-requests": "0",
            },
        )
    if name == "spend_cap":
        return BadRequest(
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
            code="insufficient_quota",
        )
    if name == "auth":
        return BadRequest(
            401, "invalid_request_error", "Incorrect API key provided.", code="invalid_api_key"
        )
    if name == "server_error":
        return Response(
            HTML_500,
            status_code=500,
            media_type="text/html",
            headers={"x-request-id": ex.request_id},
        )
    return None


async def _handle(request: Request, ex: Exchange) -> Response:
    await ex.read(request)
    body = ex.body
    model = validate(body)
    state = ex.state
    cache = state.openai_cache
    result = cache.account(
        ex.namespace, model, openai_blocks(body), cache_key=body.get("prompt_cache_key")
    )
    try:
        ex.pick_fault(request)
        rl_headers: dict[str, str] = nominal_openai_headers()
        if state.ratelimiter.limits.any:
            verdict = state.ratelimiter.admit(ex.key, result.uncached_tokens + result.write_tokens)
            rl_headers = openai_headers(verdict)
            if not verdict.allowed:
                raise BadRequest(
                    429,
                    "tokens",
                    "Rate limit reached. Please try again later.",
                    code="rate_limit_exceeded",
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
        anthropic_view(body),
        model,
        seed=ex.seed,
        digest=ex.digest,
        behaviour=ex.behaviour,
        fault=ex.fault_name,
        draw=ex.draw,
    )
    if any(b.kind == "tool_use" for b in reply.blocks):
        # Chat Completions tool calls come without prose.
        keep = [i for i, b in enumerate(reply.blocks) if b.kind != "text"]
        reply.blocks = [reply.blocks[i] for i in keep]
        reply.tokens = [reply.tokens[i] for i in keep]
    headers = {**rl_headers, "x-request-id": ex.request_id}
    if body.get("stream"):
        return ClosingStreamingResponse(
            _stream(ex, model, result, reply),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    return await _plain(ex, model, result, reply, headers)


def _finish_reason(reply: ar.Reply) -> str:
    return {"tool_use": "tool_calls", "max_tokens": "length"}.get(reply.stop_reason, "stop")


def usage_json(
    ex: Exchange, model: ModelInfo, result: CacheResult, output: int
) -> dict[str, Any] | None:
    if ex.fault_name == "missing_usage":
        return None
    details: dict[str, Any] = {"cached_tokens": result.read_tokens, "audio_tokens": 0}
    if model.cache_accounting == "exact":
        details["cache_write_tokens"] = result.write_tokens
    prompt = result.read_tokens + result.write_tokens + result.uncached_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _chunks(
    ex: Exchange,
    reply: ar.Reply,
    base: dict[str, Any],
    include_usage: bool,
    usage: dict[str, Any] | None,
) -> list[Chunk]:
    rng = random.Random(f"openai:{ex.seed}:{ex.digest}")
    opts = ex.body.get("stream_options")
    obfuscate = not (isinstance(opts, dict) and opts.get("include_obfuscation") is False)

    # Every chunk is `{**base, "choices": [{"index": 0, "delta": …, "logprobs": null,
    # "finish_reason": …}], "usage": null?, "obfuscation": "…"?}`; the constant parts are
    # serialised once (the same bytes as dumping the whole dict: a stream is hundreds of chunks).
    prefix = dumps({**base, "choices": []})[:-3] + '[{"index":0,"delta":'
    tail = ',"usage":null' if include_usage else ""

    def chunk(delta: dict[str, Any] | str, finish: str | None = None) -> bytes:
        """One chunk; `delta` as a dict or already serialised."""
        delta = delta if isinstance(delta, str) else dumps(delta)
        end = "null" if finish is None else quoted(finish)
        body = f'{prefix}{delta},"logprobs":null,"finish_reason":{end}}}]{tail}'
        if obfuscate:  # as OpenAI does: random padding so chunk sizes do not leak the text
            body += f',"obfuscation":"{_padding(rng)}"'
        return data_only(body + "}")

    role = {"role": "assistant", "content": None, "refusal": None}
    visible = [b for b in reply.blocks if b.kind != "thinking"]
    together = bool(visible) and visible[0].kind == "tool_use"
    # The first chunk carries the role and, when the answer is a tool call, its head too.
    out: list[Chunk] = [] if together else [("start", chunk(role), 0)]
    done = 0
    for block, tokens in zip(reply.blocks, reply.tokens, strict=True):
        if block.kind == "thinking":
            done += tokens  # hidden reasoning: billed, never shown
            continue
        if block.kind == "tool_use":
            head = {
                "index": 0,
                "id": derived_id("call_", ex.digest),
                "type": "function",
                "function": {"name": block.name, "arguments": ""},
            }
            if together and not out:
                out.append(("start", chunk({**role, "tool_calls": [head]}), done))
            else:
                out.append(("block_start", chunk({"tool_calls": [head]}), done))
            parts = ar.fragments(block.text, rng)
            tag: ar.Tag = "tool_delta"
        else:
            parts = ar._text_pieces(block.text, rng)
            tag = "delta"
        seen = 0
        for part in parts:
            seen += len(part)
            emitted = done + round(tokens * seen / max(1, len(block.text)))
            # {"tool_calls": [{"index": 0, "function": {"arguments": part}}]} or
            # {"content": part}, serialised around the one string that changes.
            if block.kind == "tool_use":
                delta = (
                    f'{{"tool_calls":[{{"index":0,"function":{{"arguments":{quoted(part)}}}}}]}}'
                )
            else:
                delta = f'{{"content":{quoted(part)}}}'
            out.append((tag, chunk(delta), emitted))
        done += tokens
    if reply.stop_reason == "refusal" and reply.stop_details:
        out.append(("delta", chunk({"refusal": reply.stop_details["explanation"]}), done))
    out.append(("end", chunk({}, _finish_reason(reply)), done))
    if include_usage and usage is not None:
        out.append(("end", data_only(dumps({**base, "choices": [], "usage": usage})), done))
    out.append(("end", data_only("[DONE]"), done))
    return out


_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def padding(rng: random.Random, n: int) -> str:
    """`n` random characters of obfuscation padding (Chat Completions chunks, Responses deltas).

    The characters `rng.choice(_PAD)` would draw (six random bits, redrawn at 62 or more),
    without its two calls per character: a stream pads hundreds of chunks.
    """
    return "".join([_PAD[_below(rng, len(_PAD))] for _ in range(n)])


def _below(rng: random.Random, n: int) -> int:
    """`rng.randrange(n)`, the same draws: `n.bit_length()` random bits until under `n`."""
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


def _padding(rng: random.Random) -> str:
    return padding(rng, 1 + _below(rng, 12))  # rng.randint(1, 12)


def _base(ex: Exchange) -> dict[str, Any]:
    return {
        "id": derived_id("chatcmpl-", ex.digest + str(ex.attempt), 29),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": str(ex.body["model"]),
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }


def _stream(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply
) -> AsyncGenerator[bytes, None]:
    usage = usage_json(ex, model, result, reply.output_tokens)

    def chunks() -> list[tuple[ar.Tag, bytes, int]]:
        include = bool((ex.body.get("stream_options") or {}).get("include_usage"))
        return _chunks(ex, reply, _base(ex), include, usage)

    error = data_only(dumps(_MIDSTREAM_ERROR))
    return stream_body(
        ex,
        model,
        result,
        ex.state.openai_cache,
        output=reply.output_tokens,
        usage=usage,
        events=chunks,
        ping=b": keep-alive\n\n",
        error_event=lambda fault, index: error,
    )


def completion_json(ex: Exchange, reply: ar.Reply, usage: dict[str, Any] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    texts = [b.text for b in reply.blocks if b.kind == "text"]
    if texts:
        message["content"] = "".join(texts)
    tools = [b for b in reply.blocks if b.kind == "tool_use"]
    if tools:
        message["tool_calls"] = [
            {
                "id": derived_id("call_", ex.digest),
                "type": "function",
                "function": {"name": b.name, "arguments": b.text},
            }
            for b in tools
        ]
    if reply.stop_reason == "refusal" and reply.stop_details:
        message["refusal"] = reply.stop_details["explanation"]
    body: dict[str, Any] = {
        **_base(ex),
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(reply),
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


async def _plain(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply, headers: dict[str, str]
) -> Response:
    return await plain_response(
        ex,
        model,
        result,
        headers,
        output=reply.output_tokens,
        usage=lambda: usage_json(ex, model, result, reply.output_tokens),
        body=lambda usage: completion_json(ex, reply, usage),
        failed_message=_MIDSTREAM_MESSAGE,
    )


async def plain_response(
    ex: Exchange,
    model: ModelInfo,
    result: CacheResult,
    headers: dict[str, str],
    *,
    output: int,
    usage: Callable[[], Any],
    body: Callable[[Any], dict[str, Any]],
    failed_message: str,
) -> Response:
    """A non-streamed response on an OpenAI wire (Chat Completions and Responses alike):
    paced like a stream, with the wire faults as a whole response shows them."""
    fault = ex.fault_name
    pacer = make_pacer(ex, model, result)
    await pacer.first_token()
    if fault in ("overloaded_midstream", "error_after_partial", "garbage", "stall"):
        ex.state.openai_cache.abandon(result.ticket)
        if fault == "garbage":
            ex.finish(200)
            return Response(GARBAGE, media_type="application/json", headers=headers)
        if fault == "stall":
            await asyncio.sleep(ex.state.config.stall_seconds)
            ex.finish(200, note="stall")
            return Response(b"", media_type="application/json", headers=headers)
        ex.finish(500)
        return openai_error(500, "server_error", failed_message, ex.request_id)
    begin_response(ex, ex.state.openai_cache, result)
    await pacer.tokens_emitted(output)
    billed = usage()
    payload = dumps(body(billed)).encode()
    settle(ex, model, result, output)
    ex.finish(200, billed, "connection reset" if fault == "reset_midstream" else None)
    if fault == "eof_early":
        return Response(
            payload[: len(payload) // 2], media_type="application/json", headers=headers
        )
    if fault == "reset_midstream":
        return ClosingStreamingResponse(
            _reset_after(payload[: len(payload) // 2]),
            media_type="application/json",
            headers=headers,
        )
    return Response(payload, media_type="application/json", headers=headers)


async def _reset_after(part: bytes) -> AsyncIterator[bytes]:
    yield part
    await asyncio.sleep(0)
    raise ConnectionReset("reset")
