"""The steps every emulator response shares, whichever wire (Messages, Chat Completions) or
the batch store serves it: when it begins, how fast it goes, and what it costs.

- `begin_response`: the response has begun, so its pending cache writes become readable (the
  real APIs' rule: an entry exists once the response writing it has started) and the stats
  count its cache read and write.
- `make_pacer`: time to first token grows with the uncached input (writes included); output then
  streams at the model's steady rate (`latency.py`).
- `settle`: output tokens are debited from the rate limiter and, when the attempt is billed,
  its cost is added to the emulator's bill.
- `usage_cost`: the one billing arithmetic (the model table's prices; batch: 50% off).
- `stream_body`: one streamed response on any wire, paced, with the wire faults cut in at the
  same points (`anthropic_reply.cut_points`), settled and logged however it ends; each wire
  brings its events and its own error event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from panel.emulator.anthropic_reply import Tag, cut_points
from panel.emulator.latency import Pacer, latency_plan
from panel.emulator.sse import ConnectionReset
from panel.emulator.state import cost_usd

if TYPE_CHECKING:
    from panel.emulator.exchange import Exchange
    from panel.emulator.promptcache import AnthropicCache, CacheResult, OpenAICache
    from panel.modeltable import ModelInfo


def usage_cost(model: ModelInfo, result: CacheResult, output: int, *, batch: bool = False) -> float:
    """What one response costs: its cache accounting plus `output` tokens."""
    return cost_usd(
        model,
        uncached=result.uncached_tokens,
        write_5m=result.write_5m_tokens,
        write_1h=result.write_1h_tokens,
        read=result.read_tokens,
        output=output,
        batch=batch,
    )


def begin_response(ex: Exchange, cache: AnthropicCache | OpenAICache, result: CacheResult) -> None:
    """The response begins: pending cache writes become readable and count in the stats."""
    cache.activate(result.ticket)
    ex.state.note_cache(read_tokens=result.read_tokens, write_tokens=result.write_tokens)


def make_pacer(ex: Exchange, model: ModelInfo, result: CacheResult) -> Pacer:
    uncached = result.uncached_tokens + result.write_tokens
    return Pacer(latency_plan(model, uncached, ex.state.config.latency_scale), ex.arrived)


def settle(ex: Exchange, model: ModelInfo, result: CacheResult, output: int) -> None:
    """The response is over (or cut): debit its output and bill it if it was billed."""
    ex.state.ratelimiter.debit_output(ex.key, output)
    if ex.billed:
        ex.state.bill(usage_cost(model, result, output))


GARBAGE = (
    b"<html><body>upstream connect error or disconnect/reset before headers. "
    b'reset reason: connection termination</body></html>\n\x00\x1b[0m{"partial": tr\n'
)
PING_EVERY_S = 1.0


async def stream_body(
    ex: Exchange,
    model: ModelInfo,
    result: CacheResult,
    cache: AnthropicCache | OpenAICache,
    *,
    output: int,
    usage: Any,
    events: Callable[[], Sequence[tuple[Tag, bytes, int]]],
    ping: bytes,
    error_event: Callable[[str, int], bytes],
) -> AsyncGenerator[bytes, None]:
    """The body of one streamed response: `events()` (tag, wire bytes, output tokens emitted
    by then), paced from the request's arrival.

    The exchange's fault cuts in: `garbage` (a proxy's HTML after the first-token wait),
    `stall` (only `ping` until `stall_seconds`), `overloaded_midstream` after the first event
    and `error_after_partial` halfway (the wire's `error_event(fault, index)`),
    `reset_midstream` (billed, then the connection drops) and `eof_early` (billed, then a clean
    end before the final event). Whatever ends it, the request is logged with `usage` (and why,
    when the client went away), and a response that never began leaves no cache entry.
    """
    fault = ex.fault_name
    activated = False
    note: str | None = None
    try:
        pacer = make_pacer(ex, model, result)
        if fault == "garbage":
            await pacer.first_token()
            yield GARBAGE
            return
        if fault == "stall":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ex.state.config.stall_seconds
            while (left := deadline - loop.time()) > 0:
                yield ping
                await asyncio.sleep(min(PING_EVERY_S, left))
            return
        wire = events()
        cuts = cut_points(wire)
        await pacer.first_token()
        begin_response(ex, cache, result)
        activated = True
        # Events already due go out in one write (one HTTP chunk), as a server behind on its
        # schedule flushes what it has: the bytes and the events are the same, and every
        # event leaves no later than its own time. At latency 0 a whole body is one write;
        # when the pacer has to wait, what is due is sent first.
        due: list[bytes] = []
        for i, (_, data, emitted) in enumerate(wire):
            if (fault == "overloaded_midstream" and i == cuts["after_start"]) or (
                fault == "error_after_partial" and i == cuts["mid"]
            ):
                yield b"".join([*due, error_event(fault, i)])
                return
            if fault == "reset_midstream" and i == cuts["mid"]:
                if due:
                    yield b"".join(due)
                settle(ex, model, result, output)
                note = "connection reset"
                raise ConnectionReset(ex.request_id)
            if fault == "eof_early" and i == cuts["late"]:
                if due:
                    yield b"".join(due)
                settle(ex, model, result, output)
                return
            wait = pacer.wait_for(emitted)
            if wait > 0:
                if due:
                    yield b"".join(due)
                    due.clear()
                    wait = pacer.wait_for(emitted)  # the write may have taken a while
                await asyncio.sleep(wait)
            due.append(data)
        if due:
            yield b"".join(due)
        settle(ex, model, result, output)
    except asyncio.CancelledError:
        note = "client disconnected"
        raise
    finally:
        if not activated:
            cache.abandon(result.ticket)
        ex.finish(200, usage, note)


__all__ = [
    "GARBAGE",
    "PING_EVERY_S",
    "begin_response",
    "make_pacer",
    "settle",
    "stream_body",
    "usage_cost",
]
