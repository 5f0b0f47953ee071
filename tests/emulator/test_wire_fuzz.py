"""Malformed and type-confused bodies on both wires: always a 4xx in the API's error shape.

Thousands of bodies are generated (seeded) from a valid panel-like request by replacing any
node with a value of another type, deleting keys, adding unknown ones and swapping objects for
arrays. None may get a 500, a traceback, a non-JSON error, or a stream that never ends.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from typing import Any

import httpx2
import pytest

from panel.emulator.server import create_app
from panel.emulator.state import EmulatorConfig, EmulatorState
from panel.verdict import TOOL_NAME, verdict_tool_schema

BODIES_PER_WIRE = 1500
POOL: list[Any] = [
    0, -1, 1.5, 10**20, "", "x", True, False, None, [], {}, [1, "a"], {"a": 1},
    {"type": 5}, [{}], [None], {"type": "text"}, "NaN", -(10**9), [[[]]],
]  # fmt: skip


def _anthropic_base() -> dict[str, Any]:
    schema = verdict_tool_schema()
    return {
        "model": "claude-sonnet-5",
        "max_tokens": 512,
        "stream": True,
        "tools": [{"name": TOOL_NAME, "description": "d", "input_schema": schema, "strict": True}],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
        "thinking": {"type": "disabled"},
        "system": [
            {"type": "text", "text": "house " * 50, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "persona"},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Tool: a linter."}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "go"},
        ],
        "metadata": {"user_id": "u"},
    }


def _openai_base() -> dict[str, Any]:
    return {
        "model": "gpt-5.6-luna",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 512,
        "prompt_cache_key": "k",
        "parallel_tool_calls": False,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": "d",
                    "parameters": verdict_tool_schema(),
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}},
        "messages": [
            {"role": "system", "content": "house"},
            {"role": "system", "content": [{"type": "text", "text": "persona"}]},
            {"role": "user", "content": "Tool: a linter."},
        ],
    }


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _set(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = body
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return body


def _get(body: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        body = body[part]
    return body


def _mutate(body: Any, rng: random.Random) -> Any:
    paths = _paths(body)
    path = rng.choice(paths[1:] if len(paths) > 1 else paths)
    op = rng.randrange(5)
    node = _get(body, path)
    if op == 0 or op == 4:
        return _set(body, path, copy.deepcopy(rng.choice(POOL)))
    if op == 1 and len(path) and isinstance(_get(body, path[:-1]), dict):
        del _get(body, path[:-1])[path[-1]]
        return body
    if op == 2:
        dicts = [p for p in paths if isinstance(_get(body, p), dict)]
        target = _get(body, rng.choice(dicts)) if dicts else None
        if isinstance(target, dict):
            target[f"unknown_{rng.randrange(100)}"] = rng.choice(POOL)
        return body
    if isinstance(node, dict):
        return _set(body, path, list(node.values()))
    if isinstance(node, list):
        return _set(body, path, {str(i): v for i, v in enumerate(node)})
    return _set(body, path, [node])


def bodies(base: dict[str, Any], seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        body: Any = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            if not isinstance(body, dict | list):
                break
            body = _mutate(body, rng)
        out.append(body)
    return out


def _shaped(wire: str, status: int, payload: Any) -> bool:
    if wire == "anthropic":
        err = payload.get("error") if isinstance(payload, dict) else None
        return payload.get("type") == "error" and isinstance(err, dict) and "message" in err
    err = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(err, dict) and {"message", "type", "param", "code"} <= set(err)


async def _fire(wire: str, items: list[Any]) -> list[tuple[int, str]]:
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    app = create_app(state=state)
    path = "/v1/messages" if wire == "anthropic" else "/v1/chat/completions"
    headers = {"x-api-key": "k", "anthropic-version": "2026-10-21", "authorization": "Bearer k"}
    bad: list[tuple[int, str]] = []
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator") as client:
        for body in items:
            raw = json.dumps(body)
            r = await asyncio.wait_for(client.post(path, content=raw, headers=headers), timeout=10)
            if r.status_code >= 500 or "Traceback" in r.text:
                bad.append((r.status_code, raw[:300]))
            elif r.status_code >= 400 and not _shaped(wire, r.status_code, r.json()):
                bad.append((r.status_code, f"unshaped {r.text[:200]} for {raw[:200]}"))
    notes = [e for e in state.requests() if "exception" in str(e.get("note"))]
    bad += [(500, f"logged: {e.get('note')}") for e in notes]
    return bad


@pytest.mark.parametrize(
    ("wire", "base"), [("anthropic", _anthropic_base), ("openai", _openai_base)]
)
@pytest.mark.slow
async def test_type_confused_bodies_get_a_shaped_4xx_never_a_500(wire: str, base: Any) -> None:
    items = bodies(base(), seed=13, n=BODIES_PER_WIRE)
    assert len({json.dumps(b) for b in items}) > BODIES_PER_WIRE * 0.8  # really different
    bad = await _fire(wire, items)
    assert not bad, bad[:5]


async def test_stream_options_of_the_wrong_type_is_a_400_not_a_hang() -> None:
    body = {**_openai_base(), "stream_options": 123}
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    transport = httpx2.ASGITransport(app=create_app(state=state))
    async with httpx2.AsyncClient(transport=transport, base_url="http://e") as client:
        r = await asyncio.wait_for(
            client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}),
            timeout=5,
        )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "stream_options" and err["code"] == "invalid_type"


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("anthropic", "frobnicate: Extra inputs are not permitted"),
        ("openai", "Unrecognized request argument supplied: frobnicate"),
    ],
)
async def test_unknown_top_level_field_is_rejected_like_the_real_api(
    wire: str, message: str
) -> None:
    base = _anthropic_base() if wire == "anthropic" else _openai_base()
    body = {**base, "frobnicate": True}
    path = "/v1/messages" if wire == "anthropic" else "/v1/chat/completions"
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    transport = httpx2.ASGITransport(app=create_app(state=state))
    headers = {"x-api-key": "k", "anthropic-version": "2026-10-21", "authorization": "Bearer k"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://e") as client:
        r = await client.post(path, json=body, headers=headers)
    assert r.status_code == 400
    payload = r.json()
    assert _shaped(wire, 400, payload)
    assert payload["error"]["message"] == message
    assert payload["error"]["type"] == "invalid_request_error"


async def test_a_huge_min_items_cannot_block_the_event_loop() -> None:
    body = _anthropic_base()
    schema = {
        "type": "object",
        "properties": {"xs": {"type": "array", "items": {"type": "string"}, "minItems": 1000000}},
        "required": ["xs"],
        "additionalProperties": False,
    }
    body["tools"][0]["input_schema"] = schema
    body["stream"] = False
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    transport = httpx2.ASGITransport(app=create_app(state=state))
    headers = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://e") as client:
        # wait_for only guards against a hang (46 s before the cap); the cap is the assertion.
        r = await asyncio.wait_for(client.post("/v1/messages", json=body, headers=headers), 30)
    assert r.status_code == 200
    xs = next(b for b in r.json()["content"] if b["type"] == "tool_use")["input"].get("xs", [])
    assert 0 < len(xs) <= 64  # the stub never builds more than 64 items, whatever minItems says


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", -5, True, [1]])
def test_the_clock_rejects_non_finite_and_negative_advances(emulator: Any, value: Any) -> None:
    r = httpx2.post(emulator.base_url + "/emulator/clock", json={"advance": value})
    assert r.status_code == 400
    ok = httpx2.post(emulator.base_url + "/emulator/clock", json={"advance": 1})
    assert ok.status_code == 200 and ok.json()["clock"] == ok.json()["clock"]  # not NaN


RAW_BODIES = {
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "lone surrogate": b'{"model":"m","max_tokens":9,"messages":[{"role":"user",'
    b'"content":"\\ud800"}]}',
    "not UTF-8": b'\xff\xfe{"model": 1}',
    "NaN": b'{"model": "m", "max_tokens": NaN}',
    "huge exponent": b'{"model": "m", "max_tokens": 1e999, "advance": 1e999}',
    "empty": b"",
    "a string": b'"hello"',
}
RAW_PATHS = {
    "/v1/messages": "anthropic",
    "/v1/chat/completions": "openai",
    "/v1/responses": "openai",
    "/v1/messages/batches": "anthropic",
    "/v1/batches": "openai",
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
async def test_bodies_that_are_not_json_objects_get_a_shaped_400_everywhere(name: str) -> None:
    """Bodies the JSON parser chokes on (or parses into something no UTF-8 text can hold)."""
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    transport = httpx2.ASGITransport(app=create_app(state=state), raise_app_exceptions=False)
    headers = {"x-api-key": "k", "anthropic-version": "2026-10-21", "authorization": "Bearer k"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://e") as client:
        for path, wire in RAW_PATHS.items():
            r = await client.post(path, content=RAW_BODIES[name], headers=headers)
            assert r.status_code == 400 and _shaped(wire, 400, r.json()), (path, r.text[:300])
        if name != "empty":  # an empty body is no advance at all
            r = await client.post("/emulator/clock", content=RAW_BODIES[name])
            assert r.status_code == 400 and r.json()["ok"] is False, r.text[:300]
        # A batch line the parser chokes on fails its batch's validation, not the emulator.
        lines = RAW_BODIES[name].replace(b"\n", b" ") + b"\n"
        files = {"file": ("in.jsonl", lines), "purpose": (None, b"batch")}
        r = await client.post("/v1/files", files=files, headers=headers)
        assert r.status_code == 200, r.text[:300]
        body = {"input_file_id": r.json()["id"], "endpoint": "/v1/chat/completions",
                "completion_window": "24h"}  # fmt: skip
        r = await client.post("/v1/batches", json=body, headers=headers)
        assert r.status_code < 500 and "Traceback" not in r.text, r.text[:300]
