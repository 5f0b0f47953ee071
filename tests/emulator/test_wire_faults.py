"""Every fault name, as the official SDKs experience it."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from panel.emulator.faults import FAULT_NAMES
from panel.verdict import Verdict


def _h(fault: str) -> dict[str, Any]:
    return {"extra_headers": {"x-emulator-fault": fault}}


def _stream_final(client: anthropic.Anthropic, kwargs: dict[str, Any], fault: str) -> Any:
    with client.messages.stream(**kwargs, **_h(fault)) as s:
        for _ in s:
            pass
        return s.get_final_message()


def test_overloaded_is_529(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.OverloadedError) as info:
        anthropic_client.messages.create(**anthropic_request(), **_h("overloaded"))
    assert info.value.status_code == 529 and info.value.type == "overloaded_error"


def test_overloaded_then_retry_succeeds_with_attempt_spec(emulator, anthropic_request):
    with anthropic.Anthropic(base_url=emulator.base_url, api_key="k", max_retries=2) as c:
        msg = c.messages.create(**anthropic_request(), **_h("overloaded@1,2"))
    assert msg.stop_reason == "tool_use"
    assert [r["status"] for r in emulator.requests()] == [529, 529, 200]


def test_rate_limited_has_retry_after(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client.messages.create(**anthropic_request(), **_h("rate_limited:7"))
    assert info.value.response.headers["retry-after"] == "7"


def test_spend_cap_has_error_code_and_no_retry_after(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client.messages.create(**anthropic_request(), **_h("spend_cap"))
    assert info.value.error_code == "enforced_spend_limit_reached"
    assert "retry-after" not in info.value.response.headers


def test_server_error_is_html_500(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.InternalServerError) as info:
        anthropic_client.messages.create(**anthropic_request(), **_h("server_error"))
    assert info.value.status_code == 500
    assert info.value.response.headers["content-type"].startswith("text/html")


def test_auth_is_401(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client.messages.create(**anthropic_request(), **_h("auth"))


def test_pre_response_faults_write_no_cache_and_bill_nothing(
    anthropic_client, anthropic_request, emulator
):
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**anthropic_request(), **_h("overloaded"))
    assert emulator.stats()["billed_usd"] == 0
    usage = anthropic_client.messages.create(**anthropic_request()).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0


def test_overloaded_midstream_is_status_error_200(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.APIStatusError) as info:
        _stream_final(anthropic_client, anthropic_request(), "overloaded_midstream")
    assert not isinstance(info.value, anthropic.OverloadedError)
    assert info.value.status_code == 200 and info.value.type == "overloaded_error"


def test_error_after_partial_follows_tool_json(anthropic_client, anthropic_request):
    seen = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for ev in anthropic_client.messages.create(
            **anthropic_request(), stream=True, **_h("error_after_partial")
        ):
            seen.append(ev.type)
    assert info.value.status_code == 200
    assert "content_block_delta" in seen and "message_stop" not in seen


def test_reset_midstream_is_a_connection_error(anthropic_client, anthropic_request):
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
        _stream_final(anthropic_client, anthropic_request(), "reset_midstream")


def test_reset_on_plain_request_is_a_connection_error(anthropic_client, anthropic_request):
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
        anthropic_client.messages.create(**anthropic_request(), **_h("reset_midstream"))


def test_eof_early_leaves_stop_reason_none(anthropic_client, anthropic_request):
    assert _stream_final(anthropic_client, anthropic_request(), "eof_early").stop_reason is None


def test_stall_sends_only_pings(emulator, anthropic_client, anthropic_request):
    # The test config stalls for 1 s; a real stall outlasts any sane client timeout.
    events = list(
        anthropic_client.messages.create(**anthropic_request(), stream=True, **_h("stall"))
    )
    assert events == []
    r = httpx2.post(
        emulator.base_url + "/v1/messages",
        json={**anthropic_request(), "stream": True},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "x-emulator-fault": "stall"},
    )
    assert set(r.text.split("\n\n")) - {""} == {'event: ping\ndata: {"type":"ping"}'}


def test_garbage_stream_has_no_events(anthropic_client, anthropic_request):
    assert (
        list(anthropic_client.messages.create(**anthropic_request(), stream=True, **_h("garbage")))
        == []
    )


def test_garbage_plain_body_fails_to_parse(anthropic_client, anthropic_request):
    with pytest.raises((anthropic.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        anthropic_client.messages.create(**anthropic_request(), **_h("garbage"))


def test_max_tokens_stops_inside_the_tool_call(anthropic_client, anthropic_request):
    final = _stream_final(anthropic_client, anthropic_request(), "max_tokens")
    assert final.stop_reason == "max_tokens"
    with pytest.raises(ValueError):
        Verdict.model_validate(final.content[-1].input)


def test_invalid_json_breaks_the_parser_but_completes(anthropic_client, anthropic_request):
    events = list(
        anthropic_client.messages.create(**anthropic_request(), stream=True, **_h("invalid_json"))
    )
    text = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert events[-2].delta.stop_reason == "tool_use"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_schema_violation_is_valid_json_but_invalid_verdict(anthropic_client, anthropic_request):
    final = _stream_final(anthropic_client, anthropic_request(), "schema_violation")
    assert final.stop_reason == "tool_use"
    assert isinstance(final.content[-1].input, dict)
    with pytest.raises(ValueError):
        Verdict.model_validate(final.content[-1].input)


def test_no_tool_call_is_text_end_turn(anthropic_client, anthropic_request):
    final = _stream_final(anthropic_client, anthropic_request(), "no_tool_call")
    assert final.stop_reason == "end_turn"
    assert {b.type for b in final.content} <= {"thinking", "text"}


def test_refusal_has_stop_details(anthropic_client, anthropic_request):
    final = _stream_final(anthropic_client, anthropic_request(), "refusal")
    assert final.stop_reason == "refusal"
    assert final.stop_details is not None and final.stop_details.type == "refusal"


def test_missing_usage_is_tolerated_by_the_sdk(anthropic_client, anthropic_request):
    final = _stream_final(anthropic_client, anthropic_request(), "missing_usage")
    assert final.stop_reason == "tool_use"
    assert not final.usage.cache_creation_input_tokens and final.usage.output_tokens is None


def test_unknown_fault_is_400(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(**anthropic_request(), **_h("gremlins"))


def test_config_rule_by_body_substring(emulator, anthropic_client, anthropic_request):
    emulator.configure(rules=[{"match": "Ada Tester", "fault": "overloaded", "attempts": [1]}])
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**anthropic_request())
    assert anthropic_client.messages.create(**anthropic_request()).stop_reason == "tool_use"


def test_seeded_plan_is_reproducible(emulator_factory, anthropic_request):
    outcomes = []
    for _ in range(2):
        em = emulator_factory(faults="overloaded=0.5")
        with anthropic.Anthropic(base_url=em.base_url, api_key="k", max_retries=0) as c:
            run = []
            for i in range(12):
                try:
                    c.messages.create(
                        **anthropic_request(user=f"request {i}", model="claude-haiku-4-5")
                    )
                    run.append("ok")
                except anthropic.OverloadedError:
                    run.append("529")
        outcomes.append(run)
        assert em.stats()["by_fault"].get("overloaded", 0) == run.count("529")
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {"ok", "529"}


def test_every_fault_name_is_accepted(emulator, anthropic_request):
    for name in sorted(FAULT_NAMES - {"stall", "reset_midstream"}):
        r = httpx2.post(
            emulator.base_url + "/v1/messages",
            json={**anthropic_request(), "stream": True},
            headers={"x-api-key": "k", "anthropic-version": "2026-10-21", "x-emulator-fault": name},
        )
        assert r.status_code in (200, 401, 429, 500, 529), name
    assert emulator.stats()["faults_injected"] == len(FAULT_NAMES) - 2
