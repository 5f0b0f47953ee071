"""Malformed and type-confused bodies on /v1/responses: always a shaped 4xx, never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from panel.emulator.server import create_app
from panel.emulator.state import EmulatorConfig, EmulatorState
from panel.verdict import TOOL_NAME, verdict_tool_schema
from tests.emulator.test_wire_fuzz import _shaped, bodies

BODIES = 1500


def _base() -> dict[str, Any]:
    part = {"type": "input_text", "text": "house " * 50}
    return {
        "model": "gpt-6-astra",
        "stream": True,
        "store": False,
        "max_output_tokens": 512,
        "prompt_cache_key": "k",
        "prompt_cache_options": {"mode": "implicit"},
        "parallel_tool_calls": False,
        "tools": [
            {
                "type": "function",
                "name": TOOL_NAME,
                "description": "d",
                "parameters": verdict_tool_schema(),
                "strict": True,
            }
        ],
        "tool_choice": {"type": "function", "name": TOOL_NAME},
        "text": {"format": {"type": "text"}},
        "instructions": "Be brief.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{**part, "prompt_cache_breakpoint": {"mode": "explicit"}}],
            },
            {"type": "message", "role": "user", "content": "Tool: a linter."},
            {"type": "function_call", "call_id": "c1", "name": TOOL_NAME, "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ship is missing"},
        ],
    }


@pytest.mark.slow
async def test_type_confused_bodies_get_a_shaped_4xx_never_a_500() -> None:
    items = bodies(_base(), seed=29, n=BODIES)
    state = EmulatorState(EmulatorConfig(latency_scale=0.0))
    transport = httpx2.ASGITransport(app=create_app(state=state))
    bad: list[tuple[int, str]] = []
    async with httpx2.AsyncClient(transport=transport, base_url="http://emulator") as client:
        for body in items:
            raw = json.dumps(body)
            r = await asyncio.wait_for(
                client.post("/v1/responses", content=raw, headers={"authorization": "Bearer k"}),
                timeout=10,
            )
            if r.status_code >= 500 or "Traceback" in r.text:
                bad.append((r.status_code, raw[:300]))
            elif r.status_code >= 400 and not _shaped("openai", r.status_code, r.json()):
                bad.append((r.status_code, f"unshaped {r.text[:200]} for {raw[:200]}"))
    notes = [e for e in state.requests() if "exception" in str(e.get("note"))]
    bad += [(500, f"logged: {e.get('note')}") for e in notes]
    assert not bad, bad[:5]
