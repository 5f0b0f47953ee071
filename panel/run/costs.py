"""Dollars from tokens: actual cost, the caching floor and the no-cache baseline.

Prices come from the model table (`ModelInfo.prices`, USD per million tokens). Three figures:

- **actual** (`usd`): uncached input at the base input price, cache writes at the write price
  for the run's TTL (5m or 1h), cache reads at the read price, output at the output price.
- **floor** (`floor_usd`): the least the run's input could cost with the cache plan. Each
  cacheable segment (`CachePlan.segments`, cacheable=True) is written once at the write price
  and read by each of the other `shared_by - 1` requests at the read price; a segment used by
  a single request is not shared and counts at the base price (writing it would cost more).
  Segments are nested prefixes, so a segment's tokens are its own increment ("persona:X" is
  the persona block alone, after "tools+house"). Everything else — the uncached tails, i.e.
  total input minus (tokens × shared_by) of the cacheable segments, and non-cacheable
  segments — counts at the base price. Output is added at its actual cost.
- **no-cache baseline** (`no_cache_usd`): all input tokens at the base price, plus output.

Output is identical in all three, so their ratios compare input handling only. With
`batch=True` every figure is halved (the providers' batch services bill all token kinds at
50%). A figure that cannot be computed (no prices for the model, no 1h write price, a usage
without token counts) gives `Cost.known = False`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from panel.modeltable import ModelInfo, Prices
from panel.runformat import CachePlan, CacheStats, Cost, Ttl, Usage

BATCH_FACTOR = 0.5
_PER_TOKEN = 1e-6  # prices are per million tokens


def write_price(prices: Prices, ttl: Ttl) -> float | None:
    """USD per million cache-write tokens for the TTL, or None if the model has no such price."""
    return prices.cache_write_1h if ttl == "1h" else prices.cache_write_5m


def _usd(value_per_million: float, batch: bool) -> float:
    return round(value_per_million * _PER_TOKEN * (BATCH_FACTOR if batch else 1.0), 10)


def usage_cost(
    info: ModelInfo, usage: Usage, *, ttl: Ttl = "5m", batch: bool = False
) -> float | None:
    """The actual cost of one usage, or None if a needed price or the token counts are unknown."""
    p = info.prices
    if p is None or not usage.known:
        return None
    w = write_price(p, ttl)
    if w is None and usage.cache_write_tokens:
        return None
    total = (
        usage.input_tokens * p.input
        + usage.cache_write_tokens * (w or 0.0)
        + usage.cache_read_tokens * p.cache_read
        + usage.output_tokens * p.output
    )
    return _usd(total, batch)


@dataclass
class _Totals:
    usage: Usage
    requests: int


def _sum(usages: Iterable[Usage]) -> _Totals:
    total, n = Usage(), 0
    for u in usages:  # streaming: a 10k-pair run never builds a list here
        total += u
        n += 1
    return _Totals(total, n)


def _floor_input(p: Prices, w: float | None, plan: CachePlan | None, total_input: int) -> float:
    """The floor's input cost (USD per million × tokens) for `total_input` tokens under `plan`."""
    cost = 0.0
    in_prefixes = 0
    for seg in plan.segments if plan else []:
        if not seg.cacheable or seg.shared_by < 1:
            continue
        base = seg.tokens * seg.shared_by * p.input
        if w is None:
            cached = base
        else:
            cached = seg.tokens * w + seg.tokens * (seg.shared_by - 1) * p.cache_read
        cost += min(cached, base)
        in_prefixes += seg.tokens * seg.shared_by
    # A plan that counts more prefix tokens than were sent (e.g. reused pairs left in
    # shared_by) cannot make the tail negative.
    return cost + max(0, total_input - in_prefixes) * p.input


def _unknown(batch: bool) -> Cost:
    return Cost(usd=0.0, floor_usd=0.0, no_cache_usd=0.0, known=False, batch_discount=batch)


def cost_summary(
    info: ModelInfo,
    results_usage: Iterable[Usage],
    plan: CachePlan | None,
    *,
    ttl: Ttl = "5m",
    batch: bool = False,
) -> Cost:
    """Actual, floor and no-cache cost of a run from the usage of every billed request.

    Pass one Usage per request the provider billed (retries included: they are real spend);
    `plan.segments[*].shared_by` must count the requests sent in this run. Without a plan the
    floor is the no-cache baseline (nothing is known to be shared).
    """
    p = info.prices
    t = _sum(results_usage)
    if p is None:
        return _unknown(batch)
    u = t.usage
    w = write_price(p, ttl)
    known = u.known and not (w is None and u.cache_write_tokens)
    total_input = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    output = u.output_tokens * p.output
    actual = (
        u.input_tokens * p.input
        + u.cache_write_tokens * (w if w is not None else p.input)
        + u.cache_read_tokens * p.cache_read
        + output
    )
    floor = _floor_input(p, w, plan, total_input) + output if t.requests else 0.0
    no_cache = total_input * p.input + output
    return Cost(
        usd=_usd(actual, batch),
        floor_usd=_usd(floor, batch),
        no_cache_usd=_usd(no_cache, batch),
        known=known,
        batch_discount=batch,
    )


def estimate_run(
    info: ModelInfo,
    plan: CachePlan | None,
    n_requests: int,
    est_tail_tokens: int,
    est_output_tokens: int,
    *,
    ttl: Ttl | None = None,
    batch: bool = False,
    tail_requests: int | None = None,
) -> Cost:
    """A preflight estimate, assuming the cache plan is realised (so usd == floor_usd).

    `est_tail_tokens` and `est_output_tokens` are per request; the tail is every input token
    not in a plan segment (the tool block). Total input = Σ segment tokens × shared_by (all
    segments) + tail_requests × tail, where `tail_requests` (default: all) leaves out the
    requests whose tool block is itself a segment (sampled pairs). TTL defaults to the plan's.
    """
    p = info.prices
    if p is None:
        return _unknown(batch)
    ttl = ttl or (plan.ttl if plan else "5m")
    w = write_price(p, ttl)
    prefix = sum(s.tokens * s.shared_by for s in plan.segments) if plan else 0
    tails = n_requests if tail_requests is None else tail_requests
    total_input = prefix + tails * est_tail_tokens
    output = n_requests * est_output_tokens * p.output
    floor = _floor_input(p, w, plan, total_input) + output if n_requests else 0.0
    no_cache = total_input * p.input + output if n_requests else 0.0
    return Cost(
        usd=_usd(floor, batch),
        floor_usd=_usd(floor, batch),
        no_cache_usd=_usd(no_cache, batch),
        known=w is not None or not plan,
        batch_discount=batch,
    )


def one_sample_plan(plan: CachePlan, pairs_per_persona: Mapping[str, int]) -> CachePlan:
    """The plan the same pairs would have with one sample each (for the preflight's "what K
    costs"): no tool-block segments, every prefix shared by pairs instead of draws."""
    total = sum(pairs_per_persona.values())
    segments = []
    for seg in plan.segments:
        if seg.name == "tools+house":
            segments.append(seg.model_copy(update={"shared_by": total}))
        elif seg.name.startswith("persona:"):
            n = pairs_per_persona.get(seg.name.removeprefix("persona:"), 0)
            segments.append(seg.model_copy(update={"shared_by": n}))
    return plan.model_copy(update={"segments": segments})


def cache_stats(usages: Iterable[Usage]) -> CacheStats:
    """Measured cache figures (never assumptions) from the usage of every billed request."""
    requests = reading = read = write = uncached = 0
    for u in usages:
        requests += 1
        reading += u.cache_read_tokens > 0
        read += u.cache_read_tokens
        write += u.cache_write_tokens
        uncached += u.input_tokens
    return CacheStats(
        requests=requests,
        requests_reading_cache=reading,
        read_tokens=read,
        write_tokens=write,
        uncached_tokens=uncached,
    )


def run_cost(
    info: ModelInfo,
    streamed: Sequence[Usage],
    batched: Sequence[Usage],
    plan: CachePlan | None,
    *,
    ttl: Ttl = "5m",
) -> Cost:
    """A run's three figures when some attempts went through a batch service (half price).

    Streamed attempts (the cache warm-ups of batch mode) count at their actual price; the floor
    is the plan's floor for every request at the batch price plus the warm-ups' full-price share.
    """
    if not batched:
        return cost_summary(info, streamed, plan, ttl=ttl)
    batch = cost_summary(info, batched, plan, ttl=ttl, batch=True)
    if not streamed:
        return batch
    s = cost_summary(info, streamed, None, ttl=ttl)
    every = cost_summary(info, [*streamed, *batched], plan, ttl=ttl, batch=True)
    return Cost(
        usd=batch.usd + s.usd,
        floor_usd=every.floor_usd + s.usd * (1 - BATCH_FACTOR),
        no_cache_usd=batch.no_cache_usd + s.no_cache_usd,
        known=batch.known and s.known,
        batch_discount=True,
    )


def add_costs(a: Cost, b: Cost) -> Cost:
    """Two parts of one run (a resumed run adds what it spent to what was spent before)."""
    return Cost(
        usd=a.usd + b.usd,
        floor_usd=a.floor_usd + b.floor_usd,
        no_cache_usd=a.no_cache_usd + b.no_cache_usd,
        known=a.known and b.known,
        batch_discount=a.batch_discount,
    )


__all__ = [
    "BATCH_FACTOR",
    "Ttl",
    "add_costs",
    "cache_stats",
    "cost_summary",
    "estimate_run",
    "one_sample_plan",
    "run_cost",
    "usage_cost",
]
