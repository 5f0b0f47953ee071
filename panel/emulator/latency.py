"""The latency model: time to first token from uncached input, then a steady output rate.

TTFT = ttft_ms + ms_per_1k_uncached × uncached_input_tokens / 1000 (cache reads are free
here, as they are nearly free on the real API); output then arrives at output_tps tokens per
second; everything is multiplied by the latency scale (0 = instant). A Pacer schedules against
absolute deadlines on the event loop clock, so hundreds of concurrent streams do not drift: a
late wake-up shortens the next sleep instead of adding to it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from panel.modeltable import ModelInfo


@dataclass(frozen=True)
class LatencyPlan:
    """Seconds until the first token and seconds per output token, already scaled."""

    ttft_s: float
    per_token_s: float

    @property
    def instant(self) -> bool:
        return self.ttft_s <= 0 and self.per_token_s <= 0


def latency_plan(model: ModelInfo, uncached_input_tokens: int, scale: float) -> LatencyPlan:
    if scale <= 0:
        return LatencyPlan(0.0, 0.0)
    lat = model.latency
    ttft_ms = lat.ttft_ms + lat.ms_per_1k_uncached * max(0, uncached_input_tokens) / 1000
    per_token = 1.0 / lat.output_tps if lat.output_tps > 0 else 0.0
    return LatencyPlan(ttft_s=ttft_ms / 1000 * scale, per_token_s=per_token * scale)


class Pacer:
    """Sleeps until absolute deadlines measured from the request's start."""

    def __init__(self, plan: LatencyPlan, start: float | None = None) -> None:
        """`start` is the request's arrival on the loop clock, so parsing and cache work
        happen inside the modelled time to first token instead of adding to it."""
        self.plan = plan
        self._start = asyncio.get_running_loop().time() if start is None else start

    async def first_token(self) -> None:
        await self._until(self.plan.ttft_s)

    async def tokens_emitted(self, total_output_tokens: int) -> None:
        """Wait until `total_output_tokens` tokens would have been produced."""
        await self._until(self.plan.ttft_s + total_output_tokens * self.plan.per_token_s)

    def wait_for(self, total_output_tokens: int) -> float:
        """Seconds until `total_output_tokens` tokens would have been produced (0: by now)."""
        return self._delay(self.plan.ttft_s + total_output_tokens * self.plan.per_token_s)

    def _delay(self, offset_s: float) -> float:
        if self.plan.instant:
            return 0.0
        return max(0.0, self._start + offset_s - asyncio.get_running_loop().time())

    async def _until(self, offset_s: float) -> None:
        delay = self._delay(offset_s)
        if delay > 0:
            await asyncio.sleep(delay)
