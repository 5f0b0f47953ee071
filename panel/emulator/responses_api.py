"""`POST /v1/responses`: the OpenAI Responses wire over the same stub, cache, faults and latency.

Validation follows the real API's answers: unknown top-level fields are `Unknown parameter`,
Chat-Completions-shaped tools (`{"type": "function", "function": {…}}`) miss `tools[i].name`,
function tools are strict unless they say otherwise, `max_output_tokens` is at least 16, and
`previous_response_id` names nothing (the emulator stores no responses).

Caching (GPT-5.6 and later, the table's exact accounting): the server keeps one implicit
breakpoint at the end of the input and writes the latest three explicit ones
(`prompt_cache_breakpoint` on a content part); `prompt_cache_options.mode: "explicit"` drops the
implicit one and writes the latest four. A read is the longest written prefix at or before the
request's last breakpoint (no lookback limit); entries live 30 minutes, refreshed on a hit, and
are readable only once the writing response has begun (as on every route). Older models cache
as Chat Completions does (automatic, reads rounded to 128, no write charge). The store is the
OpenAI route's, so batches and streams share it.

Stream: `response.created` → `response.in_progress` → per output item `output_item.added` …
deltas … `output_item.done` → `response.completed` (or `response.incomplete` with
`incomplete_details.reason: "max_output_tokens"`), every event numbered; no `[DONE]`; delta
events carry `obfuscation` padding unless `stream_options.include_obfuscation` is false. Wire
faults: `overloaded_midstream` is an `error` event, `error_after_partial` a `response.failed`
(unbilled, as on the other routes: no usage), `reset_midstream` / `eof_early` cut the stream.
`text.format: {"type": "json_schema", …}` without tools is answered with schema-valid JSON as
output text.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from panel.emulator import anthropic_reply as ar
from panel.emulator import openai_api
from panel.emulator.exchange import BadRequest, Exchange, serve, strict_schema_problem
from panel.emulator.pipeline import stream_body
from panel.emulator.promptcache import (
    CacheResult,
    OpenAICache,
    _cumulative,
    _prefix_keys,
    _Ticket,
)
from panel.emulator.ratelimit import openai_headers
from panel.emulator.responses_shape import check_responses
from panel.emulator.sse import (
    SSE_HEADERS,
    ClosingStreamingResponse,
    derived_id,
    event,
)
from panel.modeltable import ModelInfo, model_info
from panel.providers.cacheblocks import CacheBlock, responses_blocks, responses_breakpoints

RESPONSES_TTL_S = 1800.0  # `prompt_cache_options.ttl: "30m"`, the only value
MIN_OUTPUT_TOKENS = 16
_OVERLOADED_EVENT = {
    "type": "error",
    "code": "server_is_overloaded",
    "message": "The server is currently overloaded with other requests. Please try again later.",
    "param": None,
}
_FAILED_ERROR = {
    "code": "server_error",
    "message": "An error occurred while processing your request. Please retry your request.",
}


def _bad(message: str, param: str | None = None, code: str | None = None) -> BadRequest:
    return BadRequest(400, "invalid_request_error", message, param=param, code=code)


# -- validation -----------------------------------------------------------------------------


def validate(body: dict[str, Any]) -> ModelInfo:
    """The model the request names, or BadRequest shaped like the real API's answer."""
    check_responses(body)  # types and unknown fields first, as the real API checks them
    model = model_info(str(body["model"]))
    if model is None or model.provider != "openai" or not model.takes("responses"):
        raise _bad(
            f"The requested model '{body['model']}' does not exist.",
            param="model",
            code="model_not_found",
        )
    if body.get("previous_response_id"):
        raise _bad(
            f"Previous response with id '{body['previous_response_id']}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    items = body.get("input")
    if items is None and not body.get("instructions"):
        raise _bad(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if items is not None and not isinstance(items, str | list):
        raise _bad("Invalid type for 'input': expected a string or an array.", param="input")
    budget = body.get("max_output_tokens")
    if budget is not None and (not isinstance(budget, int) or budget < MIN_OUTPUT_TOKENS):
        raise _bad(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {budget} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    names = _validate_tools(body.get("tools"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        if choice.get("name") not in names:
            raise _bad(
                f"Tool choice '{choice.get('name')}' not found in 'tools' parameter.",
                param="tool_choice",
            )
    elif (
        choice is not None
        and choice not in ("auto", "required", "none")
        and not isinstance(choice, dict)
    ):
        raise _bad(f"Invalid value: '{choice}'.", param="tool_choice", code="invalid_value")
    fmt = _json_format(body)
    if fmt is not None:
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise _bad(
                "Missing required parameter: 'text.format.name' or 'text.format.schema'.",
                param="text.format",
                code="missing_required_parameter",
            )
        if fmt.get("strict"):
            problem = strict_schema_problem(fmt["schema"], all_required=True)
            if problem:
                raise _bad(
                    f"Invalid schema for response_format '{fmt['name']}': {problem}",
                    param="text.format.schema",
                    code="invalid_json_schema",
                )
    options = body.get("prompt_cache_options")
    if options is not None and (
        not isinstance(options, dict) or options.get("mode", "implicit") not in _MODES
    ):
        raise _bad(
            "Invalid value for 'prompt_cache_options.mode': expected 'implicit' or 'explicit'.",
            param="prompt_cache_options.mode",
            code="invalid_value",
        )
    return model


_MODES = ("implicit", "explicit")


def _validate_tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("Invalid type for 'tools': expected an array.", param="tools")
    names: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or "type" not in tool:
            raise _bad(
                f"Missing required parameter: 'tools[{i}].type'.",
                param=f"tools[{i}].type",
                code="missing_required_parameter",
            )
        if tool["type"] != "function":
            continue  # hosted tools: accepted, never called by the stub
        if not isinstance(tool.get("name"), str):
            # The Chat Completions shape nests the function: the real API answers this.
            raise _bad(
                f"Missing required parameter: 'tools[{i}].name'.",
                param=f"tools[{i}].name",
                code="missing_required_parameter",
            )
        if tool.get("strict", True):
            problem = strict_schema_problem(tool.get("parameters") or {}, all_required=True)
            if problem:
                raise _bad(
                    f"Invalid schema for function '{tool['name']}': {problem}",
                    param=f"tools[{i}].parameters",
                    code="invalid_function_parameters",
                )
        names.append(tool["name"])
    return names


def _json_format(body: dict[str, Any]) -> dict[str, Any] | None:
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return fmt if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None


# -- the stub's view of the request ---------------------------------------------------------


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [i for i in raw or [] if isinstance(i, dict)]


def _texts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out = []
    for part in content or []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append({"type": "text", "text": part["text"]})
    return out


def view(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The request as the shared reply builder reads it, and whether the answer is JSON text
    (`text.format: json_schema` with no function to call)."""
    system: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        system.append({"type": "text", "text": body["instructions"]})
    messages: list[dict[str, Any]] = []
    for item in _items(body):
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("developer", "system"):
            system += _texts(item.get("content"))
        elif kind == "message":
            role = "assistant" if item.get("role") == "assistant" else "user"
            messages.append({"role": role, "content": _texts(item.get("content"))})
        elif kind == "function_call_output":
            messages.append({"role": "user", "content": _texts(str(item.get("output", "")))})
    tools = [
        {"name": t["name"], "input_schema": t.get("parameters") or {}}
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    mapped: dict[str, Any] = {"type": "auto"}
    if choice == "none":
        mapped = {"type": "none"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        mapped = {"type": "tool", "name": choice.get("name")}
    fmt = _json_format(body)
    as_text = fmt is not None and (not tools or mapped["type"] == "none")
    if as_text and fmt is not None:
        tools = [{"name": fmt["name"], "input_schema": fmt["schema"]}]
        mapped = {"type": "tool", "name": fmt["name"]}
    out: dict[str, Any] = {
        "system": system,
        "messages": messages,
        "tools": tools,
        "tool_choice": mapped,
        "max_tokens": body.get("max_output_tokens") or 1_000_000,
    }
    return out, as_text


def build_reply(
    body: dict[str, Any], model: ModelInfo, ex: Exchange, fault: str | None
) -> tuple[ar.Reply, bool]:
    stub_view, as_text = view(body)
    reply = ar.build_reply(
        stub_view,
        model,
        seed=ex.seed,
        digest=ex.digest,
        behaviour=ex.behaviour,
        fault=fault,
        draw=ex.draw,
    )
    if as_text:
        for block in reply.blocks:
            if block.kind == "tool_use":
                block.kind = "text"
        if reply.stop_reason == "tool_use":
            reply.stop_reason = "end_turn"
    return reply, as_text


# -- caching --------------------------------------------------------------------------------


def account(
    cache: OpenAICache, namespace: str, model: ModelInfo, body: dict[str, Any]
) -> CacheResult:
    """Bill one request's input against the Responses cache rules (module docstring)."""
    blocks = responses_blocks(body)
    key = body.get("prompt_cache_key")
    cache_key = key if isinstance(key, str) else None
    if model.cache_accounting != "exact":
        return cache.account(namespace, model, blocks, cache_key=cache_key)
    options = body.get("prompt_cache_options")
    mode = options.get("mode", "implicit") if isinstance(options, dict) else "implicit"
    return _account_breakpoints(
        cache, namespace, model, blocks, responses_breakpoints(body), mode, cache_key
    )


def _account_breakpoints(
    cache: OpenAICache,
    namespace: str,
    model: ModelInfo,
    blocks: Sequence[CacheBlock],
    marks: Sequence[int],
    mode: str,
    cache_key: str | None,
) -> CacheResult:
    totals = _cumulative(blocks)
    total = totals[-1] if totals else 0
    ticket = _Ticket()
    explicit = sorted(set(marks))
    points = explicit[-4:] if mode == "explicit" else [*explicit[-3:], len(blocks) - 1]
    points = sorted({p for p in points if 0 <= p < len(blocks)})
    if total < model.min_cache_tokens or not points:
        ticket.state = "active"
        return CacheResult(0, 0, 0, total, ticket)
    space = namespace + "\x00" + (cache_key or "")
    keys = _prefix_keys(model, blocks)
    store = cache._store
    with store.lock:
        now = store.clock()
        store.sweep(now)
        read_end = -1
        for j in range(points[-1], -1, -1):
            if totals[j] < model.min_cache_tokens:
                break
            if store.readable(space, keys[j], now):
                read_end = j
                store.refresh(space, keys[j], now)
                break
        written = read_end
        for j in points:
            if totals[j] >= model.min_cache_tokens and j > read_end:
                ticket.writes.append((space, keys[j], now + RESPONSES_TTL_S, RESPONSES_TTL_S))
                written = j
    read = totals[read_end] if read_end >= 0 else 0
    write = (totals[written] if written >= 0 else 0) - read
    return CacheResult(read, write, 0, total - read - write, ticket)


# -- bodies ---------------------------------------------------------------------------------


def usage_json(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply
) -> dict[str, Any] | None:
    if ex.fault_name == "missing_usage":
        return None
    reasoning = sum(
        n for b, n in zip(reply.blocks, reply.tokens, strict=True) if b.kind == "thinking"
    )
    total_in = result.read_tokens + result.write_tokens + result.uncached_tokens
    output = reply.output_tokens
    return {
        "input_tokens": total_in,
        "input_tokens_details": {
            "cached_tokens": result.read_tokens,
            "cache_write_tokens": result.write_tokens if model.cache_accounting == "exact" else 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total_in + output,
    }


@dataclass
class _Item:
    """One output item: its id, its final JSON, and what streams inside it."""

    block: ar.Block
    tokens: int
    id: str
    done: dict[str, Any]


def _output(ex: Exchange, reply: ar.Reply) -> list[_Item]:
    items: list[_Item] = []
    for n, (block, tokens) in enumerate(zip(reply.blocks, reply.tokens, strict=True)):
        seed = ex.digest + str(ex.attempt) + str(n)
        status = "completed" if block.complete else "incomplete"
        if block.kind == "thinking":
            rid = derived_id("rs_", seed, 40)
            done: dict[str, Any] = {"id": rid, "type": "reasoning", "summary": []}
        elif block.kind == "text":
            rid = derived_id("msg_", seed, 40)
            done = {
                "id": rid,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": block.text, "annotations": [], "logprobs": []}
                ],
            }
        else:
            rid = derived_id("fc_", seed, 40)
            done = {
                "id": rid,
                "type": "function_call",
                "status": status,
                "arguments": block.text,
                "call_id": derived_id("call_", ex.digest),
                "name": block.name,
            }
        items.append(_Item(block, tokens, rid, done))
    if reply.stop_reason == "refusal" and reply.stop_details:
        rid = derived_id("msg_", ex.digest + str(ex.attempt) + "refusal", 40)
        block = ar.Block("text", reply.stop_details["explanation"])
        done = {
            "id": rid,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": block.text}],
        }
        items.append(_Item(block, 0, rid, done))
    return items


def response_json(
    ex: Exchange,
    reply: ar.Reply,
    usage: dict[str, Any] | None,
    *,
    status: str | None = None,
    output: list[dict[str, Any]] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object (`status` None: completed, or incomplete when cut at the limit)."""
    body = ex.body
    if status is None:
        status = "incomplete" if reply.stop_reason == "max_tokens" else "completed"
    tools = []
    for t in body.get("tools") or []:
        if isinstance(t, dict) and t.get("type") == "function":
            t = {"strict": True, "description": None, **t}
        tools.append(t)
    return {
        "id": derived_id("resp_", ex.digest + str(ex.attempt), 48),
        "object": "response",
        "created_at": int(ex.started),
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": ({"reason": "max_output_tokens"} if status == "incomplete" else None),
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": str(body.get("model")),
        "output": [i.done for i in _output(ex, reply)] if output is None else output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": 1.0,
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools,
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


# -- the route ------------------------------------------------------------------------------


async def create_response(request: Request) -> Response:
    return await serve(request, "openai", _handle, openai_api.error_response)


async def _handle(request: Request, ex: Exchange) -> Response:
    await ex.read(request)
    body = ex.body
    model = validate(body)
    state = ex.state
    cache = state.openai_cache
    result = account(cache, ex.namespace, model, body)
    try:
        ex.pick_fault(request)
        rl_headers: dict[str, str] = {}
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
        early = openai_api._pre_response_fault(ex)
        if isinstance(early, BadRequest):
            raise early
        if early is not None:
            ex.finish(early.status_code)
            cache.abandon(result.ticket)
            return early
    except BaseException:
        cache.abandon(result.ticket)
        raise
    reply, _ = build_reply(body, model, ex, ex.fault_name)
    headers = {**rl_headers, "x-request-id": ex.request_id}
    if body.get("stream"):
        return ClosingStreamingResponse(
            _stream(ex, model, result, reply),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    return await _plain(ex, model, result, reply, headers)


Event = tuple[ar.Tag, bytes, int]


def events(
    ex: Exchange, reply: ar.Reply, usage: dict[str, Any] | None
) -> tuple[list[Event], list[dict[str, Any]]]:
    """The stream as (tag, bytes, output tokens so far), and the output items it built."""
    rng = random.Random(f"responses:{ex.seed}:{ex.digest}")
    seq = 0
    out: list[Event] = []

    pad = random.Random(f"obfuscation:{ex.seed}:{ex.digest}")
    options = ex.body.get("stream_options")
    obfuscate = not (isinstance(options, dict) and options.get("include_obfuscation") is False)

    def add(tag: ar.Tag, name: str, data: dict[str, Any], emitted: int) -> None:
        nonlocal seq
        if obfuscate and name.endswith(".delta"):
            # Random padding that evens out delta sizes (the real default; opt out with
            # `stream_options.include_obfuscation: false`). Clients ignore it.
            n = max(2, 16 - len(data["delta"])) + pad.randint(0, 6)
            data = {**data, "obfuscation": openai_api.padding(pad, n)}
        out.append((tag, event(name, {"type": name, **data, "sequence_number": seq}), emitted))
        seq += 1

    shell = response_json(ex, reply, None, status="in_progress", output=[])
    add("start", "response.created", {"response": shell}, 0)
    add("start", "response.in_progress", {"response": shell}, 0)
    items = _output(ex, reply)
    done = 0
    for index, item in enumerate(items):
        block, final = item.block, item.done
        head = {**final, "status": "in_progress"} if "status" in final else dict(final)
        if final["type"] == "message":
            head["content"] = []
        if final["type"] == "function_call":
            head["arguments"] = ""
        where = {"output_index": index, "item_id": item.id}
        add(
            "block_start", "response.output_item.added", {"output_index": index, "item": head}, done
        )
        if final["type"] == "function_call":
            pieces = ar._pieces(block.text, rng, 1, 12)
            seen = 0
            for piece in pieces:
                seen += len(piece)
                emitted = done + round(item.tokens * seen / max(1, len(block.text)))
                add(
                    "tool_delta",
                    "response.function_call_arguments.delta",
                    {**where, "delta": piece},
                    emitted,
                )
            done += item.tokens
            add(
                "block_stop",
                "response.function_call_arguments.done",
                {**where, "name": block.name, "arguments": block.text},
                done,
            )
        elif final["type"] == "message":
            part = final["content"][0]
            refusal = part["type"] == "refusal"
            empty = {"type": "refusal", "refusal": ""} if refusal else {**part, "text": ""}
            at = {**where, "content_index": 0}
            add("block_start", "response.content_part.added", {**at, "part": empty}, done)
            seen = 0
            for piece in ar._text_pieces(block.text, rng):
                seen += len(piece)
                emitted = done + round(item.tokens * seen / max(1, len(block.text)))
                if refusal:
                    add("delta", "response.refusal.delta", {**at, "delta": piece}, emitted)
                else:
                    add(
                        "delta",
                        "response.output_text.delta",
                        {**at, "delta": piece, "logprobs": []},
                        emitted,
                    )
            done += item.tokens
            if refusal:
                add("block_stop", "response.refusal.done", {**at, "refusal": block.text}, done)
            else:
                add(
                    "block_stop",
                    "response.output_text.done",
                    {**at, "text": block.text, "logprobs": []},
                    done,
                )
            add("block_stop", "response.content_part.done", {**at, "part": part}, done)
        else:
            done += item.tokens  # hidden reasoning: billed, never shown
        add("block_stop", "response.output_item.done", {"output_index": index, "item": final}, done)
    finals = [i.done for i in items]
    final = response_json(ex, reply, usage, output=finals)
    name = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    add("end", name, {"response": final}, done)
    return out, finals


def _stream(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply
) -> AsyncGenerator[bytes, None]:
    usage = usage_json(ex, model, result, reply)

    def error_event(fault: str, index: int) -> bytes:
        if fault == "overloaded_midstream":
            return event("error", {**_OVERLOADED_EVENT, "sequence_number": index})
        # error_after_partial: not billed (faults.UNBILLED), so the failed response reports
        # no usage.
        failed = response_json(ex, reply, None, status="failed", output=[], error=_FAILED_ERROR)
        name = "response.failed"
        return event(name, {"type": name, "response": failed, "sequence_number": index})

    return stream_body(
        ex,
        model,
        result,
        ex.state.openai_cache,
        output=reply.output_tokens,
        usage=usage,
        events=lambda: events(ex, reply, usage)[0],
        ping=b": keep-alive\n\n",
        error_event=error_event,
    )


async def _plain(
    ex: Exchange, model: ModelInfo, result: CacheResult, reply: ar.Reply, headers: dict[str, str]
) -> Response:
    return await openai_api.plain_response(
        ex,
        model,
        result,
        headers,
        output=reply.output_tokens,
        usage=lambda: usage_json(ex, model, result, reply),
        body=lambda usage: response_json(ex, reply, usage),
        failed_message=_FAILED_ERROR["message"],
    )


__all__ = [
    "account",
    "build_reply",
    "create_response",
    "events",
    "response_json",
    "usage_json",
    "validate",
    "view",
]
