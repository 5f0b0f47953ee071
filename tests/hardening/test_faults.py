"""F01–F20: provider faults through run_panel on the emulator, on every wire: Anthropic Messages,
OpenAI Chat Completions and OpenAI Responses.

Each test injects the fault with a FaultRule matching the tool's name in the request body
(``@1`` limits it to a body's first attempt, so the retry can succeed) and asserts what the
user gets (ok, a clear error class, a terminal state) and how many upstream attempts were made,
from both the run's attempts.jsonl and the emulator's own request log.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from panel.emulator.runner import EmulatorHandle
from panel.errors import ConfigError, ErrorClass
from panel.providers.classify import RETRYABLE, classify_exception, parse_retry_after

from .conftest import (
    ANTHROPIC_MODEL,
    CANARY_KEY,
    OPENAI_MODEL,
    PATHS,
    RESPONSES_MODEL,
    attempts,
    make_tools,
    options,
    results,
    rule,
    run,
)

TOOL = "Faultprobe"


async def _one(
    tmp_path: Path,
    emulator: EmulatorHandle,
    model: str,
    fault: str,
    at: list[int] | None = None,
    **opts: Any,
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """One tool × one persona under `fault`; returns (outcome, attempt lines, emulator requests)."""
    emulator.configure(rules=[rule(TOOL, fault, at)])
    tools = make_tools(tmp_path / "tools", TOOL)
    outcome = await run(tools, options(tmp_path, emulator, model=model, **opts))
    requests = [r for r in emulator.requests() if TOOL in str(r["body"])]
    return outcome, attempts(outcome.run_dir), requests


def _classes(lines: list[dict[str, Any]]) -> list[str | None]:
    return [a["error_class"] for a in lines]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _assert_billed(
    outcome: Any, lines: list[dict[str, Any]], emulator: EmulatorHandle, *, output: bool = True
) -> None:
    """Every attempt of a billed failure carries its usage into the pair's and the run's cost."""
    assert lines and all(a["billed"] and a["usage"] for a in lines), lines
    inputs = ("input_tokens", "cache_read_tokens", "cache_write_tokens")
    assert all(sum(a["usage"][k] for k in inputs) > 0 for a in lines), lines
    if output:  # a refusal may come with no output at all
        assert all(a["usage"]["output_tokens"] > 0 for a in lines), lines
    result = outcome.results[0]
    assert result.cost_usd is not None and result.cost_usd > 0
    cost = outcome.manifest.cost
    assert cost.known and cost.usd > 0
    # What panel reports is what the emulator billed (both round to the nano-dollar).
    assert cost.usd == pytest.approx(emulator.stats()["billed_usd"], rel=1e-3)


def _single(outcome: Any) -> Any:
    assert len(outcome.results) == 1, outcome.results
    assert len(results(outcome.run_dir)) == 1  # exactly one terminal line
    return outcome.results[0]


# -- retried, then ok ---------------------------------------------------------------------

RETRIED = [
    # (case, fault, first attempt's class on anthropic, on chat completions, on responses)
    ("F01", "overloaded", "overloaded", "server_error", "server_error"),  # OpenAI: a 503
    ("F07", "server_error", "server_error", "server_error", "server_error"),
    # Responses names the overload in its `response.failed` error code; chat chunks do not.
    ("F08", "overloaded_midstream", "overloaded", "server_error", "overloaded"),
    ("F09", "error_after_partial", "overloaded", "server_error", "server_error"),
    ("F10", "reset_midstream", "connection", "connection", "connection"),
    ("F11", "stall", "stalled", "stalled", "stalled"),
    ("F12", "eof_early", "truncated_eof", "truncated_eof", "truncated_eof"),
]


@pytest.mark.parametrize("model", PATHS)
@pytest.mark.parametrize(
    ("case", "fault", "a_class", "o_class", "r_class"), RETRIED, ids=[r[0] for r in RETRIED]
)
async def test_retried_fault_then_ok(
    tmp_path: Path,
    emulator: EmulatorHandle,
    model: str,
    case: str,
    fault: str,
    a_class: str,
    o_class: str,
    r_class: str,
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, fault, [1], idle_timeout=0.5)
    result = _single(outcome)
    assert result.status == "ok", (case, result.error)
    assert result.attempts == 2
    expected = {ANTHROPIC_MODEL: a_class, OPENAI_MODEL: o_class, RESPONSES_MODEL: r_class}
    assert _classes(lines) == [expected[model], None]
    assert [r["attempt"] for r in requests] == [1, 2]
    assert [r["fault"] for r in requests] == [fault, None]
    assert outcome.manifest.status == "complete"


@pytest.mark.parametrize("model", PATHS)
async def test_f07_persistent_html_500_is_readable_after_the_retry_limit(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "server_error")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "server_error"
    assert "500 Internal Server Error" in (result.error or "")
    assert "<" not in (result.error or "")  # the HTML was reduced to its title
    assert len(lines) == len(requests) == 4  # max_attempts, no more


@pytest.mark.parametrize("model", PATHS)
async def test_f12_eof_early_is_never_recorded_as_a_verdict(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "eof_early")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "truncated_eof"
    assert result.ship is None and result.headline is None
    assert _classes(lines) == ["truncated_eof"] * 4 and len(requests) == 4
    assert all(a["outcome"] == "error" for a in lines)


# -- rate limits and run-stopping faults --------------------------------------------------


@pytest.mark.parametrize("model", PATHS)
async def test_f02_retry_after_is_honoured(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "rate_limited:1", [1])
    assert _single(outcome).status == "ok"
    assert _classes(lines) == ["rate_limited", None] and len(requests) == 2
    assert lines[0]["retry_after"] == 1
    gap = _ts(lines[1]["started_at"]) - _ts(lines[0]["ended_at"])
    assert gap >= 0.99, f"retried {gap:.3f}s after a retry-after of 1s"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("model", PATHS)
async def test_f03_long_retry_after_pauses_the_run(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "rate_limited:3600")
    assert outcome.manifest.status == "paused"
    assert outcome.pending == [("faultprobe", "skeptic")] and outcome.results == []
    assert len(lines) == len(requests) == 1
    assert any("3600" in note for note in outcome.manifest.notes)  # says why


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "1e400"}, None),  # not a finite number: no wait at all, not "infs"
        ({"retry-after": "inf"}, None),
        ({"retry-after": "NaN"}, None),
        ({"retry-after-ms": "NaN", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "1000000000"}, 1e9),  # finite, huge: the run pauses (F03)
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"retry-after": "soon"}, None),
    ],
)
def test_f03_retry_after_values_an_upstream_can_send(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(headers) == seconds


@pytest.mark.parametrize("model", PATHS)
async def test_f04_spend_cap_stops_launching(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    emulator.configure(rules=[rule("Capprobe", "spend_cap")])
    tools = make_tools(tmp_path / "tools", "Capprobe A", "Capprobe B", "Capprobe C")
    outcome = await run(tools, options(tmp_path, emulator, model=model, concurrency=1))
    assert emulator.stats()["requests"] == 1  # never retried, nothing else launched
    assert outcome.manifest.status == "paused"
    assert outcome.results == [] and results(outcome.run_dir) == []
    assert sorted(outcome.pending) == [(t.slug, "skeptic") for t in tools]
    assert _classes(attempts(outcome.run_dir)) == ["spend_cap"]
    assert any("spend" in note for note in outcome.manifest.notes)


REAL_PATHS = [
    pytest.param(
        "anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "", id="anthropic"
    ),
    pytest.param("openai:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1", id="openai"),
]


@pytest.mark.parametrize(("model", "var", "url_var", "suffix"), REAL_PATHS)
async def test_f05_auth_stops_the_run_and_names_the_variable(
    tmp_path: Path, emulator: EmulatorHandle, model: str, var: str, url_var: str, suffix: str
) -> None:
    emulator.configure(rules=[rule("Authprobe", "auth")])
    tools = make_tools(tmp_path / "tools", "Authprobe A", "Authprobe B")
    env = {var: CANARY_KEY, url_var: emulator.base_url + suffix}
    with pytest.raises(ConfigError) as info:
        await run(tools, options(tmp_path, None, model=model, concurrency=1), env=env)
    message = str(info.value)
    assert var in message and "--resume" in message
    assert CANARY_KEY not in message and "canary" not in message
    assert emulator.stats()["requests"] == 1  # at once: the second tool never launched


@pytest.mark.parametrize(
    ("model", "prefix"),
    [("anthropic:claude-nonexistent-9", "req_"), ("openai:gpt-nonexistent", "req-")],
)
async def test_f06_invalid_request_is_not_retried_and_keeps_the_request_id(
    tmp_path: Path, emulator: EmulatorHandle, model: str, prefix: str
) -> None:
    tools = make_tools(tmp_path / "tools", "Badrequest")
    provider = model.partition(":")[0].upper()
    env = {
        f"{provider}_API_KEY": CANARY_KEY,
        f"{provider}_BASE_URL": emulator.base_url + ("/v1" if prefix == "req-" else ""),
    }
    outcome = await run(tools, options(tmp_path, None, model=model), env=env)
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "invalid_request"
    lines = attempts(outcome.run_dir)
    assert len(lines) == 1 and emulator.stats()["requests"] == 1
    assert (lines[0]["request_id"] or "").startswith(prefix)


def _status_error(status: int, body: dict[str, Any], kind: str) -> Exception:
    request = httpx2.Request(
        "POST", "http://127.0.0.1/v1/messages", headers={"x-api-key": CANARY_KEY}
    )
    response = httpx2.Response(status, json=body, request=request, headers={"request-id": "req_x"})
    if kind == "anthropic":
        return anthropic.APIStatusError("err", response=response, body=body)
    return openai.APIStatusError("err", response=response, body=body)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "messages: at least one message is required", "invalid_request"),
        (400, "prompt is too long: 250000 tokens > 200000 maximum", "context_too_long"),
        (413, "Request exceeds the maximum allowed number of bytes.", "context_too_long"),
    ],
)
def test_f06_classifier_400_413_prompt_too_long(
    kind: str, status: int, message: str, expected: str
) -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    err = classify_exception(_status_error(status, body, kind), provider=kind)
    assert err.error_class.value == expected
    assert err.error_class not in RETRYABLE
    assert err.request_id == "req_x"
    assert CANARY_KEY not in str(err) and not hasattr(err, "request")


@pytest.mark.parametrize("model", PATHS)
async def test_f13_garbage_body_is_a_protocol_error(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "garbage")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "protocol"
    assert "event stream" in (result.error or "")
    assert len(lines) == len(requests) == 1


# -- content faults: bounded fix-ups --------------------------------------------------------


def _max_tokens(body: dict[str, Any]) -> int:
    keys = ("max_tokens", "max_completion_tokens", "max_output_tokens")
    return int(next((body[k] for k in keys if body.get(k)), 0))


@pytest.mark.parametrize("model", PATHS)
async def test_f14_max_tokens_gets_one_retry_with_double_room(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "max_tokens")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "truncated_max_tokens"
    assert _classes(lines) == ["truncated_max_tokens"] * 2 and len(requests) == 2
    assert [_max_tokens(r["body"]) for r in requests] == [2048, 4096]
    _assert_billed(outcome, lines, emulator)


@pytest.mark.parametrize("model", PATHS)
async def test_f15_invalid_json_one_retry_then_error_with_raw_text(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "invalid_json")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "invalid_json"
    assert "began:" in (result.error or "") and len(result.error or "") < 600  # kept, capped
    assert len(lines) == len(requests) == 2
    _assert_billed(outcome, lines, emulator)


@pytest.mark.parametrize("model", PATHS)
async def test_f15_invalid_json_once_then_ok(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, _ = await _one(tmp_path, emulator, model, "invalid_json", [1])
    assert _single(outcome).status == "ok"
    assert _classes(lines) == ["invalid_json", None]


@pytest.mark.parametrize("model", PATHS)
async def test_f16_schema_violation_is_reasked_with_the_error_then_failed(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "schema_violation")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "schema_invalid"
    assert len(lines) == len(requests) == 2
    assert "That verdict was invalid" not in str(requests[0]["body"])
    assert "That verdict was invalid" in str(requests[1]["body"])  # the re-ask carries the error
    _assert_billed(outcome, lines, emulator)


@pytest.mark.parametrize("model", PATHS)
async def test_f17_no_tool_call_is_reasked_once(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "no_tool_call")
    result = _single(outcome)
    assert result.status == "failed" and result.error_class == "no_tool_call"
    assert len(lines) == len(requests) == 2
    assert "record_verdict tool now" in str(requests[1]["body"])
    _assert_billed(outcome, lines, emulator)


@pytest.mark.parametrize("model", PATHS)
async def test_f18_refusal_is_terminal_declined(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "refusal")
    result = _single(outcome)
    assert result.status == "refused" and result.error_class == "refused"
    assert len(lines) == len(requests) == 1
    assert outcome.manifest.status == "complete"
    _assert_billed(outcome, lines, emulator, output=False)


@pytest.mark.parametrize(
    ("model", "forced"),
    [
        ("emulator:claude-opus-5-5", False),
        ("emulator:claude-sonnet-5-5", False),
        ("emulator:claude-sonnet-5", True),
    ],
)
async def test_f19_forced_tool_choice_only_where_accepted(
    tmp_path: Path, emulator: EmulatorHandle, model: str, forced: bool
) -> None:
    # A retry too, so every request the model sees is checked, not only the first.
    outcome, _, requests = await _one(tmp_path, emulator, model, "overloaded", [1])
    assert _single(outcome).status == "ok"
    assert len(requests) == 2
    for r in requests:
        kind = r["body"]["tool_choice"]["type"]
        assert (kind in ("tool", "any")) is forced, r["body"]["tool_choice"]
    assert not any(r["status"] == 400 for r in emulator.requests())


@pytest.mark.parametrize("model", PATHS)
async def test_f20_missing_usage_keeps_the_verdict_and_flags_cost(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    outcome, lines, requests = await _one(tmp_path, emulator, model, "missing_usage")
    result = _single(outcome)
    assert result.status == "ok" and result.ship is not None
    assert result.usage.known is False and result.cost_usd is None
    assert outcome.manifest.cost.known is False
    assert len(lines) == len(requests) == 1


def test_model_paths_cover_every_wire() -> None:
    assert {ANTHROPIC_MODEL, OPENAI_MODEL, RESPONSES_MODEL} == {p.values[0] for p in PATHS}
    assert ErrorClass.PROTOCOL not in RETRYABLE


@pytest.mark.parametrize("model", PATHS)
@pytest.mark.parametrize("fault", ["max_tokens", "invalid_json", "no_tool_call"])
async def test_billed_failures_count_toward_the_budget(
    tmp_path: Path, emulator: EmulatorHandle, model: str, fault: str
) -> None:
    # A budget far below one attempt: the first billed failure stops every later launch.
    emulator.configure(rules=[rule("Budgetprobe", fault, None)])
    tools = make_tools(tmp_path / "tools", "Budgetprobe", "Budgetprobe Two")
    opts = options(tmp_path, emulator, model=model, budget_usd=1e-9, concurrency=1)
    outcome = await run(tools, opts)
    assert outcome.manifest.cost.usd > 0 and outcome.manifest.cost.known
    assert outcome.pending, "the budget must stop the launches after the billed failures"
    assert any("budget" in n for n in outcome.manifest.notes), outcome.manifest.notes
