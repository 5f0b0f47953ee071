"""panel.providers.sse: the streamed body read as its events, with the SDKs' event rules.

The framing is checked against the OpenAI SDK's own decoder (the reader it replaces) on the
same bodies cut into reads at every position, and each wire's rules against what the SDKs'
stream iterators do with the same events.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from openai._streaming import SSEDecoder

from panel.providers.sse import (
    ServerSentEvent,
    StreamErrorEvent,
    WireObject,
    anthropic_events,
    loads,
    openai_events,
    server_sent_events,
)


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _collect(gen: AsyncIterator[Any]) -> list[Any]:
    async def run() -> list[Any]:
        return [item async for item in gen]

    return asyncio.run(run())


def _events(parts: Iterable[bytes]) -> list[tuple[str | None, str]]:
    return [(e.event, e.data) for e in _collect(server_sent_events(_chunks(parts)))]


def _sdk_events(body: bytes) -> list[tuple[str | None, str]]:
    return [(e.event, e.data) for e in SSEDecoder().iter_bytes(iter([body]))]


BODY = (
    b": a comment first\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"  # CRLF, and data lines joined by a newline
    b"event:named\rdata:no space after the colon\r\r"  # bare CR line ends
    b"data:  two spaces keep one\nretry: 3000\nunknown: ignored\n\n"
    b"data: caf\xc3\xa9 \xe2\x80\x94 utf-8\n\n"
    b"\n\n"  # blank lines with nothing pending dispatch nothing
    b"event: after_blank\ndata: {}\n\n"
    b"data: never ended"  # an event still open at the end is dropped
)
EXPECTED = [
    ("message_start", '{"a": 1}'),
    (None, "line one\nline two"),
    ("named", "no space after the colon"),
    (None, " two spaces keep one"),
    (None, "caf\u00e9 \u2014 utf-8"),
    ("after_blank", "{}"),
]


def test_the_framing_matches_the_spec_and_the_sdk_s_decoder() -> None:
    assert _events([BODY]) == EXPECTED
    assert _sdk_events(BODY) == EXPECTED  # the decoder the SDKs' stream iterators use


def test_the_same_events_whatever_the_reads_are_cut_at() -> None:
    # Every split into two reads (a CRLF, a multibyte character, a field name cut in half),
    # and a read per byte.
    for cut in range(len(BODY) + 1):
        assert _events([BODY[:cut], BODY[cut:]]) == EXPECTED, cut
    assert _events([BODY[i : i + 1] for i in range(len(BODY))]) == EXPECTED


def test_random_bodies_read_as_the_sdk_reads_them() -> None:
    rng = random.Random(7)
    pieces = [b"data: x", b'data: {"k": 2}', b"event: e", b": c", b"data:", b"retry: 5"]
    ends = [b"\n", b"\r\n", b"\r"]
    for _ in range(300):
        lines = [rng.choice([*pieces, b""]) for _ in range(rng.randint(1, 12))]
        body = b"".join(line + rng.choice(ends) for line in lines) + b"\n\n"
        reads = sorted(rng.sample(range(len(body) + 1), k=min(3, len(body) + 1)))
        parts = [body[a:b] for a, b in zip([0, *reads], [*reads, len(body)], strict=True)]
        assert _events(parts) == _sdk_events(body), body


def _anthropic(body: bytes) -> list[Any]:
    return _collect(anthropic_events(_chunks([body])))


def _openai(body: bytes) -> list[Any]:
    return _collect(openai_events(_chunks([body])))


def test_messages_rules_pings_and_unnamed_events_are_skipped() -> None:
    body = (
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'data: {"type": "no name"}\n\n'
        b'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n'
        b"event: content_block_stop\n\n"  # a named event without data
        b'event: some_future_event\ndata: {"type": "some_future_event"}\n\n'
    )
    assert [e.type for e in _anthropic(body)] == ["message_start", "some_future_event"]


def test_messages_error_event_raises_with_the_body() -> None:
    body = (
        b'event: message_start\ndata: {"type": "message_start"}\n\n'
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
        b'"message": "Overloaded"}}\n\n'
        b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    )
    with pytest.raises(StreamErrorEvent) as info:
        _anthropic(body)
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(StreamErrorEvent) as info:
        _anthropic(b"event: error\ndata: upstream went away\n\n")
    assert info.value.body == "upstream went away" and info.value.message == "upstream went away"


def test_openai_rules_done_ends_and_an_error_object_raises() -> None:
    body = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'
        b'event: named\ndata: {"type": "response.created"}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"after": "done"}\n\n'
    )
    got = _openai(body)
    assert [json.dumps(e, sort_keys=True) for e in got] == [
        '{"choices": [{"delta": {"content": "hi"}, "index": 0}]}',
        '{"type": "response.created"}',
    ]
    with pytest.raises(StreamErrorEvent) as info:
        _openai(b'data: {"error": {"message": "Token limit reached", "code": 400}}\n\n')
    assert info.value.message == "Token limit reached"
    assert info.value.body == {"message": "Token limit reached", "code": 400}
    with pytest.raises(StreamErrorEvent) as info:
        _openai(b'data: {"error": "a bare string"}\n\n')
    assert info.value.message == "An error occurred during streaming"  # the SDK's wording
    assert _openai(b'data: {"error": null, "ok": 1}\n\n') == [{"error": None, "ok": 1}]
    with pytest.raises(json.JSONDecodeError):
        _openai(b"data: <html>\n\n")


def test_wire_objects_read_by_attribute_and_stay_json() -> None:
    obj = loads('{"choices": [{"delta": {"tool_calls": [{"index": 0}]}}], "usage": null}')
    assert isinstance(obj, WireObject) and isinstance(obj.choices[0].delta, WireObject)
    assert obj.choices[0].delta.tool_calls[0].index == 0
    assert obj.usage is None and obj.not_there is None
    assert getattr(obj, "refusal", "default") is None  # absent reads as None, as the SDK's do
    assert json.loads(json.dumps(obj)) == obj
    assert ServerSentEvent("e", "d") == ServerSentEvent("e", "d")
