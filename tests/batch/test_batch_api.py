"""--via batch-api: the must-show (50 × 4 under faults, half price), OpenAI, and a crash between
submitting and collecting that resumes polling the same batch instead of resubmitting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from batch_helpers import settings_for

from panel.batch.regenerate import LoadedManifest, run_batch
from panel.batch.via_api import BatchApiLaunch, CustomIds, Ledger
from panel.emulator.runner import EmulatorHandle
from panel.modeltable import model_info
from panel.run.costs import usage_cost
from panel.store.runs import RunStore

FAULTS = "overloaded=0.03,stall=0.02,max_tokens=0.02,schema_violation=0.02,invalid_json=0.01"


@pytest.mark.timeout(300)
@pytest.mark.slow
async def test_fifty_tools_via_batch_api_complete_at_half_price(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(50)
    emulator.configure(faults=FAULTS, seed=3)
    s = await run_batch(loaded, settings_for(loaded, emulator, via="batch-api"))
    store = RunStore.open(s.run_dir.parent, s.run_id)
    results = store.results()  # raises on a duplicate
    assert len(results) == 200 and not s.pending and s.status == "complete"
    stats = emulator.stats()
    assert stats["by_fault"].get("stall", 0) + stats["by_fault"].get("overloaded", 0) > 0
    for r in results.values():
        if r.status == "ok":
            assert r.headline and r.quote and r.rubric and all(r.rubric.values())
    ledger = Ledger.model_validate_json((s.run_dir / "batches.json").read_bytes())
    assert len(ledger.batches) >= 2 and all(b.collected for b in ledger.batches)  # + a follow-up
    assert s.batches == [b.id for b in ledger.batches]
    ids = CustomIds.model_validate_json((s.run_dir / "custom_ids.json").read_bytes()).ids
    batched = {tuple(v) for v in ids.values()}
    assert len(batched) == 196  # one streamed warm-up per persona, the rest in batches

    # Half price for the same tokens, pair by pair …
    info = model_info("claude-sonnet-5")
    assert info is not None
    for pair, r in results.items():
        full = usage_cost(info, r.usage, ttl="1h")
        assert full is not None and r.cost_usd is not None
        expected = full / 2 if pair in batched else full
        assert r.cost_usd == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # … and for the run: what panel reports is what the emulator billed (batch items at 50%).
    assert s.cost.batch_discount
    assert s.cost.usd == pytest.approx(stats["billed_usd"], rel=1e-6)
    assert s.cost.usd < s.cost.no_cache_usd


@pytest.mark.slow
async def test_openai_batch_api(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(6)
    s = await run_batch(
        loaded, settings_for(loaded, emulator, via="batch-api", model="emulator:gpt-5.6-luna")
    )
    assert (s.ok, s.failed, len(s.pending), len(s.batches)) == (24, 0, 0, 1)
    paths = {e["path"] for e in emulator.requests()}
    assert "/v1/batches#item" in paths


class _Crash(Exception):
    pass


async def test_a_crash_after_submitting_resumes_polling_the_same_batch(
    workspace: Callable[..., LoadedManifest],
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = workspace(5)
    settings = settings_for(loaded, emulator, via="batch-api")

    async def crash(self: BatchApiLaunch, open_batches: Any) -> Any:
        raise _Crash

    with monkeypatch.context() as m:
        m.setattr(BatchApiLaunch, "_poll", crash)
        with pytest.raises(_Crash):
            await run_batch(loaded, settings)
    (run_dir,) = [p for p in settings.runs_dir.iterdir() if not p.name.startswith(".")]
    ledger = json.loads((run_dir / "batches.json").read_text())
    (submitted,) = ledger["batches"]
    assert not submitted["collected"] and len(submitted["custom_ids"]) == 16

    s = await run_batch(
        loaded, settings_for(loaded, emulator, via="batch-api", resume=run_dir.name)
    )
    assert (s.ok, len(s.pending)) == (20, 0)
    assert s.batches == [submitted["id"]]  # polled, not submitted again
    items_after = sum(1 for e in emulator.requests() if e["path"].endswith("#item"))
    assert items_after == 16  # each batched pair ran once
    assert len(RunStore.open(settings.runs_dir, run_dir.name).results()) == 20
