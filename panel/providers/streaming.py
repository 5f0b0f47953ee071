"""What every streamed provider call shares: the event-stream check and the idle timer.

The SDKs drop `ping` events, so a stream that only pings (F11) yields nothing: a timer around
each read turns that silence into `stalled` instead of a ten-minute hang on the read timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

from panel.errors import ErrorClass, UpstreamError

T = TypeVar("T")


class _SDKStream(Protocol):
    response: Any

    async def close(self) -> None: ...


async def require_event_stream(stream: _SDKStream, provider: str, request_id: str | None) -> None:
    """A 200 whose body is not an event stream is a protocol error (F13), never a retry."""
    ctype = stream.response.headers.get("content-type", "")
    if "text/event-stream" not in ctype:
        await stream.close()
        raise UpstreamError(
            ErrorClass.PROTOCOL,
            f"{provider}: expected an event stream, got {ctype!r}",
            request_id=request_id,
        )


async def with_idle_timeout(
    items: AsyncIterator[T],
    seconds: float,
    *,
    provider: str,
    request_id: str | None,
    started: Callable[[], bool],
) -> AsyncGenerator[T, None]:
    """The stream's items; `stalled` when none arrives for `seconds`."""
    while True:
        try:
            item = await asyncio.wait_for(anext(items), seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UpstreamError(
                ErrorClass.STALLED,
                f"{provider}: no stream progress for {seconds:g}s",
                request_id=request_id,
                billed=started(),
            ) from None
        yield item
