"""The one retry owner: tenacity, driven by error classes (never by exception types).

The SDKs' own retries are off, so the number of upstream attempts per pair is bounded here:
at most `max_attempts` that the provider ran, plus at most `max_rate_limited` 429 rejections
(a 429 is refused before any work and never billed, so a batch held at its rate limit does not
spend the budget meant for failures; F02). What is retried, and how:

    rate_limited      wait retry-after (and pause every launch meanwhile); a wait longer than
                      `max_retry_after` pauses the run resumably instead of sleeping (F03)
    overloaded, server_error, connection, timeout, stalled, truncated_eof
                      exponential backoff with jitter (0.5 s → 8 s), or retry-after if given
    truncated_max_tokens   once, with twice the output room (F14)
    invalid_json      once (F15)
    schema_invalid    one re-ask carrying the validation error (F16)
    no_tool_call      one re-ask reminding the model to call the tool (F17)
    everything else   not retried: refused, invalid_request, context_too_long, protocol, and
                      the run-stopping auth and spend_cap
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from panel.errors import ErrorClass, UpstreamError
from panel.providers.classify import RETRYABLE

# Classes retried once at most, each with its own fix-up of the request.
ONCE = frozenset(
    {
        ErrorClass.TRUNCATED_MAX_TOKENS,
        ErrorClass.INVALID_JSON,
        ErrorClass.SCHEMA_INVALID,
        ErrorClass.NO_TOOL_CALL,
    }
)


@dataclass(frozen=True)
class RetryLimits:
    max_attempts: int = 4  # upstream attempts per pair that were not 429s, first one included
    max_rate_limited: int = 8  # 429 rejections per pair (unbilled), on top of max_attempts
    max_retry_after: float = 60.0  # a longer retry-after pauses the run instead
    base_delay: float = 0.5
    max_delay: float = 8.0


class RunPaused(Exception):
    """A wait too long to sleep through: stop launching; pending pairs stay resumable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PauseGate:
    """A run-wide pause: a 429 with retry-after holds every launch, not just the one that got it."""

    def __init__(self) -> None:
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> None:
        # A later 429 may extend the pause while we sleep: re-check after every sleep.
        while (delay := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)


class PairRetry:
    """Retry decisions for one pair; counts what was retried so ONCE classes stay bounded."""

    def __init__(
        self, limits: RetryLimits, gate: PauseGate, rng: random.Random | None = None
    ) -> None:
        self.limits = limits
        self.gate = gate
        self.counts: Counter[ErrorClass] = Counter()
        self._rng = rng or random.Random()

    def should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, UpstreamError):
            return False
        klass = exc.error_class
        if (
            klass is ErrorClass.RATE_LIMITED
            and (exc.retry_after or 0) > self.limits.max_retry_after
        ):
            raise RunPaused(
                f"the provider asked to wait {exc.retry_after:.0f}s (rate limit); "
                "the run is paused — resume it later"
            ) from exc
        if klass in RETRYABLE:
            ok = True
        elif klass in ONCE:
            ok = self.counts[klass] < 1
        else:
            ok = False
        if ok:
            self.counts[klass] += 1
            if klass is ErrorClass.RATE_LIMITED and exc.retry_after:
                self.gate.pause(exc.retry_after)
        return ok

    def wait_seconds(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, UpstreamError):
            if exc.retry_after is not None:
                return float(exc.retry_after)
            if exc.error_class in ONCE:
                return 0.0  # nothing to wait for: the request itself changes
        backoff = min(
            self.limits.max_delay, self.limits.base_delay * 2.0 ** (state.attempt_number - 1)
        )
        return backoff * (0.5 + self._rng.random() / 2)

    def should_stop(self, state: RetryCallState) -> bool:
        """Called after should_retry, so the counts include the attempt that just failed."""
        rejected = self.counts[ErrorClass.RATE_LIMITED]
        ran = state.attempt_number - rejected
        return ran >= self.limits.max_attempts or rejected > self.limits.max_rate_limited

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=self.should_stop,
            wait=self.wait_seconds,
            retry=retry_if_exception(self.should_retry),
            reraise=True,
        )
