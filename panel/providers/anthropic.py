"""Anthropic Messages API: request building (cache plan, tool choice rules) and stream reading.

The request carries the cache plan of design.md: the verdict tool first (identical for every
request of a run), then two system blocks with breakpoints (house, persona), then the tool
block in the user turn. Forced tool choice is sent only to models the table says accept it;
the 5.5 generation gets `auto` + a strict tool + the prompt's instruction (F19).

The SDK's own retries are off (max_retries=0): panel.run.retry is the one retry owner. The SDK
opens the stream; panel reads its events (`panel.providers.sse`), not the SDK's typed objects.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

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
from panel.providers.classify import classify_error_event, classify_exception
from panel.providers.completeness import Ending, usage_payload, verdict_of
from panel.providers.partial import PartialArgs
from panel.providers.sse import StreamErrorEvent, anthropic_events
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
    import anthropic
    import httpx2


class AnthropicProvider:
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        name: str = "anthropic",
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
        import anthropic
        import httpx2

        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            # A backstop only: panel's own deadlines (streaming.StreamLimits) end an attempt first.
            timeout=httpx2.Timeout(self.limits.total + 5.0, connect=self.limits.connect),
            default_headers=default_headers,
            http_client=http_client,
        )

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        return messages_body(self.model, self.info, request)

    async def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self.build_params(request)
        try:
            stream = await first_byte(
                self._client.messages.create(
                    **params, stream=True, extra_headers=request.extra_headers or None
                ),
                self.limits,
                provider=self.name,
            )
        except UpstreamError:
            raise
        except Exception as exc:
            raise classify_exception(exc, provider=self.name) from None
        request_id = stream.response.headers.get("request-id")
        self.synthetic = self.synthetic or from_emulator(stream.response.headers)
        await require_event_stream(stream, self.name, request_id)
        cap_wire_bytes(stream.response, self.limits, self.name, request_id)
        reader = _StreamReader()
        events = with_idle_timeout(
            anthropic_events(stream.response.aiter_bytes()),
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
        except UpstreamError as exc:
            exc.billed = exc.billed or reader.started
            exc.usage = exc.usage or reader.usage_dict()
            raise
        except Exception as exc:
            drop_frames(exc)
            if isinstance(exc, StreamErrorEvent):
                err = classify_error_event(
                    exc.body, exc.message, provider=self.name, request_id=request_id
                )
            else:
                err = classify_exception(exc, provider=self.name)
            err.billed, err.request_id = reader.started, err.request_id or request_id
            err.usage = reader.usage_dict()
            raise err from None
        finally:
            await close_stream(stream, events)
        yield reader.finish(request_id)

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client (same key and base URL), for the batch services."""
        return self._client

    async def aclose(self) -> None:
        await self._client.close()


def messages_body(model: str, info: ModelInfo | None, request: VerdictRequest) -> dict[str, Any]:
    """The exact Messages API body for one verdict request (no SDK needed to build it)."""
    forced, thinking = tool_policy(info, want_thinking=request.thinking)
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "tools": [
            {
                "name": TOOL_NAME,
                "description": TOOL_DESCRIPTION,
                "input_schema": request.tool_schema,
                "strict": True,
            }
        ],
        "tool_choice": {"type": "tool", "name": TOOL_NAME} if forced else {"type": "auto"},
        "system": system_blocks(request),
        "messages": [
            {"role": "user", "content": [tool_block(request)]},
            *_reask_turns(request.reask),
        ],
    }
    if thinking is not None:
        params["thinking"] = thinking
    return params


def tool_policy(
    info: ModelInfo | None, *, want_thinking: bool
) -> tuple[bool, dict[str, str] | None]:
    """Whether to force the verdict tool, and the `thinking` parameter to send (if any).

    Thinking and a forced tool choice exclude each other (a 400), and the 5.5 generation
    rejects forcing outright. panel prefers the forced call, and the decision streaming first,
    so it turns thinking off where the model thinks by default — unless thinking is wanted or
    the model cannot stop (Opus 5.5); then it sends `auto` and the prompt's instruction.
    """
    if info is None:
        return False, None
    disable = info.thinking_default and not info.thinking_always and not want_thinking
    thinking_on = info.thinking_always or (info.thinking_default and not disable)
    forced = info.forced_tool_choice and not thinking_on
    return forced, ({"type": "disabled"} if disable else None)


def cache_control(ttl: str) -> dict[str, str]:
    """The `cache_control` mark for a breakpoint (5-minute default, or 1 hour)."""
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}


def system_blocks(request: VerdictRequest) -> list[dict[str, Any]]:
    """The house and persona blocks, each marked only where the run wants a breakpoint."""
    blocks: list[dict[str, Any]] = []
    for name, text in (("house", request.parts.house), ("persona", request.parts.persona)):
        block: dict[str, Any] = {"type": "text", "text": text}
        if name in request.breakpoints:
            block["cache_control"] = cache_control(request.cache_ttl)
        blocks.append(block)
    return blocks


def tool_block(request: VerdictRequest) -> dict[str, Any]:
    """The tool block; a breakpoint on it when the pair's samples will read the whole prompt."""
    block: dict[str, Any] = {"type": "text", "text": request.parts.tool}
    if "tool" in request.breakpoints:
        block["cache_control"] = cache_control(request.cache_ttl)
    return block


def _reask_turns(reask: Reask | None) -> list[dict[str, Any]]:
    if reask is None:
        return []
    if reask.kind == "invalid_verdict" and reask.call_id:
        return [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": reask.call_id,
                        "name": TOOL_NAME,
                        "input": reask.previous_input or {},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": reask.call_id,
                        "is_error": True,
                        "content": reask.message,
                    }
                ],
            },
        ]
    return [
        {"role": "assistant", "content": [{"type": "text", "text": reask.previous_text or "…"}]},
        {"role": "user", "content": [{"type": "text", "text": reask.message}]},
    ]


class _StreamReader:
    """Folds raw stream events into the verdict; unknown events and fields are ignored."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.stop_reason: str | None = None
        self.tool_index: int | None = None
        self.call_id: str | None = None
        self.args = PartialArgs()
        self.text: list[str] = []
        self.text_index: set[int] = set()
        self._text_size = 0
        self.start_usage: Any = None
        self.final_usage: Any = None

    def size(self) -> int:
        """Characters the model has written so far (tool arguments and text)."""
        return self.args.size + self._text_size

    def handle(self, event: Any, request_id: str | None) -> list[StreamEvent]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self.started = True
            self.start_usage = getattr(event.message, "usage", None)
            return [StreamStarted(request_id)]
        if kind == "content_block_start":
            block = event.content_block
            if getattr(block, "type", None) == "tool_use" and block.name == TOOL_NAME:
                if self.tool_index is None:
                    self.tool_index, self.call_id = event.index, block.id
            elif getattr(block, "type", None) == "text":
                self.text_index.add(event.index)
            return []
        if kind == "content_block_delta":
            delta = event.delta
            dtype = getattr(delta, "type", None)
            if dtype == "input_json_delta" and event.index == self.tool_index:
                snap = self.args.feed(delta.partial_json)
                return [ArgsDelta(snap)] if snap is not None else []
            if dtype == "text_delta" and event.index in self.text_index:
                self.text.append(delta.text)
                self._text_size += len(delta.text)
            return []
        if kind == "message_delta":
            self.stop_reason = getattr(event.delta, "stop_reason", None)
            self.final_usage = getattr(event, "usage", None)
            return []
        if kind == "message_stop":
            self.finished = True
        return []

    def usage(self) -> Usage:
        start, final = self.start_usage, self.final_usage
        if start is None and final is None:
            return Usage(known=False)

        def pick(name: str) -> int:
            for source in (final, start):
                value = getattr(source, name, None) if source is not None else None
                if isinstance(value, int):
                    return value
            return 0

        return Usage(
            input_tokens=pick("input_tokens"),
            output_tokens=pick("output_tokens"),
            cache_read_tokens=pick("cache_read_input_tokens"),
            cache_write_tokens=pick("cache_creation_input_tokens"),
            known=final is not None and isinstance(getattr(final, "output_tokens", None), int),
        )

    def usage_dict(self) -> dict[str, int] | None:
        return usage_payload(self.usage()) if self.started else None

    def ending(self, request_id: str | None) -> Ending:
        return Ending(
            started=self.started,
            end_marker=self.finished,
            stop_reason=self.stop_reason,
            usage=self.usage(),
            found=self.tool_index is not None,
            raw_args=self.args.text,
            text="".join(self.text),
            request_id=request_id,
            call_id=self.call_id,
        )

    def finish(self, request_id: str | None) -> StreamCompleted:
        return verdict_of(self.ending(request_id))
