"""The cache plan: which prefix segments a run's requests share, their size, and whether the
model will cache them at all (below its minimum cacheable length it silently will not).

Sizes are counted on the exact request bodies the provider will send, block by block, with the
same rules the emulator bills by (panel.emulator.promptcache): exact against the emulator, an
estimate against a real provider. Measured cache figures come from usage, never from here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

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
HOUSE, PERSONA = (
    1,
    2,
)  # block indexes after the single verdict tool: [tool, house, persona, tool block]


def build_cache_plan(
    provider: Provider,
    info: ModelInfo | None,
    requests: Sequence[VerdictRequest],
    ttl: Ttl,
    *,
    counts: Mapping[str, int] | None = None,
) -> CachePlan | None:
    """The plan for `requests`; with `counts` (persona id -> pairs), one request per persona
    stands for all of that persona's pairs (so a big run renders no prompt twice)."""
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
    if info is None:
        warnings.append(
            f"{provider.model} is not in the model table: assuming a {minimum}-token minimum"
        )
    return CachePlan(
        order=["tools", "house", "persona", "tool"],
        breakpoints=["house", "persona"] if explicit else [],
        ttl=ttl,
        min_cache_tokens=minimum,
        segments=segments,
        warnings=warnings,
    )


def _blocks(provider: Provider, request: VerdictRequest, explicit: bool) -> list[CacheBlock]:
    params = provider.build_params(request)
    if getattr(provider, "wire", None) == "responses":
        return responses_blocks(params)
    return anthropic_blocks(params) if explicit else openai_blocks(params)
