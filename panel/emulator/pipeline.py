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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panel.emulator.latency import Pacer, latency_plan
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


__all__ = ["begin_response", "make_pacer", "settle", "usage_cost"]
