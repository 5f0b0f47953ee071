"""The cache plan: which prefix segments a run's requests share, their size, and whether the
model will cache them at all (below its minimum cacheable length it silently will not).

Sizes are counted on the exact request bodies the provider will send, block by block, with the
same rules the emulator bills by (panel.emulator.promptcache): exact against the emulator, an
estimate against a real provider. Measured cache figures come from usage, never from here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from panel.modeltable import ModelInfo
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import Provider, VerdictRequest
from panel.providers.cacheblocks import (
    CacheBlock,
    anthropic_blocks,
    openai_blocks,
    responses_blocks,
)
from panel.providers.responses import explicit_breakpoints
from panel.runformat import CachePlan, CacheSegment, Ttl

DEFAULT_MIN_CACHE = 1024  # for models missing from the table
# Block indexes after the single verdict tool: [verdict tool, house, persona, tool block].
HOUSE, PERSONA, TOOL = 1, 2, 3


@dataclass(frozen=True)
class SampledTool:
    """One tool whose pairs are asked more than once (--samples): the tool block is a segment.

    `request` is any persona's request for the tool (the tool block is the same text for every
    persona); `samples` maps each persona to the draws its pair has in the run.
    """

    request: VerdictRequest
    samples: Mapping[str, int]


def build_cache_plan(
    provider: Provider,
    info: ModelInfo | None,
    requests: Sequence[VerdictRequest],
    ttl: Ttl,
    *,
    counts: Mapping[str, int] | None = None,
    sampled: Sequence[SampledTool] = (),
) -> CachePlan | None:
    """The plan for `requests`; with `counts` (persona id -> requests), one request per persona
    stands for all of that persona's requests (so a big run renders no prompt twice).

    With `sampled` (--samples K > 1), each sampled pair's tool block is a segment too: written by
    its first sample, read by the others. They are summed per (persona, K) into one segment
    `tool-blocks:<persona>×<K>` whose `shared_by` is K: the floor's arithmetic (each block
    written once, read K-1 times) holds for the sum as for one block.
    """
    if not requests:
        return None
    # The instructor provider on Anthropic sends the same Messages-API body shape.
    explicit = (
        isinstance(provider, AnthropicProvider) or getattr(provider, "wire", None) == "anthropic"
    )
    # Responses on GPT-5.6+: explicit breakpoints, as on Anthropic (plus the implicit one).
    responses = getattr(provider, "wire", None) == "responses"
    explicit = explicit or (responses and explicit_breakpoints(info))
    minimum = info.min_cache_tokens if info else DEFAULT_MIN_CACHE
    per_persona = Counter(counts) if counts is not None else Counter(r.persona_id for r in requests)
    total = sum(per_persona.values())
    firsts: dict[str, VerdictRequest] = {}
    for r in requests:
        firsts.setdefault(r.persona_id, r)
    segments: list[CacheSegment] = []
    warnings: list[str] = []
    house_tokens: int | None = None
    for persona, request in firsts.items():
        blocks = _blocks(provider, request, explicit)
        if house_tokens is None:
            house_tokens = sum(b.tokens for b in blocks[: HOUSE + 1])
            ok = house_tokens >= minimum and (not explicit or "house" in request.breakpoints)
            segments.append(
                CacheSegment(name="tools+house", tokens=house_tokens, shared_by=total, cacheable=ok)
            )
            if house_tokens < minimum:
                warnings.append(
                    f"the shared house block is {house_tokens} tokens with the tool definition, "
                    f"below {provider.model}'s minimum cacheable length ({minimum}): "
                    "it will not be cached"
                )
        own = blocks[PERSONA].tokens
        ok = house_tokens + own >= minimum and (not explicit or "persona" in request.breakpoints)
        segments.append(
            CacheSegment(
                name=f"persona:{persona}", tokens=own, shared_by=per_persona[persona], cacheable=ok
            )
        )
        if house_tokens + own < minimum:
            warnings.append(
                f"persona {persona}: the cached prefix up to its block is "
                f"{house_tokens + own} tokens, below {provider.model}'s minimum ({minimum}): "
                "it will not be cached"
            )
    if sampled and house_tokens is not None:
        persona_tokens = {s.name.removeprefix("persona:"): s.tokens for s in segments[1:]}
        segments += _tool_segments(
            provider, sampled, explicit, house_tokens, persona_tokens, minimum
        )
    if info is None:
        warnings.append(
            f"{provider.model} is not in the model table: assuming a {minimum}-token minimum"
        )
    marks = ["house", "persona", "tool"] if sampled else ["house", "persona"]
    return CachePlan(
        order=["tools", "house", "persona", "tool"],
        breakpoints=marks if explicit else [],
        ttl=ttl,
        min_cache_tokens=minimum,
        segments=segments,
        warnings=warnings,
    )


def _tool_segments(
    provider: Provider,
    sampled: Sequence[SampledTool],
    explicit: bool,
    house_tokens: int,
    persona_tokens: Mapping[str, int],
    minimum: int,
) -> list[CacheSegment]:
    """The sampled pairs' tool blocks, summed per (persona, samples, cacheable)."""
    sums: Counter[tuple[str, int, bool]] = Counter()
    for tool in sampled:
        tokens = _blocks(provider, tool.request, explicit)[TOOL].tokens
        marked = not explicit or "tool" in tool.request.breakpoints
        for persona, k in tool.samples.items():
            if k < 2:
                continue
            prefix = house_tokens + persona_tokens.get(persona, 0) + tokens
            sums[(persona, k, marked and prefix >= minimum)] += tokens
    return [
        CacheSegment(
            name=f"tool-blocks:{persona}×{k}" + ("" if ok else ":uncached"),
            tokens=tokens,
            shared_by=k,
            cacheable=ok,
        )
        for (persona, k, ok), tokens in sums.items()
    ]


def _blocks(provider: Provider, request: VerdictRequest, explicit: bool) -> list[CacheBlock]:
    params = provider.build_params(request)
    if getattr(provider, "wire", None) == "responses":
        return responses_blocks(params)
    return anthropic_blocks(params) if explicit else openai_blocks(params)
