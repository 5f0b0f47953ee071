"""Unit specs for the retry owner (panel/run/retry.py), with no provider or emulator behind it.

Each spec drives PairRetry's tenacity loop over a scripted sequence of outcomes and counts the
calls made, so what is asserted is the policy: which classes are retried, how often, and how long
it waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable

import pytest

from panel.errors import ErrorClass, UpstreamError
from panel.run.retry import PairRetry, PauseGate, RetryLimits, RunPaused

FAST = RetryLimits(base_delay=0.0, max_delay=0.0)


def _err(klass: ErrorClass, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(klass, "scripted", retry_after=retry_after)


async def _drive(
    script: Iterable[UpstreamError | None], limits: RetryLimits = FAST
) -> tuple[int, BaseException | None]:
    """Run the retry loop over `script` (None = success); return (calls made, final error)."""
    outcomes = iter(script)
    retry = PairRetry(limits, PauseGate(), random.Random(1))
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    try:
        async for attempt in retry.retrying():
            with attempt:
                await once()
    except (UpstreamError, RunPaused) as exc:
        return calls, exc
    return calls, None


async def test_a_retryable_class_gets_max_attempts_and_no_more() -> None:
    calls, err = await _drive([_err(ErrorClass.OVERLOADED)] * 10)
    assert calls == FAST.max_attempts == 4
    assert isinstance(err, UpstreamError) and err.error_class is ErrorClass.OVERLOADED


async def test_success_after_a_retry_stops_the_loop() -> None:
    calls, err = await _drive([_err(ErrorClass.SERVER_ERROR), None, None])
    assert (calls, err) == (2, None)


@pytest.mark.parametrize(
    "klass",
    [
        ErrorClass.TRUNCATED_MAX_TOKENS,
        ErrorClass.INVALID_JSON,
        ErrorClass.SCHEMA_INVALID,
        ErrorClass.NO_TOOL_CALL,
    ],
)
async def test_fix_up_classes_are_retried_once(klass: ErrorClass) -> None:
    calls, err = await _drive([_err(klass)] * 5)
    assert calls == 2
    assert isinstance(err, UpstreamError) and err.error_class is klass


@pytest.mark.parametrize(
    "klass",
    [ErrorClass.REFUSED, ErrorClass.INVALID_REQUEST, ErrorClass.AUTH, ErrorClass.SPEND_CAP],
)
async def test_final_classes_are_not_retried(klass: ErrorClass) -> None:
    calls, err = await _drive([_err(klass)] * 5)
    assert calls == 1
    assert isinstance(err, UpstreamError) and err.error_class is klass


async def test_rate_limits_have_their_own_budget_on_top_of_the_attempts() -> None:
    # Seven 429s (never billed) and then three server errors: still within both budgets.
    script = (
        [_err(ErrorClass.RATE_LIMITED, retry_after=0.0)] * 7
        + [_err(ErrorClass.SERVER_ERROR)] * 3
        + [None]
    )
    calls, err = await _drive(script)
    assert (calls, err) == (11, None)


async def test_the_rate_limit_budget_is_bounded_too() -> None:
    limits = RetryLimits(base_delay=0.0, max_delay=0.0, max_rate_limited=3)
    calls, err = await _drive([_err(ErrorClass.RATE_LIMITED, retry_after=0.0)] * 10, limits)
    assert calls == 4  # the first try and three waits
    assert isinstance(err, UpstreamError) and err.error_class is ErrorClass.RATE_LIMITED


async def test_a_retry_after_beyond_the_limit_pauses_the_run_instead_of_sleeping() -> None:
    calls, err = await _drive([_err(ErrorClass.RATE_LIMITED, retry_after=3600.0)])
    assert calls == 1
    assert isinstance(err, RunPaused) and "3600s" in err.reason


def test_waits_follow_retry_after_then_capped_jittered_backoff() -> None:
    limits = RetryLimits(base_delay=0.5, max_delay=8.0)
    retry = PairRetry(limits, PauseGate(), random.Random(3))

    class State:
        def __init__(self, exc: BaseException, attempt: int) -> None:
            self.attempt_number = attempt
            self.outcome = self

        def exception(self) -> BaseException:
            return exc

    exc: BaseException = _err(ErrorClass.RATE_LIMITED, retry_after=2.0)
    assert retry.wait_seconds(State(exc, 1)) == 2.0  # type: ignore[arg-type]
    exc = _err(ErrorClass.INVALID_JSON)
    assert retry.wait_seconds(State(exc, 1)) == 0.0  # type: ignore[arg-type]
    exc = _err(ErrorClass.OVERLOADED)
    waits = [retry.wait_seconds(State(exc, n)) for n in range(1, 9)]  # type: ignore[arg-type]
    ceilings = [min(8.0, 0.5 * 2 ** (n - 1)) for n in range(1, 9)]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert max(waits) <= 8.0 and waits[-1] >= 4.0


async def test_a_429_pauses_every_launch_not_just_its_own() -> None:
    gate = PauseGate()
    retry = PairRetry(FAST, gate)
    assert retry.should_retry(_err(ErrorClass.RATE_LIMITED, retry_after=0.05))
    t0 = time.monotonic()
    await gate.wait()  # another pair's launch waits on the same gate
    assert time.monotonic() - t0 >= 0.04
