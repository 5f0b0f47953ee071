"""The batch endpoints through the official SDKs: Message Batches and OpenAI Files + Batch."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from panel.modeltable import model_info
from panel.verdict import validate_verdict

RUBRIC = '<question id="q1">Is it useful?</question><question id="q2">Is it safe?</question>'


def params(anthropic_request: Any, i: int, **extra: Any) -> dict[str, Any]:
    user = (
        f'<persona id="p{i % 3}" name="Reviewer {i % 3}">{RUBRIC}</persona> Review tool number {i}.'
    )
    return anthropic_request(user=user, **extra)


def wait_anthropic(client: anthropic.Anthropic, batch_id: str) -> Any:
    deadline = time.monotonic() + 30
    batch = client.messages.batches.retrieve(batch_id)
    while batch.processing_status != "ended":
        assert time.monotonic() < deadline, "batch never ended"
        time.sleep(0.02)
        batch = client.messages.batches.retrieve(batch_id)
    return batch


def wait_openai(client: openai.OpenAI, batch_id: str) -> Any:
    deadline = time.monotonic() + 30
    batch = client.batches.retrieve(batch_id)
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        assert time.monotonic() < deadline, "batch never finished"
        time.sleep(0.02)
        batch = client.batches.retrieve(batch_id)
    return batch


def half_price(model_id: str, usage: Any) -> float:
    prices = model_info(model_id).prices  # type: ignore[union-attr]
    assert prices is not None
    written_1h = usage.cache_creation.ephemeral_1h_input_tokens
    written_5m = usage.cache_creation.ephemeral_5m_input_tokens
    full = (
        usage.input_tokens * prices.input
        + written_5m * prices.cache_write_5m
        + written_1h * (prices.cache_write_1h or 0)
        + usage.cache_read_input_tokens * prices.cache_read
        + usage.output_tokens * prices.output
    ) / 1e6
    return full / 2


def test_message_batch_round_trip(anthropic_client, anthropic_request, emulator):
    requests = [
        {"custom_id": f"tool-{i}", "params": params(anthropic_request, i)} for i in range(10)
    ]
    created = anthropic_client.messages.batches.create(requests=requests)
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 10 and created.results_url is None
    batch = wait_anthropic(anthropic_client, created.id)
    assert batch.request_counts.succeeded == 10 and batch.request_counts.processing == 0
    assert batch.ended_at is not None and batch.results_url

    results = list(anthropic_client.messages.batches.results(batch.id))
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted(r["custom_id"] for r in requests)
    assert ids != [r["custom_id"] for r in requests]  # any order: match by custom_id
    assert ids == [r.custom_id for r in anthropic_client.messages.batches.results(batch.id)]
    billed = 0.0
    for r in results:
        assert r.result.type == "succeeded"
        message = r.result.message
        tool = next(b for b in message.content if b.type == "tool_use")
        validate_verdict(tool.input, ["q1", "q2"])
        assert f"tool number {r.custom_id.split('-')[1]}" not in tool.input["quote"]  # synthetic
        billed += half_price("claude-sonnet-5", message.usage)
    assert emulator.stats()["billed_usd"] == pytest.approx(billed)


def test_batch_requests_share_the_cache_best_effort(anthropic_client, anthropic_request, emulator):
    requests = [{"custom_id": f"c{i}", "params": params(anthropic_request, i)} for i in range(12)]
    batch = wait_anthropic(
        anthropic_client, anthropic_client.messages.batches.create(requests=requests).id
    )
    by_id = {
        r.custom_id: r.result.message.usage
        for r in anthropic_client.messages.batches.results(batch.id)
    }
    usages = [by_id[f"c{i}"] for i in range(12)]
    written = usages[0].cache_creation_input_tokens
    assert written > 0
    # The first wave runs concurrently and all write; later requests read what it wrote.
    assert usages[1].cache_creation_input_tokens == written
    assert usages[-1].cache_read_input_tokens == written
    assert usages[-1].cache_creation_input_tokens == 0
    # Entries written inside a batch live an hour even though the request asked for 5 minutes.
    emulator.advance_clock(30 * 60)
    later = anthropic_client.messages.create(**params(anthropic_request, 99))
    assert later.usage.cache_read_input_tokens == written


def test_faults_and_invalid_params_become_errored_or_expired(
    anthropic_client, anthropic_request, emulator
):
    emulator.configure(
        rules=[
            {"match": "tool number 1.", "fault": "overloaded"},
            {"match": "tool number 2.", "fault": "stall"},
        ]
    )
    requests = [{"custom_id": f"r{i}", "params": params(anthropic_request, i)} for i in range(4)]
    requests[3]["params"]["tool_choice"] = {"type": "any"}
    requests[3]["params"]["model"] = "claude-opus-5-5"  # rejects forced tool choice
    batch = wait_anthropic(
        anthropic_client, anthropic_client.messages.batches.create(requests=requests).id
    )
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored, counts.expired) == (1, 2, 1)
    results = {r.custom_id: r.result for r in anthropic_client.messages.batches.results(batch.id)}
    assert results["r0"].type == "succeeded"
    assert results["r1"].type == "errored"
    assert results["r1"].error.error.type == "overloaded_error"
    assert results["r2"].type == "expired"
    assert results["r3"].type == "errored"
    assert results["r3"].error.error.type == "invalid_request_error"
    assert "tool_choice" in results["r3"].error.error.message
    # Only the succeeded request is billed.
    assert emulator.stats()["billed_usd"] == pytest.approx(
        half_price("claude-sonnet-5", results["r0"].message.usage)
    )


@pytest.mark.parametrize(
    "requests",
    [
        [{"custom_id": "has space", "params": {}}],
        [{"custom_id": "x" * 65, "params": {}}],
        [{"custom_id": "dup", "params": {}}, {"custom_id": "dup", "params": {}}],
        [],
    ],
)
def test_bad_batches_are_rejected_at_creation(anthropic_client, requests):
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.batches.create(requests=requests)


def test_cancel_list_delete_and_isolation(emulator_factory, anthropic_request):
    em = emulator_factory(latency_scale=1.0)  # a 2 s head start: time to cancel
    with anthropic.Anthropic(base_url=em.base_url, api_key="k1", max_retries=0) as client:
        reqs = [{"custom_id": f"r{i}", "params": params(anthropic_request, i)} for i in range(3)]
        ids = [client.messages.batches.create(requests=reqs).id for _ in range(3)]
        # Results are not available while processing.
        raw = httpx2.get(
            f"{em.base_url}/v1/messages/batches/{ids[0]}/results", headers={"x-api-key": "k1"}
        )
        assert raw.status_code == 400
        canceling = client.messages.batches.cancel(ids[0])
        assert canceling.processing_status in ("canceling", "ended")
        assert canceling.cancel_initiated_at is not None
        ended = wait_anthropic(client, ids[0])
        assert ended.request_counts.canceled == 3
        assert {r.result.type for r in client.messages.batches.results(ids[0])} == {"canceled"}

        listed = [b.id for b in client.messages.batches.list(limit=2)]  # auto-paginates
        assert listed == list(reversed(ids))
        assert client.messages.batches.delete(ids[0]).type == "message_batch_deleted"
        with anthropic.Anthropic(base_url=em.base_url, api_key="k2", max_retries=0) as other:
            with pytest.raises(anthropic.NotFoundError):
                other.messages.batches.retrieve(ids[1])
            assert list(other.messages.batches.list()) == []
        for batch_id in ids[1:]:
            client.messages.batches.cancel(batch_id)
            wait_anthropic(client, batch_id)
    assert em.stats()["billed_usd"] == 0


def chat_line(i: int, *, model: str = "gpt-5.6-luna", **extra: Any) -> dict[str, Any]:
    from panel.verdict import TOOL_NAME, verdict_tool_schema

    user = f'<persona id="p{i}" name="Reviewer {i}">{RUBRIC}</persona> Review tool number {i}.'
    tool = {
        "type": "function",
        "function": {"name": TOOL_NAME, "parameters": verdict_tool_schema()},
    }
    return {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "tools": [tool],
            "tool_choice": "required",
            "messages": [
                {"role": "system", "content": "You review developer tools. " * 300},
                {"role": "user", "content": user},
            ],
            **extra,
        },
    }


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    data = "\n".join(json.dumps(line) for line in lines).encode()
    f = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert f.purpose == "batch" and f.bytes == len(data)
    assert client.files.content(f.id).content == data
    return f.id


def test_openai_batch_round_trip(openai_client, emulator):
    emulator.configure(rules=[{"match": "tool number 3.", "fault": "server_error"}])
    file_id = upload(openai_client, [chat_line(i) for i in range(5)])
    created = openai_client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert created.status in ("validating", "in_progress")
    batch = wait_openai(openai_client, created.id)
    assert batch.status == "completed"
    assert (
        batch.request_counts.total,
        batch.request_counts.completed,
        batch.request_counts.failed,
    ) == (5, 4, 1)

    lines = [
        json.loads(x) for x in openai_client.files.content(batch.output_file_id).text.splitlines()
    ]
    assert sorted(x["custom_id"] for x in lines) == ["req-0", "req-1", "req-2", "req-4"]
    billed = 0.0
    prices = model_info("gpt-5.6-luna").prices  # type: ignore[union-attr]
    assert prices is not None
    for line in lines:
        assert line["response"]["status_code"] == 200
        completion = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])
        call = completion.choices[0].message.tool_calls[0]
        validate_verdict(json.loads(call.function.arguments), ["q1", "q2"])
        u = completion.usage
        details = u.prompt_tokens_details
        cached, written = details.cached_tokens, details.cache_write_tokens or 0
        uncached = u.prompt_tokens - cached - written
        billed += (
            uncached * prices.input
            + written * prices.cache_write_5m
            + cached * prices.cache_read
            + u.completion_tokens * prices.output
        ) / 2e6
    assert emulator.stats()["billed_usd"] == pytest.approx(billed)
    assert batch.usage.input_tokens == sum(
        x["response"]["body"]["usage"]["prompt_tokens"] for x in lines
    )

    errors = [
        json.loads(x) for x in openai_client.files.content(batch.error_file_id).text.splitlines()
    ]
    assert [e["custom_id"] for e in errors] == ["req-3"]
    assert errors[0]["response"]["status_code"] == 500
    assert errors[0]["response"]["body"]["error"]["type"] == "server_error"


def test_openai_batch_with_a_bad_line_fails_validation(openai_client):
    good = json.dumps(chat_line(0))
    data = (good + "\n{not json\n").encode()
    f = openai_client.files.create(file=("bad.jsonl", data), purpose="batch")
    batch = wait_openai(
        openai_client,
        openai_client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id,
    )
    assert batch.status == "failed" and batch.output_file_id is None
    assert batch.errors.data[0].line == 2
    assert batch.errors.data[0].code == "invalid_json_line"


def test_openai_batch_rejects_unknown_files_and_windows(openai_client):
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    file_id = upload(openai_client, [chat_line(0)])
    with pytest.raises(openai.BadRequestError):
        openai_client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="1h",  # type: ignore[arg-type]
        )


def test_openai_cancel(emulator_factory):
    em = emulator_factory(latency_scale=1.0)
    with openai.OpenAI(base_url=em.openai_base_url, api_key="k", max_retries=0) as client:
        file_id = upload(client, [chat_line(i) for i in range(3)])
        created = client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert client.batches.cancel(created.id).status in ("cancelling", "cancelled")
        batch = wait_openai(client, created.id)
        assert batch.status == "cancelled" and batch.cancelled_at is not None
        assert batch.request_counts.completed == 0
        assert [b.id for b in client.batches.list()] == [created.id]
    assert em.stats()["billed_usd"] == 0
