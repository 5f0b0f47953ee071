"""OpenAI Responses API (`POST /v1/responses`): the current OpenAI wire, and the only one on
which GPT-6 Astra takes tool calls (api-facts.md, "OpenAI Responses API").

Request: the house and persona blocks are `developer` messages and the tool block a `user`
message, in cache order, after the verdict tool (a flat, strict function tool). On models with
explicit cache breakpoints (GPT-5.6 and later: the table's exact cache accounting) the house and
persona parts carry `prompt_cache_breakpoint` where the run wants one, beside the implicit
breakpoint the server keeps at the end; `prompt_cache_key` (one per house block) groups the
requests that share a prefix;
`store: false` keeps the call stateless (a re-ask resends the items, never a response id).

Stream: typed, numbered events and no `[DONE]`. `StreamStarted` comes with the first event
after `response.created` / `response.in_progress` (those only acknowledge the request: the
prefix the cache-aware schedule waits for is written once the output begins). Argument
deltas are keyed by `output_index` (only the verdict call's count); the end of the stream is
one of `response.completed` (the evidence of a complete answer, with the usage),
`response.incomplete` (`max_output_tokens` is a truncation, `content_filter` a refusal) or
`response.failed`; an `error` event is classified by its code
(panel.providers.classify.classify_response_error). A stream that ends without one of the
three is truncated; the verdict check is the one every wire shares (completeness.verdict_of),
so every billed failure carries the usage that arrived.

The SDK's own retries are off (max_retries=0): panel.run.retry is the one retry owner. The SDK
opens the stream; panel reads its events (`panel.providers.sse`), not the SDK's typed objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Literal

from panel.errors import UpstreamError
from panel.modeltable import ModelInfo, model_info
from panel.providers.base import (
    ArgsDelta,
    Reask,
    StreamCompleted,
    StreamEvent,
    StreamStarted,
    VerdictRequest,
    from_emulator,
)
from panel.providers.cacheblocks import openai_cache_key
from panel.providers.classify import (
    classify_exception,
    classify_response_error,
    classify_stream_error,
)
from panel.providers.completeness import Ending, billed, usage_payload, verdict_of
from panel.providers.partial import PartialArgs
from panel.providers.sse import StreamErrorEvent, openai_events
from panel.providers.streaming import (
    StreamLimits,
    cap_wire_bytes,
    close_stream,
    drop_frames,
    first_byte,
    require_event_stream,
    with_idle_timeout,
)
from panel.runformat import Usage
from panel.verdict import TOOL_DESCRIPTION, TOOL_NAME

if TYPE_CHECKING:  # the SDK is imported when a provider opens its client, not before
    import httpx2
    import openai

BREAKPOINT: dict[str, str] = {"mode": "explicit"}
# Events the server sends on accepting a request, before the model has read the prompt: the
# cache entries it writes are not there yet, so StreamStarted (which releases the next wave of
# the cache-aware schedule) waits for the first event after them.
_ACCEPTED = frozenset({"response.created", "response.in_progress", "response.queued"})


def explicit_breakpoints(info: ModelInfo | None) -> bool:
    """GPT-5.6 and later take explicit cache breakpoints (and report exact cache figures)."""
    return info is not None and info.cache_accounting == "exact"


class ResponsesProvider:
    wire: Literal["responses"] = "responses"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        name: str = "openai",
        synthetic: bool = False,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        default_headers: dict[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        limits: StreamLimits | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.info: ModelInfo | None = model_info(model)
        self.synthetic = synthetic
        self.limits = limits or StreamLimits(idle=idle_timeout, connect=connect_timeout)
        self.idle_timeout = self.limits.idle
        import httpx2
        import openai

        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            max_retries=0,
            # A backstop only: panel's own deadlines (streaming.StreamLimits) end an attempt first.
            timeout=httpx2.Timeout(self.limits.total + 5.0, connect=self.limits.connect),
            default_headers=default_headers,
            http_client=http_client,
        )

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        forced = self.info.forced_tool_choice if self.info else False
        marks = explicit_breakpoints(self.info)
        params: dict[str, Any] = {
            "model": self.model,
            "tools": [
                {
                    "type": "function",
                    "name": TOOL_NAME,
                    "description": TOOL_DESCRIPTION,
                    "parameters": request.tool_schema,
                    "strict": True,
                }
            ],
            "input": [
                message(
                    "developer",
                    request.parts.house,
                    breakpoint=marks and "house" in request.breakpoints,
                ),
                message(
                    "developer",
                    request.parts.persona,
                    breakpoint=marks and "persona" in request.breakpoints,
                ),
                message(
                    "user",
                    request.parts.tool,
                    breakpoint=marks and "tool" in request.breakpoints,
                ),
                *_reask_items(request.reask),
            ],
            "tool_choice": {"type": "function", "name": TOOL_NAME} if forced else "auto",
            "parallel_tool_calls": False,
            "max_output_tokens": request.max_tokens,
            "store": False,
            "prompt_cache_key": openai_cache_key(request.parts.house),
            "stream": True,
        }
        if marks:
            params["prompt_cache_options"] = {"mode": "implicit"}
        return params

    async def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self.build_params(request)
        params.pop("stream")
        try:
            stream = await first_byte(
                self._client.responses.create(
                    **params, stream=True, extra_headers=request.extra_headers or None
                ),
                self.limits,
                provider=self.name,
            )
        except UpstreamError:
            raise
        except Exception as exc:
            raise classify_exception(exc, provider=self.name) from None
        headers = stream.response.headers
        # Whichever provider reached panel's emulator, what it wrote is synthetic.
        self.synthetic = self.synthetic or from_emulator(headers)
        request_id = headers.get("x-request-id") or headers.get("request-id")
        await require_event_stream(stream, self.name, request_id)
        cap_wire_bytes(stream.response, self.limits, self.name, request_id)
        reader = EventReader(self.name)
        events = with_idle_timeout(
            openai_events(stream.response.aiter_bytes()),
            self.idle_timeout,
            provider=self.name,
            request_id=request_id,
            started=lambda: reader.started,
            total=self.limits.total,
            max_bytes=self.limits.max_bytes,
            size=reader.size,
        )
        try:
            async for event in events:
                for out in reader.handle(event, request_id):
                    yield out
                if reader.ended:
                    break  # the final event: nothing after it counts
        except UpstreamError as exc:
            raise reader.charge(exc, request_id) from None
        except StreamErrorEvent as exc:  # a `data: {"error": …}` line (a proxy's shape)
            drop_frames(exc)
            err = classify_stream_error(
                exc.body, exc.message, provider=self.name, finish_reason=None
            )
            raise reader.charge(err, request_id) from None
        except Exception as exc:
            drop_frames(exc)
            raise reader.charge(classify_exception(exc, provider=self.name), request_id) from None
        finally:
            await close_stream(stream, events)
        done = reader.finish(request_id)
        if not reader.announced:
            yield reader.announce(request_id)
        yield done

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client (same key and base URL), for the batch services."""
        return self._client

    async def aclose(self) -> None:
        await self._client.close()


def message(role: str, text: str, *, breakpoint: bool = False) -> dict[str, Any]:
    """One input message with a single `input_text` part (marked as a breakpoint if asked)."""
    part: dict[str, Any] = {"type": "input_text", "text": text}
    if breakpoint:
        part["prompt_cache_breakpoint"] = dict(BREAKPOINT)
    return {"type": "message", "role": role, "content": [part]}


def _reask_items(reask: Reask | None) -> list[dict[str, Any]]:
    if reask is None:
        return []
    if reask.kind == "invalid_verdict" and reask.call_id:
        return [
            {
                "type": "function_call",
                "call_id": reask.call_id,
                "name": TOOL_NAME,
                "arguments": json.dumps(reask.previous_input or {}),
            },
            {"type": "function_call_output", "call_id": reask.call_id, "output": reask.message},
        ]
    return [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": reask.previous_text or "…"}],
        },
        message("user", reask.message),
    ]


def usage_of(raw: Any) -> Usage:
    """panel's Usage from a Responses usage object (or its JSON); input_tokens counts cached."""

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    if raw is None:
        return Usage(known=False)
    details = get(raw, "input_tokens_details")
    cached = int(get(details, "cached_tokens") or 0) if details is not None else 0
    written = int(get(details, "cache_write_tokens") or 0) if details is not None else 0
    total_in = int(get(raw, "input_tokens") or 0)
    return Usage(
        input_tokens=max(0, total_in - cached - written),
        output_tokens=int(get(raw, "output_tokens") or 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


class EventReader:
    """Folds Responses stream events into the verdict; unknown events and fields are ignored."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False  # an event arrived: the attempt is billed from here
        self.announced = False  # StreamStarted yielded: the model's output has begun
        self.end: str | None = None  # completed | incomplete | failed
        self.response: Any = None
        self.verdict_index: int | None = None
        self.call_id: str | None = None
        self.args = PartialArgs()
        self.done_args: str | None = None
        self.text: list[str] = []
        self.refusal: list[str] = []
        self._text_size = 0

    def announce(self, request_id: str | None) -> StreamStarted:
        self.announced = True
        return StreamStarted(request_id)

    @property
    def ended(self) -> bool:
        return self.end is not None

    def size(self) -> int:
        """Characters the model has written so far (tool arguments, text, refusal)."""
        return self.args.size + self._text_size

    def usage(self) -> Usage:
        raw = getattr(self.response, "usage", None) if self.response is not None else None
        return usage_of(raw)

    def usage_dict(self) -> dict[str, int] | None:
        return usage_payload(self.usage())

    def charge(self, err: UpstreamError, request_id: str | None) -> UpstreamError:
        """An error raised while reading: billed once an event arrived, with the usage."""
        err.billed = err.billed or self.started
        err.request_id = err.request_id or request_id
        err.usage = err.usage or self.usage_dict()
        return err

    def handle(self, event: Any, request_id: str | None) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self.started = True
        kind = getattr(event, "type", None)
        if not self.announced and kind not in _ACCEPTED:
            out.append(self.announce(request_id))
        index = getattr(event, "output_index", None)
        if kind == "response.output_item.added":
            item = event.item
            if (
                getattr(item, "type", None) == "function_call"
                and getattr(item, "name", None) == TOOL_NAME
                and self.verdict_index is None
            ):
                self.verdict_index, self.call_id = index, getattr(item, "call_id", None)
        elif kind == "response.function_call_arguments.delta":
            if index is not None and index == self.verdict_index:
                snap = self.args.feed(event.delta or "")
                if snap is not None:
                    out.append(ArgsDelta(snap))
        elif kind == "response.function_call_arguments.done":
            if index is not None and index == self.verdict_index:
                self.done_args = getattr(event, "arguments", None)
        elif kind == "response.output_text.delta":
            delta = getattr(event, "delta", "") or ""
            self.text.append(delta)
            self._text_size += len(delta)
        elif kind == "response.refusal.delta":
            delta = getattr(event, "delta", "") or ""
            self.refusal.append(delta)
            self._text_size += len(delta)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.end = kind.rsplit(".", 1)[1]
            self.response = getattr(event, "response", None)
            self._from_final()
        elif kind == "error":
            raise classify_response_error(
                getattr(event, "code", None),
                str(getattr(event, "message", "") or ""),
                provider=self.name,
                request_id=request_id,
            )
        return out

    def _from_final(self) -> None:
        """The final response's output: the verdict call if the deltas never showed it."""
        for i, item in enumerate(getattr(self.response, "output", None) or []):
            itype = getattr(item, "type", None)
            if itype == "function_call" and getattr(item, "name", None) == TOOL_NAME:
                if self.verdict_index is None:
                    self.verdict_index, self.call_id = i, getattr(item, "call_id", None)
                if i == self.verdict_index and self.done_args is None:
                    self.done_args = getattr(item, "arguments", None)
            elif itype == "message" and not self.text and not self.refusal:
                for part in getattr(item, "content", None) or []:
                    if getattr(part, "type", None) == "refusal":
                        self.refusal.append(str(getattr(part, "refusal", "")))
                    elif getattr(part, "type", None) == "output_text":
                        self.text.append(str(getattr(part, "text", "")))

    def finish(self, request_id: str | None) -> StreamCompleted:
        """The verdict, through the one completeness check (providers/completeness.py)."""
        end = Ending(
            started=self.started,
            end_marker=self.end is not None,
            stop_reason=self.end,
            usage=self.usage(),
            found=self.verdict_index is not None,
            raw_args=self.done_args if self.done_args is not None else self.args.text,
            text="".join(self.text),
            refusal="".join(self.refusal) or None,
            request_id=request_id,
            call_id=self.call_id,
            default_stop="completed",
        )
        if self.end == "failed":
            error = getattr(self.response, "error", None)
            err = classify_response_error(
                getattr(error, "code", None),
                str(getattr(error, "message", "") or "the response failed"),
                provider=self.name,
            )
            raise billed(err, end)
        if self.end == "incomplete":
            reason = getattr(getattr(self.response, "incomplete_details", None), "reason", None)
            # max_output_tokens is a truncation, content_filter a refusal; anything else
            # is an end without its answer (truncated_eof).
            end.stop_reason = {"max_output_tokens": "length"}.get(str(reason), reason)
            end.end_marker = reason in ("max_output_tokens", "content_filter")
        return verdict_of(end)
