"""An in-process provider double: a Python function answers every verdict request.

The way pydantic-ai ships `FunctionModel`: unit specs of the scheduler, the retry policy,
planning and costs (and a library user's own tests) drive the real engine with no HTTP, no
SDK and no emulator. The handler sees the exact request and how many times this draw (the
pair, or one sample of it) has been asked, and returns a `Reply` or raises `UpstreamError`
(already classified, as a real provider's would be):

    def handler(request: VerdictRequest, call: int) -> Reply:
        if call == 1:
            raise UpstreamError(ErrorClass.OVERLOADED, "busy")
        return Reply(tool_input=verdict_for(request))

    outcome = await run_panel(tools, options, provider=FunctionProvider(handler))

Request bodies are the Anthropic Messages bodies (`messages_body`), so the cache plan is the
one a real Anthropic run of the same model gets. Everything it writes is labelled synthetic.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from panel.modeltable import ModelInfo, model_info
from panel.providers.anthropic import messages_body
from panel.providers.base import (
    ArgsDelta,
    StreamCompleted,
    StreamEvent,
    StreamStarted,
    VerdictRequest,
)
from panel.providers.cacheblocks import anthropic_blocks
from panel.runformat import Usage


@dataclass(frozen=True)
class Reply:
    """One answer: the verdict tool's input, and (optionally) the usage to bill for it.

    Without a usage, every prompt token counts as uncached input and output is 200 tokens.
    """

    tool_input: dict[str, Any]
    usage: Usage | None = None
    stop_reason: str = "tool_use"
    started: bool = True  # False: end without StreamStarted (a response that never began)


Handler = Callable[[VerdictRequest, int], "Reply | Awaitable[Reply]"]


@dataclass
class FunctionProvider:
    handler: Handler
    model: str = "claude-sonnet-5"
    name: str = "function"
    synthetic: bool = True
    wire: str = "anthropic"  # planning reads the Messages-API cache rules
    info: ModelInfo | None = None
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tool, persona) → asks
    # (tool, persona, sample) → asks: the `call` a handler sees (one per draw with --samples)
    draw_calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    requests: list[VerdictRequest] = field(default_factory=list)  # in the order received
    in_flight: int = 0
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        if self.info is None:
            self.info = model_info(self.model)

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        return messages_body(self.model, self.info, request)

    def prompt_tokens(self, request: VerdictRequest) -> int:
        return sum(b.tokens for b in anthropic_blocks(self.build_params(request)))

    async def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        key = (request.tool_slug, request.persona_id, request.sample)
        self.calls[key[:2]] += 1
        self.draw_calls[key] += 1
        self.requests.append(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # a real await point: other pairs interleave here
            answer = self.handler(request, self.draw_calls[key])
            reply = await answer if inspect.isawaitable(answer) else answer
            assert isinstance(reply, Reply), "a FunctionProvider handler returns a Reply"
            request_id = f"fn_{request.tool_slug}_{request.persona_id}_{self.draw_calls[key]}"
            if reply.started:
                yield StreamStarted(request_id=request_id)
            yield ArgsDelta(snapshot=dict(reply.tool_input))
            usage = reply.usage or Usage(
                input_tokens=self.prompt_tokens(request), output_tokens=200
            )
            yield StreamCompleted(
                tool_input=dict(reply.tool_input),
                usage=usage,
                stop_reason=reply.stop_reason,
                request_id=request_id,
            )
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None
