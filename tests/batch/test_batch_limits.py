"""Rate limits and budget: 429s are waited out (retry-after) and every pair still lands; a budget
stops launching, lists the pending pairs, and --resume finishes them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from batch_helpers import settings_for
from virtualclock import pace_by_retry_after

from panel.batch.regenerate import LoadedManifest, run_batch
from panel.emulator.runner import EmulatorHandle
from panel.store.runs import RunStore


@pytest.mark.timeout(200)
@pytest.mark.slow
async def test_rate_limited_batch_backs_off_and_completes(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(16)  # 64 pairs against 60 requests per minute
    emulator.configure(rpm=60)
    pace_by_retry_after(emulator)  # the minute passes as the 429s say, not as the machine runs
    s = await run_batch(loaded, settings_for(loaded, emulator))
    assert emulator.stats()["by_status"].get("429", 0) > 0  # the limit really bit
    assert (s.ok, s.failed, len(s.pending)) == (64, 0, 0)
    retried = [
        a
        for a in RunStore.open(s.run_dir.parent, s.run_id).attempts()
        if a.error_class == "rate_limited"
    ]
    assert retried and all(a.retry_after is not None for a in retried)


async def test_budget_stops_launching_and_resume_finishes(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(10)
    s = await run_batch(loaded, settings_for(loaded, emulator, budget_usd=0.05, concurrency=2))
    assert s.pending and s.status == "paused"
    assert s.estimate is not None and s.estimate.requests == 40
    assert s.estimate.cost is not None and s.estimate.cost.usd > 0.05
    assert s.ok + len(s.pending) == 40
    assert any("budget" in n for n in s.notes)
    done = await run_batch(loaded, settings_for(loaded, emulator, resume=s.run_id))
    assert (done.ok, len(done.pending), done.status) == (40, 0, "complete")
    assert len(RunStore.open(done.run_dir.parent, done.run_id).results()) == 40
