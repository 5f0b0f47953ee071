"""Per-key token buckets for requests, input tokens and output tokens per minute.

Each limit is a bucket holding at most one minute's allowance that refills continuously.
Input tokens count everything except cache reads (as on the real API); output tokens are
debited after the response, so a burst can drive the bucket below zero and the next request
waits. No limits are configured by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DIMENSIONS = ("requests", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class RateLimits:
    rpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.itpm, self.otpm))

    def limit(self, dimension: str) -> int | None:
        return {"requests": self.rpm, "input_tokens": self.itpm, "output_tokens": self.otpm}[
            dimension
        ]


@dataclass
class _Bucket:
    capacity: float
    level: float
    stamp: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / 60.0)
        self.stamp = now

    def seconds_until(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (capped at its capacity)."""
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 0 else need * 60.0 / self.capacity


@dataclass(frozen=True)
class Verdict:
    """The outcome of an admission check, with what the response headers need."""

    allowed: bool
    retry_after_s: int
    snapshot: dict[str, tuple[int, int, float]]  # dimension -> (limit, remaining, reset_in_s)


@dataclass
class RateLimiter:
    clock: Callable[[], float]
    limits: RateLimits = field(default_factory=RateLimits)
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def configure(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets.clear()

    def _bucket(self, key: str, dimension: str, now: float) -> _Bucket | None:
        cap = self.limits.limit(dimension)
        if cap is None:
            return None
        b = self._buckets.get((key, dimension))
        if b is None or b.capacity != cap:
            b = _Bucket(capacity=float(cap), level=float(cap), stamp=now)
            self._buckets[(key, dimension)] = b
        b.refill(now)
        return b

    def admit(self, key: str, input_tokens: int) -> Verdict:
        """Check and, if allowed, debit one request and its input tokens."""
        now = self.clock()
        wants = {"requests": 1.0, "input_tokens": float(input_tokens), "output_tokens": 1.0}
        waits = []
        for dim, amount in wants.items():
            b = self._bucket(key, dim, now)
            if b is not None:
                waits.append(b.seconds_until(amount))
        allowed = all(w <= 0 for w in waits)
        if allowed:
            for dim in ("requests", "input_tokens"):
                b = self._bucket(key, dim, now)
                if b is not None:
                    b.level -= wants[dim]
        retry = 0 if allowed else max(1, math.ceil(max(waits)))
        return Verdict(allowed, retry, self._snapshot(key, now))

    def debit_output(self, key: str, output_tokens: int) -> None:
        b = self._bucket(key, "output_tokens", self.clock())
        if b is not None:
            b.level -= output_tokens

    def _snapshot(self, key: str, now: float) -> dict[str, tuple[int, int, float]]:
        out: dict[str, tuple[int, int, float]] = {}
        for dim in DIMENSIONS:
            b = self._bucket(key, dim, now)
            if b is not None:
                reset = (b.capacity - b.level) * 60.0 / b.capacity
                out[dim] = (int(b.capacity), max(0, int(b.level)), max(0.0, reset))
        return out


def _rfc3339_in(seconds: float) -> str:
    t = datetime.now(UTC) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def anthropic_headers(verdict: Verdict) -> dict[str, str]:
    """`anthropic-ratelimit-*` headers; `tokens-*` is the tighter of input and output."""
    h: dict[str, str] = {}
    names = {
        "requests": "requests",
        "input_tokens": "input-tokens",
        "output_tokens": "output-tokens",
    }
    for dim, (limit, remaining, reset) in verdict.snapshot.items():
        n = names[dim]
        h[f"anthropic-ratelimit-{n}-limit"] = str(limit)
        h[f"anthropic-ratelimit-{n}-remaining"] = str(remaining)
        h[f"anthropic-ratelimit-{n}-reset"] = _rfc3339_in(reset)
    tok = [verdict.snapshot[d] for d in ("input_tokens", "output_tokens") if d in verdict.snapshot]
    if tok:
        limit, remaining, reset = min(tok, key=lambda t: t[1])
        h["anthropic-ratelimit-tokens-limit"] = str(limit)
        h["anthropic-ratelimit-tokens-remaining"] = str(remaining)
        h["anthropic-ratelimit-tokens-reset"] = _rfc3339_in(reset)
    if not verdict.allowed:
        h["retry-after"] = str(verdict.retry_after_s)
        h["x-should-retry"] = "true"
    return h


def _duration(seconds: float) -> str:
    # OpenAI writes resets as Go-style durations: "1s", "6m0s", "120ms".
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    m, s = divmod(math.ceil(seconds), 60)
    return f"{m}m{s}s" if m else f"{s}s"


def openai_headers(verdict: Verdict) -> dict[str, str]:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (tokens = input limit)."""
    h: dict[str, str] = {}
    for dim, suffix in (("requests", "requests"), ("input_tokens", "tokens")):
        if dim in verdict.snapshot:
            limit, remaining, reset = verdict.snapshot[dim]
            h[f"x-ratelimit-limit-{suffix}"] = str(limit)
            h[f"x-ratelimit-remaining-{suffix}"] = str(remaining)
            h[f"x-ratelimit-reset-{suffix}"] = _duration(reset)
    if not verdict.allowed:
        h["retry-after"] = str(verdict.retry_after_s)
        h["x-should-retry"] = "true"
    return h


# What a real account's headers say on a success when no limits are configured (tier-4-like
# figures from the recorded responses), so clients that read them always find them.
NOMINAL = {"requests": 4000, "input_tokens": 2_000_000, "output_tokens": 400_000}


def nominal_anthropic_headers() -> dict[str, str]:
    snapshot = {dim: (limit, limit - (dim == "requests"), 60.0) for dim, limit in NOMINAL.items()}
    return anthropic_headers(Verdict(True, 0, snapshot))


def nominal_openai_headers() -> dict[str, str]:
    snapshot = {dim: (limit, limit - (dim == "requests"), 0.012) for dim, limit in NOMINAL.items()}
    return openai_headers(Verdict(True, 0, snapshot))
