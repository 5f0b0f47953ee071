"""The providers' batch services behind one protocol: Anthropic Message Batches, OpenAI Batch.

Each turns a finished batch item into what the streaming path would have produced — a
StreamCompleted, or an UpstreamError classified the same way (truncated, refused, no tool call,
invalid JSON) — so panel.batch.via_api validates and records batch results exactly like
streamed ones.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from panel.errors import ConfigError, ErrorClass, UpstreamError
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import Provider, StreamCompleted
from panel.providers.completeness import Ending, verdict_of
from panel.providers.openai import OpenAIProvider
from panel.providers.responses import ResponsesProvider
from panel.providers.streaming import close_stream
from panel.runformat import Usage
from panel.tokens import canonical_json
from panel.verdict import TOOL_NAME

if TYPE_CHECKING:
    import anthropic
    import openai


Api = Literal["anthropic", "openai"]


# -- the two services ---------------------------------------------------------------------------


@dataclass
class ItemResult:
    custom_id: str
    completed: StreamCompleted | None = None
    error: UpstreamError | None = None


class BatchService(Protocol):
    api: Api
    max_requests: int
    max_bytes: int

    def item_params(self, params: dict[str, Any]) -> dict[str, Any]: ...

    async def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str: ...

    async def ended(self, batch_id: str) -> bool: ...

    def results(self, batch_id: str) -> AsyncGenerator[ItemResult, None]:
        """The finished batch's items; the caller closes it when it stops early."""
        ...


_ANTHROPIC_ERRORS = {
    "overloaded_error": ErrorClass.OVERLOADED,
    "rate_limit_error": ErrorClass.RATE_LIMITED,
    "api_error": ErrorClass.SERVER_ERROR,
    "timeout_error": ErrorClass.TIMEOUT,
    "authentication_error": ErrorClass.AUTH,
    "permission_error": ErrorClass.AUTH,
    "billing_error": ErrorClass.SPEND_CAP,
    "request_too_large": ErrorClass.CONTEXT_TOO_LONG,
}


def unbilled(status: str, name: str) -> UpstreamError:
    if status == "expired":
        return UpstreamError(
            ErrorClass.TIMEOUT, f"{name}: the batch expired before this request ran"
        )
    return UpstreamError(ErrorClass.SERVER_ERROR, f"{name}: this batch request was {status}")


def _verdict_of(
    stop: str | None,
    tool_input: object,
    raw: str,
    usage: Usage,
    request_id: str | None,
    call_id: str | None,
    text: str,
    found: bool,
) -> StreamCompleted:
    """A whole batch message through the streaming path's one check (completeness.verdict_of)."""
    return verdict_of(
        Ending(
            started=True,
            end_marker=True,
            stop_reason=stop or "",
            usage=usage,
            found=found,
            raw_args=raw,
            tool_input=tool_input if isinstance(tool_input, dict) else None,
            text=text,
            request_id=request_id,
            call_id=call_id,
            default_stop="",
        )
    )


class AnthropicBatches:
    api: Api = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def __init__(self, client: anthropic.AsyncAnthropic, name: str) -> None:
        self.client, self.name = client, name

    def item_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    async def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        reqs: list[Any] = [{"custom_id": c, "params": p} for c, p in items]
        batch = await self.client.messages.batches.create(requests=reqs)
        return batch.id

    async def ended(self, batch_id: str) -> bool:
        batch = await self.client.messages.batches.retrieve(batch_id)
        return batch.processing_status == "ended"

    async def results(self, batch_id: str) -> AsyncGenerator[ItemResult, None]:
        decoder = await self.client.messages.batches.results(batch_id)  # a streamed JSONL body
        try:
            async for entry in decoder:
                yield self._item(entry)
        finally:
            await close_stream(decoder)

    def _item(self, entry: Any) -> ItemResult:
        cid, result = str(entry.custom_id), entry.result
        kind = getattr(result, "type", None)
        if kind == "errored":
            err = getattr(getattr(result, "error", None), "error", None)
            etype, msg = str(getattr(err, "type", "api_error")), str(getattr(err, "message", ""))
            klass = _ANTHROPIC_ERRORS.get(etype, ErrorClass.INVALID_REQUEST)
            return ItemResult(cid, error=UpstreamError(klass, f"{self.name} batch {etype}: {msg}"))
        if kind != "succeeded":
            return ItemResult(cid, error=unbilled(str(kind), self.name))
        m = result.message
        u = m.usage
        usage = Usage(
            input_tokens=int(u.input_tokens or 0),
            output_tokens=int(u.output_tokens or 0),
            cache_read_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
        )
        tool = next((b for b in m.content if b.type == "tool_use" and b.name == TOOL_NAME), None)
        text = "".join(getattr(b, "text", "") for b in m.content if b.type == "text")
        value = tool.input if tool is not None else None
        raw = (
            value if isinstance(value, str) else canonical_json(value) if value is not None else ""
        )
        try:
            done = _verdict_of(
                m.stop_reason,
                value,
                raw,
                usage,
                m.id,
                tool.id if tool else None,
                text,
                tool is not None,
            )
        except UpstreamError as err:
            return ItemResult(cid, error=err)
        return ItemResult(cid, completed=done)


class OpenAIBatches:
    api: Api = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    endpoint: Literal["/v1/chat/completions"] = "/v1/chat/completions"

    def __init__(self, client: openai.AsyncOpenAI, name: str) -> None:
        self.client, self.name = client, name

    def item_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k not in ("stream", "stream_options")}

    async def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        data = b"".join(
            json.dumps({"custom_id": c, "method": "POST", "url": self.endpoint, "body": p}).encode()
            + b"\n"
            for c, p in items
        )
        f = await self.client.files.create(file=("panel-batch.jsonl", data), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=f.id, endpoint=self.endpoint, completion_window="24h"
        )
        return batch.id

    async def ended(self, batch_id: str) -> bool:
        batch = await self.client.batches.retrieve(batch_id)
        return batch.status in ("completed", "failed", "expired", "cancelled")

    async def results(self, batch_id: str) -> AsyncGenerator[ItemResult, None]:
        batch = await self.client.batches.retrieve(batch_id)
        for fid in (batch.output_file_id, batch.error_file_id):
            if not fid:
                continue
            content = await self.client.files.content(fid)
            for line in content.text.splitlines():
                if line.strip():
                    yield self._item(json.loads(line))

    def _item(self, line: dict[str, Any]) -> ItemResult:
        cid = str(line.get("custom_id"))
        resp = line.get("response")
        if not isinstance(resp, dict):
            code = str((line.get("error") or {}).get("code", ""))
            return ItemResult(
                cid, error=unbilled("expired" if "expired" in code else "canceled", self.name)
            )
        status, body = int(resp.get("status_code") or 0), resp.get("body") or {}
        if status != 200:
            err = body.get("error") or {}
            klass = (
                ErrorClass.SPEND_CAP
                if err.get("code") == "insufficient_quota"
                or err.get("type") == "insufficient_quota"
                else ErrorClass.RATE_LIMITED
                if status == 429
                else ErrorClass.AUTH
                if status in (401, 403)
                else ErrorClass.OVERLOADED
                if status in (503, 529)
                else ErrorClass.SERVER_ERROR
                if status >= 500
                else ErrorClass.INVALID_REQUEST
            )
            return ItemResult(
                cid,
                error=UpstreamError(klass, f"{self.name} batch {status}: {err.get('message', '')}"),
            )
        u = body.get("usage") or {}
        details = u.get("prompt_tokens_details") or {}
        cached, written = (
            int(details.get("cached_tokens") or 0),
            int(details.get("cache_write_tokens") or 0),
        )
        usage = Usage(
            input_tokens=max(0, int(u.get("prompt_tokens") or 0) - cached - written),
            output_tokens=int(u.get("completion_tokens") or 0),
            cache_read_tokens=cached,
            cache_write_tokens=written,
            known=bool(u),
        )
        choice = (body.get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        call = next(
            (
                c
                for c in msg.get("tool_calls") or []
                if (c.get("function") or {}).get("name") == TOOL_NAME
            ),
            None,
        )
        args = str((call or {}).get("function", {}).get("arguments", ""))
        stop = "refusal" if msg.get("refusal") else choice.get("finish_reason")
        try:
            done = _verdict_of(
                stop,
                args,
                args,
                usage,
                resp.get("request_id"),
                (call or {}).get("id"),
                str(msg.get("content") or ""),
                call is not None,
            )
        except UpstreamError as err:
            return ItemResult(cid, error=err)
        return ItemResult(cid, completed=done)


def open_service(p: Provider) -> BatchService:
    """The batch service behind a provider (its SDK client, same key and base URL)."""
    if isinstance(p, AnthropicProvider) and p.name in ("anthropic", "emulator"):
        return AnthropicBatches(p.client, p.name)
    if isinstance(p, OpenAIProvider) and p.name in ("openai", "emulator"):
        return OpenAIBatches(p.client, p.name)
    if isinstance(p, ResponsesProvider) and p.name in ("openai", "emulator"):
        from panel.providers.responses_batch import ResponsesBatches  # it imports this module

        return ResponsesBatches(p.client, p.name)
    raise ConfigError(f"--via batch-api needs the anthropic or openai provider, not {p.name}")


__all__ = [
    "AnthropicBatches",
    "Api",
    "BatchService",
    "ItemResult",
    "OpenAIBatches",
    "open_service",
    "unbilled",
]
