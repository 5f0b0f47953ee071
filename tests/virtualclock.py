"""A rate limiter that keeps time by the client's waits, not the wall clock.

On the wall clock an emulated bucket refills while the test runs: on a slow or loaded machine
the requests come slowly enough never to reach the limit, and a test of how 429s are handled
proves nothing (or fails on "the limit never bit"). `pace_by_retry_after` stops the limiter's
clock and moves it forward only by the retry-after of each 429 it answers: time passes for
the limiter exactly as the client is told to wait — what these tests check the client honours
— so the limit bites, and lifts, the same way on any machine.
"""

from __future__ import annotations

from typing import Any

from panel.emulator.ratelimit import Verdict
from panel.emulator.runner import EmulatorHandle


def pace_by_retry_after(emulator: EmulatorHandle) -> None:
    """Until the emulator's next reset: its rate-limit clock advances only on a 429."""
    limiter = emulator.state.ratelimiter
    now = limiter.clock()
    admit = limiter.admit

    def clock() -> float:
        return now

    def paced_admit(key: str, input_tokens: int) -> Verdict:
        nonlocal now
        verdict = admit(key, input_tokens)
        if not verdict.allowed:
            now += verdict.retry_after_s
        return verdict

    patched: Any = limiter  # the instance's own attributes shadow the class's
    patched.clock = clock
    patched.admit = paced_admit
