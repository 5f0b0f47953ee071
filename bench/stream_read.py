"""The client's CPU to read one streamed verdict: the SDK's typed events vs panel's reader.

    .venv/bin/python bench/stream_read.py [--verdicts 40]

For each wire (Messages, Chat Completions, Responses) the in-process emulator (latency 0, real
fragment sizes) streams the same verdict request `--verdicts` times, read alternately both
ways: iterating the SDK's stream (a pydantic object per event), and `panel.providers.sse` over
the same response's bytes (JSON objects). The CPU time of the reading thread only is counted
(`time.thread_time`; the emulator serves from its own thread), from the opened response to its
last event. Prints the median per verdict, events per verdict and the ratio. Not part of the
test suite; docs/testing.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai

from panel.emulator.runner import run_emulator
from panel.emulator.state import EmulatorConfig
from panel.inputs.personas import load_personas
from panel.inputs.prompts import load_prompts, render_prompt
from panel.inputs.tools import load_tools
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import VerdictRequest
from panel.providers.openai import OpenAIProvider
from panel.providers.responses import ResponsesProvider
from panel.providers.sse import anthropic_events, openai_events
from panel.verdict import verdict_tool_schema

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0000"


def the_request() -> VerdictRequest:
    prompts = load_prompts([REPO / "prompts"])
    persona = load_personas([REPO / "personas"])[0]
    tool = load_tools([REPO / "examples" / "tools" / "cursor.yaml"]).tools[0]
    return VerdictRequest(
        tool_slug=tool.slug,
        persona_id=persona.id,
        parts=render_prompt(persona, tool, prompts),
        tool_schema=verdict_tool_schema(),
    )


async def read(
    opening: Callable[[], Any], body: Callable[[Any], AsyncIterator[Any]]
) -> tuple[float, int]:
    stream = await opening()
    t0 = time.thread_time()
    events = 0
    async for _ in body(stream):
        events += 1
    spent = time.thread_time() - t0
    await stream.close()
    return spent, events


async def wire(name: str, opening: Callable[[], Any], ours: Any, n: int) -> None:
    sdk: list[float] = []
    panel: list[float] = []
    counts: set[int] = set()
    for _ in range(n):
        spent, k = await read(opening, lambda s: s.__aiter__())
        sdk.append(spent)
        counts.add(k)
        spent, k = await read(opening, lambda s: ours(s.response.aiter_bytes()))
        panel.append(spent)
        counts.add(k)
    a, b = statistics.median(sdk) * 1000, statistics.median(panel) * 1000
    print(
        f"{name:<18} events/verdict {'/'.join(map(str, sorted(counts))):<9} "
        f"SDK objects {a:6.2f} ms   panel reader {b:6.2f} ms   ratio {a / b:4.1f}x"
    )


async def main(n: int) -> None:
    request = the_request()
    config = EmulatorConfig(latency_scale=0.0)
    with run_emulator(config) as emu:
        messages = AnthropicProvider(
            "claude-sonnet-5", api_key=KEY, base_url=emu.base_url
        ).build_params(request)
        chat = OpenAIProvider(
            "gpt-5.6-luna", api_key=KEY, base_url=emu.openai_base_url
        ).build_params(request)
        resp = ResponsesProvider(
            "gpt-6-astra", api_key=KEY, base_url=emu.openai_base_url
        ).build_params(request)
        chat.pop("stream")
        resp.pop("stream")
        a = anthropic.AsyncAnthropic(base_url=emu.base_url, api_key=KEY, max_retries=0)
        o = openai.AsyncOpenAI(base_url=emu.openai_base_url, api_key=KEY, max_retries=0)
        print(f"median client CPU per streamed verdict, {n} verdicts each way, alternating")
        await wire(
            "Messages",
            lambda: a.messages.create(**{**messages, "stream": True}),
            anthropic_events,
            n,
        )
        await wire(
            "Chat Completions",
            lambda: o.chat.completions.create(**chat, stream=True),
            openai_events,
            n,
        )
        await wire("Responses", lambda: o.responses.create(**resp, stream=True), openai_events, n)
        await a.close()
        await o.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=40)
    asyncio.run(main(parser.parse_args().verdicts))
