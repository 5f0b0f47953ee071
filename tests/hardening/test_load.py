"""Load: the concurrency cap holds on the wire, rate limits cost waits not pairs, and one
provider's 429 storm does not stall another run."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from virtualclock import pace_by_retry_after

from panel.emulator.runner import EmulatorHandle
from panel.emulator.state import EmulatorConfig
from panel.providers.select import EMULATOR_KEY

from .conftest import attempts, make_tools, options, rule, run


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_in_flight_never_exceeds_the_cap(tmp_path: Path, emulator_factory: Any) -> None:
    # Real (scaled) latency so requests overlap: the cap, not the speed, bounds in-flight.
    emu: EmulatorHandle = emulator_factory(EmulatorConfig(latency_scale=0.03, stall_seconds=1.0))
    tools = make_tools(tmp_path / "tools", *(f"Loadtool {i}" for i in range(8)))
    cap = 3
    outcome = await run(
        tools, options(tmp_path, emu, personas=("skeptic", "builder"), concurrency=cap)
    )
    assert all(r.status == "ok" for r in outcome.results) and len(outcome.results) == 16
    stats = emu.stats()
    assert stats["requests"] == 16
    assert 2 <= stats["max_in_flight"] <= cap  # they did overlap, and never beyond the cap
    assert outcome.max_in_flight <= cap


async def test_rate_limits_cost_waits_not_pairs(tmp_path: Path, emulator_factory: Any) -> None:
    emu: EmulatorHandle = emulator_factory(EmulatorConfig(latency_scale=0.0, stall_seconds=1.0))
    emu.configure(rpm=60)
    pace_by_retry_after(emu)  # the limiter's minute passes as its 429s say, not as the CPU runs
    for _ in range(58):  # this key already spent most of its minute: 2 requests left, +1/s
        emu.state.ratelimiter.admit(EMULATOR_KEY, 0)
    tools = make_tools(tmp_path / "tools", *(f"Ratetool {i}" for i in range(5)))
    outcome = await run(tools, options(tmp_path, emu, concurrency=4))
    assert len(outcome.results) == 5 and all(r.status == "ok" for r in outcome.results)
    lines = attempts(outcome.run_dir)
    limited = [a for a in lines if a["error_class"] == "rate_limited"]
    assert limited, "the emulator never rate-limited: the test proves nothing"
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in lines:
        by_pair[(a["tool_slug"], a["persona"])].append(a)
    for pair_lines in by_pair.values():
        pair_lines.sort(key=lambda a: a["attempt"])
        for before, after in itertools.pairwise(pair_lines):
            if before["error_class"] == "rate_limited":
                assert before["retry_after"] is not None
                gap = _ts(after["started_at"]) - _ts(before["ended_at"])
                assert gap >= before["retry_after"] - 0.01, (before, after)


@pytest.mark.slow
async def test_a_429_storm_on_one_provider_does_not_stall_another(
    tmp_path: Path, emulator_factory: Any
) -> None:
    stormy: EmulatorHandle = emulator_factory(EmulatorConfig(latency_scale=0.0, stall_seconds=1.0))
    healthy: EmulatorHandle = emulator_factory(EmulatorConfig(latency_scale=0.0, stall_seconds=1.0))
    stormy.configure(rules=[rule("Tool", "rate_limited:2", [1, 2])])  # every pair waits 2 s, twice
    # The storm lasts until the healthy run is over, however long that takes on this machine:
    # the stormy emulator holds every second attempt until then (a gate, not a clock). A storm
    # that stalled the other run would hold both, and the test would time out.
    calm_over = threading.Event()
    count_attempt = stormy.state.next_attempt

    def held(namespace: str, digest: str) -> int:
        attempt = count_attempt(namespace, digest)
        if attempt == 2:
            calm_over.wait(50)  # below the 60 s first-byte deadline: a stall fails below
        return attempt

    stormy.state.next_attempt = held  # type: ignore[method-assign]
    storm_tools = make_tools(tmp_path / "a" / "tools", *(f"Storm Tool {i}" for i in range(4)))
    calm_tools = make_tools(tmp_path / "b" / "tools", *(f"Calm Tool {i}" for i in range(6)))

    storm_opts = options(tmp_path / "a", stormy, concurrency=4)
    calm_opts = options(tmp_path / "b", healthy, model="emulator:gpt-5.6-luna", concurrency=4)
    storm_run = asyncio.ensure_future(run(storm_tools, storm_opts))
    try:
        calm = await run(calm_tools, calm_opts)
    finally:
        calm_over.set()
    storm = await storm_run
    assert all(r.status == "ok" for r in storm.results + calm.results)
    # The healthy provider saw exactly one request per pair: no retries, no backoff leaked over.
    assert healthy.stats()["requests"] == 6 and healthy.stats()["by_status"] == {"200": 6}
    assert stormy.stats()["by_status"].get("429") == 8
    # Ordering, not a duration: the storm run cannot reach any third attempt before its second
    # 2-second wait has passed; every healthy verdict was recorded before the first of them.
    calm_done = max(_ts(r.finished_at) for r in calm.results)
    third = [_ts(a["started_at"]) for a in attempts(storm.run_dir) if a["attempt"] == 3]
    assert len(third) == 4 and calm_done < min(third)
