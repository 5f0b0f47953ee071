"""An attempt's stream leaves nothing suspended: completed, failed mid-stream, or stopped early.

The SDKs read a response through a chain of async generators (decoders, httpx2's byte
iterators down to `BoundAsyncStream.__aiter__`). One left suspended is finalised whenever the
garbage collector reaches it — in another thread, or once its event loop has closed, which
Python reports as "Exception ignored in: <async_generator ...>" (a failure under
`filterwarnings = error`). Each case records every async generator first iterated during the
attempt and checks that none is still suspended once the attempt is over and the event loop
has run what the attempt left scheduled, with the garbage collector off (so nothing is
cleaned up by chance) and the error kept alive, as the engine keeps it
(`PairState.last_error`, whose traceback holds the provider's frame).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import pytest
from asyncgens import started_generators, still_suspended

from panel.emulator.runner import EmulatorHandle
from panel.errors import UpstreamError
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import PromptParts, Provider, StreamStarted, VerdictRequest
from panel.providers.openai import OpenAIProvider
from panel.providers.responses import ResponsesProvider
from panel.providers.streaming import with_idle_timeout
from panel.verdict import verdict_tool_schema

PROVIDERS = {
    "anthropic": lambda e: AnthropicProvider("claude-sonnet-5", api_key="k", base_url=e.base_url),
    "openai": lambda e: OpenAIProvider("gpt-5.6-luna", api_key="k", base_url=e.openai_base_url),
    "responses": lambda e: ResponsesProvider(
        "gpt-6-astra", api_key="k", base_url=e.openai_base_url
    ),
}


def _request() -> VerdictRequest:
    parts = PromptParts(
        house="You review developer tools for a living. " * 150,
        persona='<persona id="builder" name="Ada Builder"> You build things.',
        tool="The tool under review: a YAML linter. Call record_verdict.",
    )
    return VerdictRequest(
        tool_slug="yamllint", persona_id="builder", parts=parts, tool_schema=verdict_tool_schema()
    )


async def _attempt(
    provider: Provider, *, stop_early: bool
) -> tuple[list[Any], list[str], list[str]]:
    """One attempt as the engine runs it: what it yielded or raised, what it left suspended,
    and what it left for the loop's finalizer (dropped unclosed)."""
    kept: list[Any] = []  # the events, or the error (its traceback holds the provider's frame)
    with started_generators() as started:
        try:
            async with aclosing(provider.stream_verdict(_request())) as events:
                async for event in events:
                    kept.append(event)
                    if stop_early and isinstance(event, StreamStarted):
                        break  # what a cancelled run or a raising event sink does
        except UpstreamError as exc:
            kept.append(exc)
        dropped = list(started.dropped)  # before still_suspended lets the finalizer run
        suspended = await still_suspended(started)
    return kept, suspended, dropped


@pytest.mark.parametrize("wire", list(PROVIDERS))
@pytest.mark.parametrize(
    ("fault", "stop_early"),
    [(None, False), (None, True), ("error_after_partial", False), ("overloaded_midstream", False)],
    ids=["completed", "stopped-early", "error-after-partial", "overloaded-midstream"],
)
async def test_an_attempt_leaves_no_async_generator_suspended(
    emulator: EmulatorHandle, wire: str, fault: str | None, stop_early: bool
) -> None:
    if fault is not None:
        emulator.configure(rules=[{"match": "record_verdict", "fault": fault}])
    provider = PROVIDERS[wire](emulator)
    try:
        kept, suspended, dropped = await _attempt(provider, stop_early=stop_early)
    finally:
        await provider.aclose()
    assert kept, "the attempt produced nothing: the test proves nothing"
    if fault is not None:
        assert isinstance(kept[-1], UpstreamError), kept[-1]
    assert suspended == [], "\n".join(suspended)
    # Closed where they were read, each layer by the one above: none of panel's reading chain
    # is left for the loop's finalizer. httpcore2's connection iterator is the one exception:
    # httpx2 does not close it when its own iterator is closed before the body's end (a stream
    # read to `[DONE]` leaves the chunked terminator unread); the finalizer ends it on this loop,
    # as `suspended` shows.
    assert [d for d in dropped if d != "HTTP11ConnectionByteStream.__aiter__"] == [], dropped


async def test_a_cancel_mid_stream_is_never_lost() -> None:
    """Ctrl-C and SIGTERM cancel the run's tasks. A cancel that lands as the next stream item
    arrives must still end the read (on Python 3.11, asyncio.wait_for dropped it, and the run
    went on to its end); tried at every step of the first forty, a loop iteration apart."""

    running = True

    async def endless() -> AsyncGenerator[int, None]:
        n = 0
        while running:
            await asyncio.sleep(0)  # an item arrives every loop iteration
            n += 1
            yield n

    async def read() -> None:
        items = with_idle_timeout(
            endless(), 5.0, provider="test", request_id=None, started=lambda: True
        )
        async for _ in items:
            pass

    lost = []
    for step in range(1, 41):
        running = True
        task = asyncio.ensure_future(read())
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(10):
            await asyncio.sleep(0)
        if not task.done():
            lost.append(step)
            running = False  # end it anyway
        await asyncio.gather(task, return_exceptions=True)
    assert lost == [], f"the cancel was lost at steps {lost}"
