"""What a user would write instead of panel: the official SDK, every request fired at once with
asyncio.gather, bounded by a semaphore of the same concurrency. Same request bodies (same
`cache_control` marks); no leader-first ordering, no retries beyond the SDK's defaults.

    python bench/naive.py BODIES.jsonl --base-url URL [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic


@dataclass
class NaiveResult:
    wall_s: float
    verdicts: list[dict[str, Any]]  # the verdict tool's input, one per request, in order
    usage: list[dict[str, int]]


async def run(
    bodies: Sequence[dict[str, Any]], *, base_url: str, concurrency: int, api_key: str = "naive"
) -> NaiveResult:
    """Send every body, streaming, at most `concurrency` at a time; all launched at once."""
    client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url)
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        async with gate, client.messages.stream(**body) as stream:
            message = await stream.get_final_message()
        tool_input = next((b.input for b in message.content if b.type == "tool_use"), {})
        u = message.usage
        usage = {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_read_tokens": u.cache_read_input_tokens or 0,
            "cache_write_tokens": u.cache_creation_input_tokens or 0,
        }
        return dict(tool_input), usage

    start = time.perf_counter()
    try:
        done = await asyncio.gather(*(one(b) for b in bodies))
    finally:
        await client.close()
    wall = time.perf_counter() - start
    return NaiveResult(wall_s=wall, verdicts=[d[0] for d in done], usage=[d[1] for d in done])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bodies", type=Path, help="one Messages API request body per line")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    bodies = [json.loads(line) for line in args.bodies.read_text().splitlines() if line.strip()]
    result = asyncio.run(run(bodies, base_url=args.base_url, concurrency=args.concurrency))
    print(json.dumps({"requests": len(bodies), "wall_s": round(result.wall_s, 3)}))


if __name__ == "__main__":
    main()
