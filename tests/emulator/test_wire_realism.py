"""The emulator's default streams look like the recorded real ones (seeded, deterministic):
fragment sizes, the fields real events carry, and the headers on success and on 429."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from panel.emulator.runner import EmulatorHandle
from tests.conftest import TEST_KEY, build_anthropic_request

ANTHROPIC_HEADERS = {"x-api-key": TEST_KEY, "anthropic-version": "2026-10-21"}
OPENAI_HEADERS = {"authorization": f"Bearer {TEST_KEY}"}


def _events(raw: str) -> list[dict[str, Any]]:
    out = []
    for line in raw.splitlines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            out.append(json.loads(line[6:]))
    return out


def _anthropic(emulator: EmulatorHandle, **kw: Any) -> tuple[httpx2.Response, list[Any]]:
    body = {
        **build_anthropic_request(
            tool_choice={"type": "tool", "name": "record_verdict"},
            thinking={"type": "disabled"},
            **kw,
        ),
        "stream": True,
    }
    r = httpx2.post(emulator.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    return r, _events(r.text)


def _openai_body(**extra: Any) -> dict[str, Any]:
    tool = build_anthropic_request()["tools"][0]
    return {
        "model": "gpt-5.6-luna",
        "messages": [{"role": "user", "content": "Review the tool Ruff; call record_verdict."}],
        "tools": [
            {
                "type": "function",
                "function": {"name": tool["name"], "parameters": tool["input_schema"]},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "record_verdict"}},
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


def _openai(emulator: EmulatorHandle, **extra: Any) -> tuple[httpx2.Response, list[Any]]:
    r = httpx2.post(
        emulator.openai_base_url + "/chat/completions",
        json=_openai_body(**extra),
        headers=OPENAI_HEADERS,
    )
    return r, _events(r.text)


def _anthropic_fragments(events: list[Any]) -> list[str]:
    return [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]


def test_non_strict_anthropic_arguments_come_in_0_to_12_character_fragments(
    emulator: EmulatorHandle,
) -> None:
    _, events = _anthropic(emulator, strict=False)
    parts = _anthropic_fragments(events)
    assert parts[0] == "" and len(parts) > 30
    assert max(len(p) for p in parts) <= 12
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["caller"] == {"type": "direct"}


def test_strict_anthropic_arguments_come_member_by_member(emulator: EmulatorHandle) -> None:
    _, events = _anthropic(emulator, strict=True)
    parts = _anthropic_fragments(events)
    assert max(len(p) for p in parts) > 12  # the server validates whole members


def test_anthropic_events_carry_the_recorded_fields(emulator: EmulatorHandle) -> None:
    r, events = _anthropic(emulator)
    start = events[0]["message"]
    assert start["usage"]["service_tier"] == "standard"
    delta = next(e for e in events if e["type"] == "message_delta")
    assert "stop_details" in delta["delta"] and delta["delta"]["stop_details"] is None
    assert r.headers["anthropic-ratelimit-requests-limit"].isdigit()
    assert r.headers["anthropic-ratelimit-tokens-remaining"].isdigit()


def test_openai_first_chunk_has_role_and_tool_call_and_every_chunk_is_padded(
    emulator: EmulatorHandle,
) -> None:
    r, chunks = _openai(emulator)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["tool_calls"][0]["function"]["name"]
    assert all(c["service_tier"] == "default" and c.get("obfuscation") for c in chunks[:-1])
    args = [
        tc["function"].get("arguments", "")
        for c in chunks
        for choice in c["choices"]
        for tc in choice["delta"].get("tool_calls") or []
    ]
    assert args[0] == "" and max(len(a) for a in args) <= 12 and len(args) > 30
    assert r.headers["x-ratelimit-limit-requests"].isdigit()


def test_obfuscation_can_be_turned_off(emulator: EmulatorHandle) -> None:
    _, chunks = _openai(
        emulator, stream_options={"include_usage": True, "include_obfuscation": False}
    )
    assert not any("obfuscation" in c for c in chunks)


def test_the_same_request_streams_the_same_fragments(emulator: EmulatorHandle) -> None:
    first = _anthropic_fragments(_anthropic(emulator, strict=False)[1])
    again = _anthropic_fragments(_anthropic(emulator, strict=False)[1])
    assert first == again


@pytest.mark.parametrize("wire", ["anthropic", "openai"])
def test_429_says_when_and_whether_to_retry(emulator: EmulatorHandle, wire: str) -> None:
    if wire == "anthropic":
        body = {**build_anthropic_request(), "stream": True}
        url, headers = emulator.base_url + "/v1/messages", ANTHROPIC_HEADERS
    else:
        body, url, headers = (
            _openai_body(),
            emulator.openai_base_url + "/chat/completions",
            {**OPENAI_HEADERS},
        )
    r = httpx2.post(url, json=body, headers={**headers, "x-emulator-fault": "rate_limited"})
    assert r.status_code == 429
    assert r.headers["retry-after"] and r.headers["x-should-retry"] == "true"


def _chunks_and_events(url: str) -> tuple[int, list[str]]:
    with httpx2.stream("POST", url, json=_openai_body(), headers=OPENAI_HEADERS) as r:
        chunks = list(r.iter_raw())
    body = b"".join(chunks).decode()
    kinds = ["usage" if not e["choices"] else "chunk" for e in _events(body)]
    return len(chunks), kinds


def test_events_already_due_go_out_in_one_chunk_and_paced_ones_apart(
    emulator: EmulatorHandle, emulator_factory: Any
) -> None:
    url = emulator.openai_base_url + "/chat/completions"
    instant, kinds = _chunks_and_events(url)
    # Latency 0: every event is due at once, so the body is one HTTP chunk (which the client
    # reads in 64 KiB pieces), not one per event.
    assert len(kinds) > 100 and instant <= 3
    paced_em = emulator_factory(latency_scale=0.05)
    paced, paced_kinds = _chunks_and_events(paced_em.openai_base_url + "/chat/completions")
    assert paced > instant and len(paced_kinds) == len(kinds) and paced_kinds[-1] == "usage"
