"""Real providers, opt-in: `pytest --live -m live` with the providers' keys set.

Each test runs a one-tool, two-persona panel through the real API, so the request building,
streaming, caching and error handling written against the documented formats are exercised
for real. Without --live (the default, and in CI) they are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from panel.inputs.tools import load_tools
from panel.run.engine import RunOptions, run_panel

pytestmark = pytest.mark.live
TOOL = Path(__file__).resolve().parents[2] / "examples" / "tools" / "ollama.yaml"

CASES = [
    ("anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY"),
    ("anthropic:claude-opus-5-5", "ANTHROPIC_API_KEY"),  # no forced tool choice on 5.5
    ("openai:gpt-5.6-luna", "OPENAI_API_KEY"),
    ("openai:gpt-6-astra", "OPENAI_API_KEY"),  # the Responses API: its only tool-call wire
    ("openrouter:anthropic/claude-sonnet-5", "OPENROUTER_API_KEY"),
]


@pytest.mark.parametrize(("model", "key"), CASES)
async def test_real_provider_streams_valid_verdicts(tmp_path: Path, model: str, key: str) -> None:
    if not os.environ.get(key):
        pytest.skip(f"{key} is not set")
    out = await run_panel(
        load_tools([TOOL]).tools,
        RunOptions(
            model=model, personas=["builder", "skeptic"], runs_dir=tmp_path, use_result_cache=False
        ),
    )
    assert [r.status for r in out.results] == ["ok", "ok"], [r.error for r in out.results]
    assert all(not r.synthetic and isinstance(r.ship, bool) for r in out.results)
    assert out.manifest.cache_stats is not None and out.manifest.cache_stats.requests >= 2
    assert out.manifest.cost.known
