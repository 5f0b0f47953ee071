"""What every streamed provider call shares: the event-stream check and the attempt's deadlines.

Every attempt has four bounds (docs/reliability.md, "Deadlines"), all in `StreamLimits`:

    first_byte  the request is sent and the response headers arrive (connect included): 60 s
    idle        between two stream events, once the headers are in: 60 s
    total       the whole attempt, first byte to last event: 600 s
    max_bytes   model-written bytes (tool arguments and text) one stream may carry: 256 KiB;
                the body itself (event framing included) may carry 64 times that, 16 MiB

Set them with `RunOptions.stream_limits`, or from the environment for the CLI:
`PANEL_STREAM_LIMITS="first_byte=30,idle=30,total=300"`.

The SDKs drop `ping` events, so a stream that only pings (F11) yields nothing: a timer around
each read turns that silence into `stalled` instead of a ten-minute hang on the read timeout.
A server that accepts and never answers is `timeout` after `first_byte`; a stream that sends
valid deltas forever is cut at `total` (`timeout`) or at `max_bytes` (`protocol`, not retried:
a runaway stream would only run away again). The body cap (`cap_wire_bytes`) catches what the
model-byte count cannot see: one endless line that never becomes an event (the SDK would
buffer it whole) and a compressed body that inflates without end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from panel.errors import ConfigError, ErrorClass, UpstreamError

T = TypeVar("T")
WIRE_BYTES_PER_MODEL_BYTE = 64


@dataclass(frozen=True)
class StreamLimits:
    """One attempt's deadlines (seconds) and its byte cap; small values in tests."""

    first_byte: float = 60.0
    idle: float = 60.0
    total: float = 600.0
    max_bytes: int = 256 * 1024
    connect: float = 10.0  # the TCP/TLS connect alone, inside first_byte

    @property
    def max_wire_bytes(self) -> int:
        """The body's cap, framing included: a real stream spends ~25 bytes per model byte."""
        return WIRE_BYTES_PER_MODEL_BYTE * self.max_bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, idle: float = 60.0) -> StreamLimits:
        """Limits from `PANEL_STREAM_LIMITS` ("first_byte=60,idle=60,total=600,max_bytes=…").

        Unset keys keep their defaults (`idle` from the caller's option); a malformed value is
        a ConfigError naming the variable.
        """
        values: dict[str, float | int] = {"idle": idle}
        spec = env.get("PANEL_STREAM_LIMITS", "").strip()
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, raw = item.partition("=")
            name = name.strip()
            try:
                if name not in cls.__dataclass_fields__:
                    raise ValueError(f"unknown key {name!r}")
                value = int(raw) if name == "max_bytes" else float(raw)
                if not 0 < value < float("inf"):
                    raise ValueError("must be a positive finite number")
            except ValueError as exc:
                raise ConfigError(f"PANEL_STREAM_LIMITS: {item!r}: {exc}") from None
            values[name] = value
        return cls(**values)  # type: ignore[arg-type]


class _SDKStream(Protocol):
    response: Any

    async def close(self) -> None: ...


class _Closeable(Protocol):
    """What an SDK's streamed body offers: an async iterator that can be closed."""

    async def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...


def drop_frames(exc: BaseException) -> None:
    """Drop the traceback of an error the SDK raised from inside its reading chain.

    Its frames hold that chain's half-read generators (see `close_stream`); kept as the context
    of the UpstreamError that reports it (and the engine keeps a pair's last error), they would
    stay alive and suspended until the garbage collector got to them. Without the frames they
    are finalised now, in this task's event loop.
    """
    exc.__traceback__ = None


async def close_stream(stream: _Closeable, reader: AsyncGenerator[Any, None] | None = None) -> None:
    """Close a streamed response and whatever read it, so that no async generator of either
    is left suspended.

    A suspended async generator is finalised whenever the garbage collector reaches it: perhaps
    in another thread, perhaps once this event loop has closed, when Python can only report it
    ("Exception ignored in: <async_generator object BoundAsyncStream.__aiter__>").

    - With `reader`, panel's own chain read the body (`panel.providers.sse` over
      `cap_wire_bytes` over httpx2's byte iterators), each layer closing the one below it when
      it ends: closing `reader` ends them all, then the response is closed.
    - Without, the SDK's own iterator read it (the batch results' JSONL decoder), a chain that
      stays suspended when the reading stopped early. Reading the closed stream to its end
      finishes that chain here: what the decoder had buffered comes out, then the closed body
      ends or raises at once.
    """
    if reader is not None:
        try:
            await reader.aclose()
        finally:
            await stream.close()
        return
    await stream.close()
    rest = stream.__aiter__()
    try:
        async for _ in rest:
            pass  # items read before the close; nothing more can arrive
    except Exception:  # noqa: S110 - a closed body raises on read: that ends the chain
        pass
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


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


def cap_wire_bytes(
    response: Any, limits: StreamLimits, provider: str, request_id: str | None
) -> None:
    """End the attempt as `protocol` once the body (decoded) passes `limits.max_wire_bytes`.

    Wraps the httpx response's `aiter_bytes`, which the SDKs' stream decoders read (and
    `aread`, for a response that is not streamed); the SDK wraps the error as a connection
    error, and `classify_exception` unwraps panel's own.
    """
    read = response.aiter_bytes
    cap = limits.max_wire_bytes

    async def capped(chunk_size: int | None = None) -> AsyncIterator[bytes]:
        seen = 0
        async with contextlib.aclosing(read(chunk_size)) as body:  # httpx's chain ends with it
            async for chunk in body:
                seen += len(chunk)
                if seen > cap:
                    raise UpstreamError(
                        ErrorClass.PROTOCOL,
                        f"{provider}: the response body passed its {cap}-byte cap; cut",
                        request_id=request_id,
                    )
                yield chunk

    response.aiter_bytes = capped


async def first_byte(opening: Awaitable[T], limits: StreamLimits, *, provider: str) -> T:
    """The opened stream (headers in); `timeout` when they take longer than `first_byte`."""
    try:
        async with asyncio.timeout(limits.first_byte):  # never wait_for: see with_idle_timeout
            return await opening
    except TimeoutError:
        raise UpstreamError(
            ErrorClass.TIMEOUT,
            f"{provider}: no response within {limits.first_byte:g}s (first-byte deadline)",
        ) from None


async def with_idle_timeout(
    items: AsyncIterator[T],
    seconds: float,
    *,
    provider: str,
    request_id: str | None,
    started: Callable[[], bool],
    total: float | None = None,
    max_bytes: int | None = None,
    size: Callable[[], int] | None = None,
) -> AsyncGenerator[T, None]:
    """The stream's items; `stalled` when none arrives for `seconds`.

    With `total`, the stream ends as `timeout` once that many seconds have passed since the
    first read; with `max_bytes` and `size` (bytes the model has written so far), as
    `protocol` once it is over the cap. `items` is closed when this generator ends, however it
    ends (an async for that stops early does not close what it iterates).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total if total is not None else None
    try:
        while True:
            wait = seconds
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - loop.time()))
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that
                # lands as the awaited item arrives, and a stream delivers items constantly, so
                # Ctrl-C or SIGTERM mid-run would be lost and the run would go on to the end.
                async with asyncio.timeout(wait):
                    item = await anext(items)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    raise UpstreamError(
                        ErrorClass.TIMEOUT,
                        f"{provider}: the stream ran past its {total:g}s total deadline",
                        request_id=request_id,
                        billed=started(),
                    ) from None
                raise UpstreamError(
                    ErrorClass.STALLED,
                    f"{provider}: no stream progress for {seconds:g}s",
                    request_id=request_id,
                    billed=started(),
                ) from None
            yield item
            if max_bytes is not None and size is not None and size() > max_bytes:
                raise UpstreamError(
                    ErrorClass.PROTOCOL,
                    f"{provider}: the stream passed its {max_bytes}-byte cap; cut",
                    request_id=request_id,
                    billed=started(),
                )
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()
