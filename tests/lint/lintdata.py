"""Hand-written verdicts for the lint tests (synthetic, written for these tests)."""

from __future__ import annotations

from typing import Any

from panel.inputs.tools import ToolSpec
from panel.runformat import PairResult

TOOL = ToolSpec(
    name="Ledgerline",
    tagline="Cache 2M tokens and stream tool calls without waiting",
    description=(
        "Ledgerline caches prompt prefixes of up to 2 million tokens for five minutes and "
        "streams tool-call arguments as server-sent events. The Pro plan costs $20/month "
        "per seat; version 1.2 added cache reads at a tenth of the input price."
    ),
    pricing="Paid",
)
QUESTIONS = {
    "primitive": "What is the primitive, and is the abstraction at the right level?",
    "weekend": "Could a weekend script replace it?",
}
# About 80 words; every figure in it is in the description, written another way.
GOOD_QUOTE = (
    "The primitive is a cache breakpoint on the prompt prefix, and it sits at the right "
    "level: the request says what to keep and the usage block says what was read. Keeping "
    "2,000,000 tokens warm for a few minutes suits agents that resend a long context on every "
    "turn, and at 20 USD a month per seat the Pro plan is easy to trial. A weekend script "
    "could not replace the server-side cache, although the streaming half is plain SSE that "
    "any client already parses. I would ship it for agent loops."
)
GOOD_HEADLINE = "Ship: the cache breakpoint is the right primitive for agents"
GOOD_ANSWERS = {
    "primitive": "A breakpoint marker on the request, with cache reads reported per response.",
    "weekend": "No: the server keeps the cache; a client script cannot.",
}


def result(
    *,
    persona: str = "builder",
    tool: str = "Ledgerline",
    slug: str = "ledgerline",
    ship: bool = True,
    confidence: float = 0.8,
    headline: str = GOOD_HEADLINE,
    quote: str = GOOD_QUOTE,
    rubric: dict[str, str] | None = None,
    **extra: Any,
) -> PairResult:
    return PairResult(
        tool=tool,
        tool_slug=slug,
        persona=persona,
        status="ok",
        ship=ship,
        confidence=confidence,
        headline=headline,
        quote=quote,
        rubric=dict(GOOD_ANSWERS if rubric is None else rubric),
        pair_key=f"k-{slug}-{persona}",
        synthetic=True,
        model="emulator:claude-sonnet-5",
        finished_at="2026-03-02T10:00:00Z",
        **extra,
    )
