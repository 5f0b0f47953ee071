"""A streamed body read as its events, without the SDKs' typed objects.

The SDKs open the stream (request building, auth, status errors); panel reads the body. Their
own readers build a pydantic object for every event (`construct_type` on a union of a few
hundred event types), and a verdict streams its arguments in fragments of a few characters, so
there are hundreds of events per verdict: that construction was over a tenth of the test
suite's CPU (`bench/stream_read.py` measures it per verdict). Here each event's JSON is parsed
once into a `WireObject`, a dict whose fields also read as attributes (absent ones as None),
which is how the readers in `anthropic.py`, `openai.py` and `responses.py` use them.

What the SDKs do with the events is kept exactly:
- Messages (`anthropic_events`): `ping` and unnamed events are skipped, an `event: error` raises
  `StreamErrorEvent` (the SDK's APIStatusError with status 200), an event without data is
  skipped, every other one is its JSON.
- Chat Completions and Responses (`openai_events`): `data: [DONE]` ends the stream; a JSON
  object with a truthy `error` raises `StreamErrorEvent` (the SDK's bare APIError); every other
  event is its JSON, whatever its `event:` name.
Data that is not JSON raises `json.JSONDecodeError`, as the SDKs' `sse.json()` does.

The framing is the WHATWG server-sent events format: lines end with CRLF, LF or CR; `data:`
lines join with newlines; a blank line ends an event; a comment line starts with a colon; an
event still open when the body ends is dropped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any


class WireObject(dict[str, Any]):
    """A JSON object from the wire: `obj.field` is `obj.get("field")` (None when absent)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


def loads(data: str) -> Any:
    """JSON with its objects as WireObjects."""
    return json.loads(data, object_hook=WireObject)


class StreamErrorEvent(Exception):
    """An error the server reported inside a 200 stream; `body` is what it sent."""

    def __init__(self, message: str, body: object) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


@dataclass(slots=True)
class ServerSentEvent:
    event: str | None
    data: str


async def server_sent_events(
    chunks: AsyncIterator[bytes],
) -> AsyncGenerator[ServerSentEvent, None]:
    """The events in a body that arrives in `chunks` of any size. `chunks` is closed when this
    generator ends, however it ends, so the HTTP body's own generators end with it (a suspended
    one would be left to the garbage collector)."""
    rest = b""  # the start of a line not yet ended
    event: str | None = None
    data: list[str] = []
    pending = False  # a field was set since the last dispatch (id and retry count too)
    try:
        async for chunk in chunks:
            buf = rest + chunk
            hold = b""
            if buf.endswith(b"\r"):  # perhaps the first half of a CRLF split across two reads
                buf, hold = buf[:-1], b"\r"
            if b"\r" in buf:
                buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            *lines, rest = buf.split(b"\n")
            rest += hold
            for raw in lines:
                if not raw:
                    if pending:
                        yield ServerSentEvent(event, "\n".join(data))
                    event, data, pending = None, [], False
                    continue
                line = raw.decode("utf-8", errors="replace")
                if line.startswith(":"):
                    continue  # a comment
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value
                elif name not in ("id", "retry"):
                    continue  # unknown fields are ignored
                pending = True
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def anthropic_events(chunks: AsyncIterator[bytes]) -> AsyncGenerator[Any, None]:
    """A Messages stream's events, as the Anthropic SDK would yield them (see the top)."""
    async with aclosing(server_sent_events(chunks)) as events:
        async for sse in events:
            if sse.event is None or sse.event == "ping":
                continue
            if sse.event == "error":
                try:
                    body = loads(sse.data)
                except json.JSONDecodeError:
                    raise StreamErrorEvent(sse.data or "error event", sse.data) from None
                raise StreamErrorEvent(f"{body}", body)
            if sse.data:
                yield loads(sse.data)


async def openai_events(chunks: AsyncIterator[bytes]) -> AsyncGenerator[Any, None]:
    """A Chat Completions or Responses stream's events, as the OpenAI SDK would yield them."""
    async with aclosing(server_sent_events(chunks)) as events:
        async for sse in events:
            if sse.data.startswith("[DONE]"):
                return
            data = loads(sse.data)
            if isinstance(data, dict) and data.get("error"):
                error = data["error"]
                message = error.get("message") if isinstance(error, dict) else None
                if not message or not isinstance(message, str):
                    message = "An error occurred during streaming"
                raise StreamErrorEvent(message, error)
            yield data


__all__ = [
    "ServerSentEvent",
    "StreamErrorEvent",
    "WireObject",
    "anthropic_events",
    "loads",
    "openai_events",
    "server_sent_events",
]
