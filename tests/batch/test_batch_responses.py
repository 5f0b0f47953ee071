"""`--via batch-api` for a Responses model: OpenAI Batch with `endpoint: /v1/responses`."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from batch_helpers import settings_for

from panel.batch.regenerate import LoadedManifest, run_batch
from panel.emulator.runner import EmulatorHandle
from panel.providers.batchservices import ItemResult
from panel.providers.responses_batch import ResponsesBatches
from panel.store.runs import RunStore

MODEL = "emulator:gpt-6-astra"


@pytest.mark.slow
async def test_responses_model_via_batch_api_at_half_price(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(6)
    s = await run_batch(loaded, settings_for(loaded, emulator, via="batch-api", model=MODEL))
    assert (s.ok, s.failed, len(s.pending), len(s.batches)) == (24, 0, 0, 1)
    log = emulator.requests()
    assert {e["path"] for e in log} >= {"/v1/responses", "/v1/batches#item"}
    assert "/v1/chat/completions" not in {e["path"] for e in log}
    # The batch's input file names the Responses endpoint on every line.
    batches = [e for e in log if e["path"] == "/v1/batches" and e.get("body")]
    assert all(b["body"]["endpoint"] == "/v1/responses" for b in batches)
    results = RunStore.open(s.run_dir.parent, s.run_id).results()
    assert len(results) == 24 and all(r.status == "ok" for r in results.values())
    assert s.cost.batch_discount and s.cost.known
    assert s.cost.usd == pytest.approx(emulator.stats()["billed_usd"], rel=1e-6)


def _line(body: dict[str, object], status: int = 200) -> dict[str, object]:
    return {"custom_id": "c1", "response": {"status_code": status, "body": body}}


def _usage() -> dict[str, object]:
    return {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 0},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1500,
    }


def _item(body: dict[str, object]) -> ItemResult:
    service = ResponsesBatches.__new__(ResponsesBatches)
    service.name = "openai"
    return service._item(_line(body))


def test_result_lines_are_read_with_the_streaming_rules() -> None:
    call = {
        "type": "function_call",
        "name": "record_verdict",
        "call_id": "call_9",
        "arguments": json.dumps({"ship": True}),
    }
    ok = _item({"status": "completed", "output": [call], "usage": _usage()})
    assert ok.completed is not None and ok.completed.tool_input == {"ship": True}
    assert ok.completed.usage.cache_read_tokens == 1000 and ok.completed.usage.input_tokens == 200
    cut = _item(
        {
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{**call, "arguments": '{"ship": tr'}],
            "usage": _usage(),
        }
    )
    assert cut.error is not None and cut.error.error_class.value == "truncated_max_tokens"
    assert cut.error.usage is not None and cut.error.usage["output_tokens"] == 300
    text = {"type": "message", "content": [{"type": "output_text", "text": "I think…"}]}
    none = _item({"status": "completed", "output": [text], "usage": _usage()})
    assert none.error is not None and none.error.error_class.value == "no_tool_call"
    assert none.error.usage is not None
    failed = _item({"status": "failed", "error": {"code": "server_error", "message": "x"}})
    assert failed.error is not None and failed.error.error_class.value == "server_error"


@pytest.mark.slow
async def test_responses_batch_under_faults_ends_complete_and_costs_what_was_billed(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(8)
    emulator.configure(faults="overloaded=0.1,max_tokens=0.1,invalid_json=0.05", seed=5)
    s = await run_batch(loaded, settings_for(loaded, emulator, via="batch-api", model=MODEL))
    assert s.status == "complete" and not s.pending and s.ok + s.failed == 32
    assert s.ok >= 24
    faults = emulator.stats()["by_fault"]
    assert faults.get("max_tokens", 0) + faults.get("overloaded", 0) > 0
    results = RunStore.open(s.run_dir.parent, s.run_id).results()
    assert all(r.status in ("ok", "failed") for r in results.values())
    assert s.cost.known and s.cost.usd == pytest.approx(emulator.stats()["billed_usd"], rel=1e-6)
