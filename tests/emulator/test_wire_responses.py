"""`POST /v1/responses` over loopback with the official openai SDK, unmodified."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from panel.verdict import TOOL_NAME, Verdict, verdict_tool_schema


def _tool(**extra: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "name": TOOL_NAME,
        "description": "Record the verdict.",
        "parameters": verdict_tool_schema(),
        "strict": True,
        **extra,
    }


def _part(text: str, breakpoint: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "input_text", "text": text}
    if breakpoint:
        part["prompt_cache_breakpoint"] = {"mode": "explicit"}
    return part


def _request(
    model: str = "gpt-6-astra",
    repeat: int = 400,
    persona: str = "p1",
    house_mark: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "model": model,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [_part("You review developer tools. " * repeat, house_mark)],
            },
            {
                "type": "message",
                "role": "user",
                "content": [_part(f'As <persona id="{persona}" name="Ada"> call record_verdict.')],
            },
        ],
        "tools": [_tool()],
        "tool_choice": {"type": "function", "name": TOOL_NAME},
        "store": False,
        **extra,
    }


def test_sdk_responses_stream_with_a_function_tool(openai_client):
    kinds: list[str] = []
    deltas: list[str] = []
    with openai_client.responses.stream(**_request()) as stream:
        for ev in stream:
            kinds.append(ev.type)
            if ev.type == "response.function_call_arguments.delta":
                deltas.append(ev.delta)
                assert ev.snapshot.endswith(ev.delta)  # the SDK's own accumulation works
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.function_call_arguments.done" in kinds
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == TOOL_NAME and call.call_id.startswith("call_")
    assert call.arguments == "".join(deltas)
    # The SDK parses a strict function tool's arguments itself.
    assert call.parsed_arguments == json.loads(call.arguments)
    Verdict.model_validate(json.loads(call.arguments))
    assert len(deltas) > 20 and max(len(d) for d in deltas) <= 12  # small fragments, as real
    assert final.status == "completed" and final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 0


def test_events_are_numbered_and_keyed_by_output_index(openai_client):
    events = list(openai_client.responses.create(**_request(), stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e for e in events if e.type == "response.output_item.added"]
    calls = [e for e in added if e.item.type == "function_call"]
    assert len(calls) == 1 and calls[0].item.arguments == ""
    index = calls[0].output_index
    arg_events = [e for e in events if e.type.startswith("response.function_call_arguments")]
    assert {e.output_index for e in arg_events} == {index}
    assert all(e.item_id == calls[0].item.id for e in arg_events)


def test_implicit_cache_on_an_identical_repeat_with_writes_billed(openai_client):
    first = openai_client.responses.create(**_request())
    u1 = first.usage
    assert u1.input_tokens_details.cached_tokens == 0
    assert u1.input_tokens_details.cache_write_tokens == u1.input_tokens  # implicit: at the end
    second = openai_client.responses.create(**_request())
    u2 = second.usage
    assert u2.input_tokens_details.cached_tokens == u1.input_tokens
    assert u2.input_tokens_details.cache_write_tokens == 0


def test_explicit_breakpoint_shares_the_house_prefix_across_personas(openai_client):
    first = openai_client.responses.create(**_request(persona="p1", house_mark=True)).usage
    other = openai_client.responses.create(**_request(persona="p2", house_mark=True)).usage
    cached = other.input_tokens_details.cached_tokens
    assert 0 < cached < other.input_tokens
    assert first.input_tokens - cached < 60  # everything up to the breakpoint was read
    # Without the breakpoint only the whole prompt is written: a different persona reads 0.
    openai_client.responses.create(**_request(persona="p3", repeat=401))
    miss = openai_client.responses.create(**_request(persona="p4", repeat=401)).usage
    assert miss.input_tokens_details.cached_tokens == 0


def test_explicit_mode_without_breakpoints_caches_nothing(openai_client):
    body = _request(prompt_cache_options={"mode": "explicit"})
    openai_client.responses.create(**body)
    again = openai_client.responses.create(**body).usage
    assert again.input_tokens_details.cached_tokens == 0
    assert again.input_tokens_details.cache_write_tokens == 0


def test_prompt_cache_key_separates_entries(openai_client):
    openai_client.responses.create(**_request(prompt_cache_key="a"))
    other = openai_client.responses.create(**_request(prompt_cache_key="b")).usage
    same = openai_client.responses.create(**_request(prompt_cache_key="a")).usage
    assert other.input_tokens_details.cached_tokens == 0
    assert same.input_tokens_details.cached_tokens > 0


def test_older_model_rounds_reads_and_has_no_write_charge(openai_client):
    openai_client.responses.create(**_request(model="gpt-5.4-mini"))
    usage = openai_client.responses.create(**_request(model="gpt-5.4-mini")).usage
    cached = usage.input_tokens_details.cached_tokens
    assert cached > 0 and cached % 128 == 0
    assert usage.input_tokens_details.cache_write_tokens == 0


def test_max_output_tokens_is_an_incomplete_response(openai_client):
    events = list(openai_client.responses.create(**_request(max_output_tokens=40), stream=True))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.usage.output_tokens == 40


def test_json_schema_text_format_answers_schema_valid_json(openai_client):
    body = _request()
    del body["tools"], body["tool_choice"]
    body["text"] = {
        "format": {
            "type": "json_schema",
            "name": "verdict",
            "schema": verdict_tool_schema(),
            "strict": True,
        }
    }
    deltas: list[str] = []
    for ev in openai_client.responses.create(**body, stream=True):
        if ev.type == "response.output_text.delta":
            deltas.append(ev.delta)
    Verdict.model_validate(json.loads("".join(deltas)))
    plain = openai_client.responses.create(**body)
    Verdict.model_validate(json.loads(plain.output_text))


@pytest.mark.parametrize(
    ("patch", "param", "code"),
    [
        ({"extra_body": {"frobnicate": True}}, "frobnicate", "unknown_parameter"),
        ({"max_output_tokens": 1}, "max_output_tokens", "integer_below_min_value"),
        ({"previous_response_id": "resp_x"}, "previous_response_id", "previous_response_not_found"),
        ({"model": "claude-sonnet-5"}, "model", "model_not_found"),
    ],
)
def test_bad_requests_answer_like_the_real_api(openai_client, patch, param, code):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(**{**_request(), **patch})
    err = info.value.body
    assert isinstance(err, dict)
    assert err["param"] == param and err["code"] == code and err["type"] == "invalid_request_error"


def test_chat_completions_shaped_tools_are_rejected(openai_client):
    body = _request()
    body["tools"] = [{"type": "function", "function": {"name": TOOL_NAME, "parameters": {}}}]
    with pytest.raises(openai.BadRequestError, match=r"tools\[0\]\.name"):
        openai_client.responses.create(**body)


def test_midstream_faults_end_the_stream_as_the_real_api_does(openai_client):
    failed = list(
        openai_client.responses.create(
            **_request(), stream=True, extra_headers={"x-emulator-fault": "error_after_partial"}
        )
    )
    assert failed[-1].type == "response.failed"
    assert failed[-1].response.error.code == "server_error"
    assert failed[-1].response.usage is None  # unbilled, as on the other routes
    overloaded = list(
        openai_client.responses.create(
            **_request(), stream=True, extra_headers={"x-emulator-fault": "overloaded_midstream"}
        )
    )
    assert overloaded[-1].type == "error" and "overloaded" in overloaded[-1].code
    cut = list(
        openai_client.responses.create(
            **_request(), stream=True, extra_headers={"x-emulator-fault": "eof_early"}
        )
    )
    assert cut[-1].type not in ("response.completed", "response.incomplete", "response.failed")


def test_gpt_6_astra_takes_no_tool_calls_on_chat_completions(openai_client):
    body = {
        "model": "gpt-6-astra",
        "messages": [{"role": "user", "content": "call record_verdict"}],
        "tools": [{"type": "function", "function": {"name": TOOL_NAME, "parameters": {}}}],
    }
    with pytest.raises(openai.BadRequestError, match="/v1/responses") as info:
        openai_client.chat.completions.create(**body)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "tools"


def test_deltas_carry_obfuscation_unless_turned_off(openai_client):
    def deltas(**extra: Any) -> list[Any]:
        return [
            e
            for e in openai_client.responses.create(**_request(**extra), stream=True)
            if e.type == "response.function_call_arguments.delta"
        ]

    padded = deltas()
    assert all(isinstance(getattr(e, "obfuscation", None), str) for e in padded)
    plain = deltas(stream_options={"include_obfuscation": False})
    assert all(getattr(e, "obfuscation", None) is None for e in plain)
