"""Requests the real API rejects are rejected the same way (status, error type, message)."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tests.conftest import TEST_KEY


def test_missing_key_is_401(emulator, anthropic_request):
    r = httpx2.post(
        emulator.base_url + "/v1/messages",
        json=anthropic_request(),
        headers={"anthropic-version": "2026-10-21"},
    )
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == r.headers["request-id"]


def test_unknown_version_is_400(emulator, anthropic_request):
    r = httpx2.post(
        emulator.base_url + "/v1/messages",
        json=anthropic_request(),
        headers={"x-api-key": "k", "anthropic-version": "2024-01-01"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("param", ["temperature", "top_p", "top_k"])
def test_sampling_params_rejected_under_2026_10_21(anthropic_client, anthropic_request, param):
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(**anthropic_request(), extra_body={param: 1})
    assert info.value.type == "invalid_request_error"
    assert param in str(info.value.api_message)


def test_more_than_four_breakpoints_is_400(anthropic_client, anthropic_request):
    kwargs = anthropic_request()
    cc = {"type": "ephemeral"}
    kwargs["system"] = [
        {"type": "text", "text": f"part {i}", "cache_control": cc} for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(**kwargs)
    assert "maximum of 4 blocks" in str(info.value.api_message)


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-sonnet-5-5"])
@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "record_verdict"}])
def test_forced_tool_choice_rejected_on_55(anthropic_client, anthropic_request, model, choice):
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(**anthropic_request(model=model, tool_choice=choice))
    assert info.value.api_message == (
        'tool_choice: type "tool" and "any" are not supported for this model.'
    )


def test_forced_tool_choice_accepted_on_sonnet_5(anthropic_client, anthropic_request):
    msg = anthropic_client.messages.create(
        **anthropic_request(
            tool_choice={"type": "tool", "name": "record_verdict"},
            thinking={"type": "disabled"},
        )
    )
    assert msg.stop_reason == "tool_use"
    assert not any(b.type in ("text", "thinking") for b in msg.content)  # forced: no preamble


def test_forced_tool_choice_rejected_while_thinking(anthropic_client, anthropic_request):
    """Sonnet 5 thinks by default, and thinking excludes a forced tool call."""
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(
            **anthropic_request(tool_choice={"type": "any"})  # thinking left at its default
        )
    assert info.value.api_message == "Thinking may not be enabled when tool_choice forces tool use."


def test_thinking_cannot_be_disabled_on_opus_5_5(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(
            **anthropic_request(model="claude-opus-5-5", thinking={"type": "disabled"})
        )
    assert "cannot be disabled" in str(info.value.api_message)


def test_strict_tool_needs_additional_properties_false(anthropic_client, anthropic_request):
    kwargs = anthropic_request()
    kwargs["tools"][0]["input_schema"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(**kwargs)
    assert "additionalProperties" in str(info.value.api_message)


def test_max_tokens_zero_rejected_when_streaming(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(**{**anthropic_request(), "max_tokens": 0}, stream=True)


def test_max_tokens_zero_prewarms_the_cache(anthropic_client, anthropic_request):
    warm = anthropic_client.messages.create(**{**anthropic_request(), "max_tokens": 0})
    assert warm.content == [] and warm.usage.output_tokens == 0
    assert warm.usage.cache_creation_input_tokens
    hit = anthropic_client.messages.create(**anthropic_request())
    assert hit.usage.cache_read_input_tokens == warm.usage.cache_creation_input_tokens


@pytest.mark.parametrize("missing", ["max_tokens", "messages"])
def test_missing_required_field(emulator, anthropic_request, missing):
    body = anthropic_request()
    del body[missing]
    r = httpx2.post(
        emulator.base_url + "/v1/messages",
        json=body,
        headers={"authorization": f"Bearer {TEST_KEY}", "anthropic-version": "2026-10-21"},
    )
    assert r.status_code == 400 and missing in r.json()["error"]["message"]


def test_unknown_model_is_404(anthropic_client, anthropic_request):
    with pytest.raises(anthropic.NotFoundError) as info:
        anthropic_client.messages.create(**anthropic_request(model="claude-imaginary-9"))
    assert info.value.type == "not_found_error"
