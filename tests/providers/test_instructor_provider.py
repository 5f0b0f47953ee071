"""`instructor:PROVIDER/MODEL` against the emulator: events, request shape, re-asks, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.runner import EmulatorHandle
from panel.errors import ConfigError, ErrorClass, UpstreamError
from panel.providers.base import (
    ArgsDelta,
    PromptParts,
    Reask,
    StreamCompleted,
    StreamEvent,
    StreamStarted,
    VerdictRequest,
)
from panel.providers.instructor_provider import InstructorProvider
from panel.providers.select import ModelSpec, open_provider, parse_model
from panel.verdict import TOOL_DESCRIPTION, TOOL_NAME, validate_verdict, verdict_tool_schema
from tests.conftest import TEST_KEY

HOUSE = "You review developer tools. Call record_verdict exactly once. " * 150
PERSONA = '<persona id="p1" name="Ada Tester"><question id="q1">Does it work?</question>'
ENV = {"ANTHROPIC_API_KEY": TEST_KEY, "OPENAI_API_KEY": TEST_KEY}
EXAMPLE_TOOL = Path(__file__).resolve().parents[2] / "examples" / "tools"


def _request(tool: str = "Tool: a linter.", **extra: Any) -> VerdictRequest:
    return VerdictRequest(
        tool_slug="linter",
        persona_id="p1",
        parts=PromptParts(house=HOUSE, persona=PERSONA, tool=tool),
        tool_schema=verdict_tool_schema(),
        max_tokens=3000,
        **extra,
    )


async def _events(provider: InstructorProvider, request: VerdictRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream_verdict(request)]


async def test_model_spec_opens_an_instructor_provider_that_yields_one_validated_verdict(
    emulator: EmulatorHandle,
) -> None:
    spec = parse_model("instructor:anthropic/claude-sonnet-5", ENV)
    assert spec == ModelSpec("instructor", "anthropic/claude-sonnet-5")
    async with open_provider(spec, env=ENV, base_url=emulator.base_url) as provider:
        assert isinstance(provider, InstructorProvider)
        assert (provider.name, provider.model) == ("instructor", "claude-sonnet-5")
        assert provider.info is not None and provider.info.id == "claude-sonnet-5"
        events = await _events(provider, _request())
    assert [type(e) for e in events] == [StreamStarted, ArgsDelta, StreamCompleted]
    started, delta, done = events
    assert isinstance(started, StreamStarted) and isinstance(done, StreamCompleted)
    assert isinstance(delta, ArgsDelta) and delta.snapshot == done.tool_input
    verdict = validate_verdict(done.tool_input, ["q1"])  # the engine's own check passes
    assert verdict.answers[0].question_id == "q1"
    [sent] = emulator.requests()
    assert started.request_id == done.request_id == sent["request_id"]
    assert done.usage.known and done.usage.output_tokens == sent["usage"]["output_tokens"]
    assert done.usage.cache_write_tokens == sent["usage"]["cache_creation_input_tokens"] > 0
    body = sent["body"]
    # Instructor's tool carries panel's name and description, so the prompt's wording holds.
    assert [(t["name"], t["description"]) for t in body["tools"]] == [(TOOL_NAME, TOOL_DESCRIPTION)]
    assert body["tool_choice"]["type"] == "tool"  # claude-sonnet-5 accepts forcing
    assert [b.get("cache_control") for b in body["system"]] == [{"type": "ephemeral"}] * 2
    assert sent["headers"].get("x-stainless-retry-count") in (None, "0")


@pytest.mark.parametrize(
    ("spec", "wire_url"), [("anthropic/claude-sonnet-5", ""), ("openai/gpt-5.6-luna", "/v1")]
)
async def test_build_params_is_the_body_instructor_sends(
    emulator: EmulatorHandle, spec: str, wire_url: str
) -> None:
    provider = InstructorProvider(spec, env=ENV, base_url=emulator.base_url + wire_url)
    try:
        expected = provider.build_params(_request())
        await _events(provider, _request())
    finally:
        await provider.aclose()
    body = emulator.requests()[0]["body"]
    for key in ("tools", "tool_choice", "messages", "model"):
        assert body[key] == expected[key], key
    assert body.get("system") == expected.get("system")


async def test_models_that_reject_forcing_get_auto_and_answer(emulator: EmulatorHandle) -> None:
    provider = InstructorProvider("anthropic/claude-opus-5-5", env=ENV, base_url=emulator.base_url)
    try:
        events = await _events(provider, _request())
    finally:
        await provider.aclose()
    assert isinstance(events[-1], StreamCompleted)
    [sent] = emulator.requests()
    assert sent["status"] == 200 and sent["body"]["tool_choice"] == {"type": "auto"}


async def test_second_request_reads_the_house_block_from_cache(emulator: EmulatorHandle) -> None:
    provider = InstructorProvider("anthropic/claude-sonnet-5", env=ENV, base_url=emulator.base_url)
    try:
        first = (await _events(provider, _request("Tool: a linter.")))[-1]
        second = (await _events(provider, _request("Tool: a profiler.")))[-1]
    finally:
        await provider.aclose()
    assert isinstance(first, StreamCompleted) and isinstance(second, StreamCompleted)
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens > 1024


def _fault_first_request(fault: str) -> httpx2.AsyncClient:
    sent = 0

    async def hook(request: httpx2.Request) -> None:
        nonlocal sent
        sent += 1
        if sent == 1:
            request.headers["x-emulator-fault"] = fault

    return httpx2.AsyncClient(event_hooks={"request": [hook]})


async def test_one_schema_violation_is_reasked_by_instructor_and_usage_is_summed(
    emulator: EmulatorHandle,
) -> None:
    provider = InstructorProvider(
        "anthropic/claude-sonnet-5",
        env=ENV,
        base_url=emulator.base_url,
        http_client=_fault_first_request("schema_violation"),
    )
    try:
        done = (await _events(provider, _request()))[-1]
    finally:
        await provider.aclose()
    assert isinstance(done, StreamCompleted)
    validate_verdict(done.tool_input, ["q1"])
    first, second = emulator.requests()
    assert (first["fault"], second["fault"]) == ("schema_violation", None)
    assert done.usage.output_tokens == (
        first["usage"]["output_tokens"] + second["usage"]["output_tokens"]
    )


async def test_a_verdict_still_invalid_after_the_reask_is_schema_invalid_and_billed(
    emulator: EmulatorHandle,
) -> None:
    provider = InstructorProvider("anthropic/claude-sonnet-5", env=ENV, base_url=emulator.base_url)
    request = _request(extra_headers={"x-emulator-fault": "schema_violation"})
    try:
        with pytest.raises(UpstreamError) as info:
            await _events(provider, request)
    finally:
        await provider.aclose()
    err = info.value
    assert err.error_class is ErrorClass.SCHEMA_INVALID and err.billed
    assert len(emulator.requests()) == 2  # the first answer and one re-ask, no more
    assert err.usage is not None
    assert err.usage["output_tokens"] == sum(
        r["usage"]["output_tokens"] for r in emulator.requests()
    )


@pytest.mark.parametrize(
    ("fault", "error_class", "status"),
    [
        ("overloaded", ErrorClass.OVERLOADED, 529),
        ("rate_limited", ErrorClass.RATE_LIMITED, 429),
        ("auth", ErrorClass.AUTH, 401),
    ],
)
async def test_api_errors_are_unwrapped_and_classified_without_retrying(
    emulator: EmulatorHandle, fault: str, error_class: ErrorClass, status: int
) -> None:
    provider = InstructorProvider("anthropic/claude-sonnet-5", env=ENV, base_url=emulator.base_url)
    try:
        with pytest.raises(UpstreamError) as info:
            await _events(provider, _request(extra_headers={"x-emulator-fault": fault}))
    finally:
        await provider.aclose()
    assert info.value.error_class is error_class and info.value.status == status
    assert "instructor:anthropic" in info.value.message
    assert len(emulator.requests()) == 1  # neither the SDK nor instructor retried


async def test_engine_reask_turns_reach_the_request(emulator: EmulatorHandle) -> None:
    reask = Reask(
        kind="invalid_verdict",
        message="That verdict was invalid: missing rubric answers for: q1.",
        previous_input={"ship": True},
        call_id="toolu_1",
    )
    provider = InstructorProvider("anthropic/claude-sonnet-5", env=ENV, base_url=emulator.base_url)
    try:
        await _events(provider, _request(reask=reask))
    finally:
        await provider.aclose()
    messages = emulator.requests()[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert json.loads(messages[1]["content"]) == {"ship": True}
    assert "missing rubric answers for: q1" in messages[2]["content"]


async def test_openai_through_from_provider_maps_usage(emulator: EmulatorHandle) -> None:
    provider = InstructorProvider("openai/gpt-5.6-luna", env=ENV, base_url=emulator.openai_base_url)
    try:
        done = (await _events(provider, _request()))[-1]
    finally:
        await provider.aclose()
    assert isinstance(done, StreamCompleted)
    [sent] = emulator.requests()
    assert sent["path"] == "/v1/chat/completions"
    assert done.usage.output_tokens == sent["usage"]["completion_tokens"]
    assert (
        done.usage.input_tokens + done.usage.cache_read_tokens + (done.usage.cache_write_tokens)
        == sent["usage"]["prompt_tokens"]
    )
    assert sent["body"]["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    ("spec", "env", "base_url", "says"),
    [
        ("anthropic-no-slash", ENV, None, "instructor:PROVIDER/MODEL"),
        ("anthropic/claude-sonnet-5", {}, None, "ANTHROPIC_API_KEY is not set"),
        # Instructor overwrites tool_choice on the OpenAI wire: a guaranteed 400, refused early.
        ("openrouter/anthropic/claude-opus-5-5", ENV, None, "openrouter:"),
        ("mistral/mistral-large", ENV, "http://127.0.0.1:9", "base URL"),
        ("nosuchprovider/model", ENV, None, "Unsupported provider"),
    ],
)
def test_configuration_problems_are_config_errors(
    spec: str, env: dict[str, str], base_url: str | None, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        InstructorProvider(spec, env=env, base_url=base_url)


def test_cli_run_with_an_instructor_model(emulator: EmulatorHandle, tmp_path: Path) -> None:
    tool = next(iter(sorted(EXAMPLE_TOOL.glob("*.yaml"))))
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(tool),
            "--model",
            "instructor:anthropic/claude-sonnet-5",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-cache",
            "--json",
        ],
        env={"ANTHROPIC_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": emulator.base_url},
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"] == "instructor:anthropic/claude-sonnet-5"
    assert out["results"] and all(r["status"] == "ok" for r in out["results"])
    assert all(r["usage"]["output_tokens"] > 0 for r in out["results"])
    # Siblings are released after the first response: they read the shared prefix.
    assert sum(r["usage"]["cache_read_tokens"] > 0 for r in out["results"]) >= 3
