"""OpenAI Chat Completions, OpenRouter and OpenAI-compatible servers (vLLM, Ollama, LM Studio).

Tool-call deltas are accumulated by index, and by id where a compatible server reuses index 0
for different calls. `stream_options.include_usage` is always asked for; its final chunk
(`choices: []`) is how a complete stream is recognised (`[DONE]` only ends the reading). The SDK
opens the stream; panel reads its events (`panel.providers.sse`), not the SDK's typed objects.
The SDK's own retries are off (max_retries=0): panel.run.retry is the one retry owner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Literal

from panel.errors import UpstreamError
from panel.modeltable import ModelInfo, model_info
from panel.providers.anthropic import cache_control
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
from panel.providers.classify import classify_exception, classify_stream_error
from panel.providers.completeness import Ending, billed, verdict_of
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

Flavour = Literal["openai", "openrouter", "compatible"]


class OpenAIProvider:
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        name: str = "openai",
        flavour: Flavour = "openai",
        synthetic: bool = False,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        default_headers: dict[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        limits: StreamLimits | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.flavour = flavour
        self.info: ModelInfo | None = model_info(model)
        self.synthetic = synthetic
        self.limits = limits or StreamLimits(idle=idle_timeout, connect=connect_timeout)
        self.idle_timeout = self.limits.idle
        import httpx2
        import openai

        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unused",  # local compatible servers take any key
            base_url=base_url,
            max_retries=0,
            # A backstop only: panel's own deadlines (streaming.StreamLimits) end an attempt first.
            timeout=httpx2.Timeout(self.limits.total + 5.0, connect=self.limits.connect),
            default_headers=default_headers,
            http_client=http_client,
        )

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        forced = self.info.forced_tool_choice if self.info else False
        anthropic_route = self.flavour == "openrouter" and self.model.startswith("anthropic/")
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [
                _system(
                    request.parts.house,
                    cache=anthropic_route and "house" in request.breakpoints,
                    ttl=request.cache_ttl,
                ),
                _system(
                    request.parts.persona,
                    cache=anthropic_route and "persona" in request.breakpoints,
                    ttl=request.cache_ttl,
                ),
                _user(
                    request.parts.tool,
                    cache=anthropic_route and "tool" in request.breakpoints,
                    ttl=request.cache_ttl,
                ),
                *_reask_turns(request.reask),
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": TOOL_NAME,
                        "description": TOOL_DESCRIPTION,
                        "parameters": request.tool_schema,
                        "strict": True,
                    },
                }
            ],
            "tool_choice": (
                {"type": "function", "function": {"name": TOOL_NAME}} if forced else "auto"
            ),
            "parallel_tool_calls": False,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.flavour == "openai":
            params["max_completion_tokens"] = request.max_tokens
            params["prompt_cache_key"] = openai_cache_key(request.parts.house)
        else:
            params["max_tokens"] = request.max_tokens
        return params

    async def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self.build_params(request)
        params.pop("stream")
        try:
            stream = await first_byte(
                self._client.chat.completions.create(
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
        self.synthetic = self.synthetic or from_emulator(headers)
        request_id = headers.get("x-request-id") or headers.get("request-id")
        await require_event_stream(stream, self.name, request_id)
        cap_wire_bytes(stream.response, self.limits, self.name, request_id)
        reader = _ChunkReader()
        chunks = with_idle_timeout(
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
            async for chunk in chunks:
                for out in reader.handle(chunk, request_id):
                    yield out
        except UpstreamError as exc:
            raise billed(exc, reader.ending(request_id)) from None
        except StreamErrorEvent as exc:  # an error object inside a 200 stream
            drop_frames(exc)
            raise _midstream_error(exc, self.name, reader, request_id) from None
        except Exception as exc:
            drop_frames(exc)
            raise _classified(exc, self.name, reader, request_id) from None
        finally:
            await close_stream(stream, chunks)
        yield reader.finish(request_id)

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client (same key and base URL), for the batch services."""
        return self._client

    async def aclose(self) -> None:
        await self._client.close()


def _system(text: str, *, cache: bool, ttl: str) -> dict[str, Any]:
    if not cache:
        return {"role": "system", "content": text}
    block = {"type": "text", "text": text, "cache_control": cache_control(ttl)}
    return {"role": "system", "content": [block]}


def _user(text: str, *, cache: bool, ttl: str) -> dict[str, Any]:
    if not cache:
        return {"role": "user", "content": text}
    block = {"type": "text", "text": text, "cache_control": cache_control(ttl)}
    return {"role": "user", "content": [block]}


def _reask_turns(reask: Reask | None) -> list[dict[str, Any]]:
    if reask is None:
        return []
    if reask.kind == "invalid_verdict" and reask.call_id:
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": reask.call_id,
                        "type": "function",
                        "function": {
                            "name": TOOL_NAME,
                            "arguments": json.dumps(reask.previous_input or {}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": reask.call_id, "content": reask.message},
        ]
    return [
        {"role": "assistant", "content": reask.previous_text or "…"},
        {"role": "user", "content": reask.message},
    ]


def _classified(
    exc: BaseException, name: str, reader: _ChunkReader, request_id: str | None
) -> UpstreamError:
    return billed(classify_exception(exc, provider=name), reader.ending(request_id))


def _midstream_error(
    exc: StreamErrorEvent, name: str, reader: _ChunkReader, request_id: str | None
) -> UpstreamError:
    end = reader.ending(request_id)
    err = classify_stream_error(
        exc.body,
        exc.message,
        provider=name,
        finish_reason=reader.finish_reason,
        raw_args=end.raw_args,
    )
    return billed(err, end)


class _ChunkReader:
    def __init__(self) -> None:
        self.started = False
        self.finish_reason: str | None = None
        self.usage_seen = False
        self.usage = Usage(known=False)
        self.calls: list[tuple[str | None, str | None, PartialArgs]] = []  # id, name, args
        self.by_index: dict[int, int] = {}
        self.verdict_slot: int | None = None
        self.refusal: list[str] = []
        self.text: list[str] = []
        self._text_size = 0

    def size(self) -> int:
        """Characters the model has written so far (tool arguments, text, refusal)."""
        return sum(c[2].size for c in self.calls) + self._text_size

    def handle(self, chunk: Any, request_id: str | None) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not self.started:
            self.started = True
            out.append(StreamStarted(request_id))
        if getattr(chunk, "usage", None) is not None:
            self.usage_seen = True
            self.usage = usage_of(chunk.usage)
        for choice in getattr(chunk, "choices", None) or []:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None:
                if getattr(delta, "refusal", None):
                    self.refusal.append(delta.refusal)
                    self._text_size += len(delta.refusal)
                if getattr(delta, "content", None):
                    self.text.append(delta.content)
                    self._text_size += len(delta.content)
                for call in getattr(delta, "tool_calls", None) or []:
                    slot = self._slot(call)
                    fragment = (call.function.arguments if call.function else None) or ""
                    snap = self.calls[slot][2].feed(fragment)
                    if slot == self.verdict_slot and snap is not None:
                        out.append(ArgsDelta(snap))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return out

    def _slot(self, call: Any) -> int:
        slot = self.by_index.get(call.index)
        # A new id at a known index is a new call (compatible servers reuse index 0).
        if slot is None or (call.id and self.calls[slot][0] and call.id != self.calls[slot][0]):
            name = call.function.name if call.function is not None else None
            self.calls.append((call.id, name, PartialArgs()))
            slot = len(self.calls) - 1
            self.by_index[call.index] = slot
            if name == TOOL_NAME and self.verdict_slot is None:
                self.verdict_slot = slot
        return slot

    def ending(self, request_id: str | None) -> Ending:
        ours = self.calls[self.verdict_slot] if self.verdict_slot is not None else None
        return Ending(
            started=self.started,
            end_marker=self.finish_reason is not None,
            stop_reason=self.finish_reason,
            usage=self.usage,
            usage_arrived=self.usage_seen,
            found=ours is not None,
            raw_args=ours[2].text if ours else "",
            text="".join(self.text),
            refusal="".join(self.refusal) or None,
            request_id=request_id,
            call_id=ours[0] if ours else None,
        )

    def finish(self, request_id: str | None) -> StreamCompleted:
        # The finish chunk ends the model's output; the usage chunk after it is accounting
        # only. Without usage the verdict stands with usage unknown (F20); an end before both
        # is truncation (F12). The checks are panel.providers.completeness's, for every wire.
        return verdict_of(self.ending(request_id))


def usage_of(raw: Any) -> Usage:
    """panel's Usage from a Chat Completions usage object."""
    details = getattr(raw, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    written = int(getattr(details, "cache_write_tokens", 0) or 0) if details else 0
    prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
    return Usage(
        # OpenAI's prompt_tokens includes cached ones; panel's input_tokens is the uncached rest.
        input_tokens=max(0, prompt - cached - written),
        output_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )
