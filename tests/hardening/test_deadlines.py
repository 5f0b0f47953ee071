"""Issue 12, items 5-6: every attempt ends — silent, headers-only and endless upstreams.

A loopback upstream (hostile_upstream.py) misbehaves for some tools and forwards the rest to
the emulator. Each bad pair ends as a classified failure, the good pair is still ok, and the
run completes. The limits are small so the suite is fast; the defaults are asserted too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panel.emulator.runner import EmulatorHandle
from panel.providers.streaming import StreamLimits
from panel.run.retry import RetryLimits
from panel.verdict import VerdictProblem, validate_verdict

from .conftest import attempts, make_tools, options, results, run
from .hostile_upstream import hostile_upstream

# Small enough for a fast suite (a run lasts about 2 x total), with room for a loaded machine:
# these are wall-clock deadlines against a real socket, and the hostile upstream shares this
# process. At first_byte=1, idle=1 a busy machine answered late: Headers (headers, then
# nothing) met the first-byte deadline before its headers and Silent's second request was not
# read in time. What each pair must meet first is still the same: Silent first_byte, Headers
# idle (its headers come at once), Endless total (a delta every 5 ms), Huge the byte cap (one
# delta is over it).
LIMITS = StreamLimits(first_byte=3.0, idle=2.0, total=3.0, max_bytes=200_000)
RETRY = RetryLimits(max_attempts=2, base_delay=0.01, max_delay=0.02)
WIRES = [
    pytest.param("anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "",
                 id="anthropic"),
    pytest.param("openai:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1", id="openai"),
    pytest.param("openai:gpt-6-astra", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1",
                 id="responses"),
]  # fmt: skip
EXPECTED = {
    "Good Tool": ("ok", None),
    "Silent Tool": ("failed", "timeout"),
    "Headers Tool": ("failed", "stalled"),
    "Endless Tool": ("failed", "timeout"),
    "Huge Tool": ("failed", "protocol"),
}


def test_the_documented_defaults() -> None:
    limits = StreamLimits()
    assert (limits.first_byte, limits.idle, limits.total) == (60.0, 60.0, 600.0)
    assert limits.max_bytes == 256 * 1024


@pytest.mark.parametrize(
    ("model", "key", "url_var", "suffix"),
    WIRES,
)
@pytest.mark.slow
async def test_hostile_upstreams_end_classified_and_the_run_goes_on(
    tmp_path: Path, emulator: EmulatorHandle, model: str, key: str, url_var: str, suffix: str
) -> None:
    tools = make_tools(tmp_path / "tools", *EXPECTED)
    with hostile_upstream(emulator.base_url) as upstream:
        env = {key: "sk-test-deadlines-0000", url_var: upstream.base_url + suffix}
        opts = options(
            tmp_path, None, model=model, stream_limits=LIMITS, retry=RETRY, concurrency=8
        )
        outcome = await run(tools, opts, env=env)
    name_of = {t.slug: t.spec.name for t in tools}
    lines = results(outcome.run_dir)
    got = {name_of[r["tool_slug"]]: (r["status"], r.get("error_class")) for r in lines}
    assert got == EXPECTED
    assert outcome.manifest.status == "complete"
    # Each bad pair was attempted (and ended) RETRY.max_attempts times; a protocol failure
    # (the byte cap, which Huge's first delta is over) is never retried.
    assert upstream.hits["Silent"] == 2 and upstream.hits["Headers"] == 2
    tried = [
        (name_of[a["tool_slug"]], a["error_class"], a.get("error_message"))
        for a in attempts(outcome.run_dir)
    ]
    assert upstream.hits["Endless"] == 2 and upstream.hits["Huge"] == 1, tried


@pytest.mark.parametrize(
    ("model", "key", "url_var", "suffix"),
    [
        *WIRES,
        pytest.param("instructor:anthropic/claude-sonnet-5", "ANTHROPIC_API_KEY",
                     "ANTHROPIC_BASE_URL", "", id="instructor"),  # not streamed: aread
    ],
)  # fmt: skip
async def test_a_line_that_never_ends_is_cut_at_the_body_cap(
    tmp_path: Path, emulator: EmulatorHandle, model: str, key: str, url_var: str, suffix: str
) -> None:
    """No event ever completes, so neither the model-byte cap nor the deltas see it: the SDK
    would buffer the line until the idle timer, gigabytes at loopback speed. The body cap
    (64 x max_bytes, counted after decompression) ends it at once, and it is not retried."""
    limits = StreamLimits(first_byte=30.0, idle=30.0, total=60.0, max_bytes=1024)
    tools = make_tools(tmp_path / "tools", "Oneline Tool", "Zipline Tool")
    with hostile_upstream(emulator.base_url) as upstream:
        env = {key: "sk-test-deadlines-0000", url_var: upstream.base_url + suffix}
        opts = options(tmp_path, None, model=model, stream_limits=limits, retry=RETRY)
        outcome = await run(tools, opts, env=env)
    got = {r["tool_slug"]: (r["status"], r.get("error_class")) for r in results(outcome.run_dir)}
    assert got == {"oneline-tool": ("failed", "protocol"), "zipline-tool": ("failed", "protocol")}
    assert upstream.hits == {"Oneline": 1, "Zipline": 1}
    assert all("65536-byte cap" in (r.error or "") for r in outcome.results)


async def test_instructor_calls_end_at_the_total_deadline(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    """Not streamed, so no first byte or idle gap to watch: the attempt's total deadline ends a
    silent or headers-only upstream (before, the SDK waited 600 s per attempt, 4 attempts)."""
    tools = make_tools(tmp_path / "tools", "Good Tool", "Silent Tool", "Headers Tool")
    with hostile_upstream(emulator.base_url) as upstream:
        env = {
            "ANTHROPIC_API_KEY": "sk-test-deadlines-0000",
            "ANTHROPIC_BASE_URL": upstream.base_url,
        }
        opts = options(
            tmp_path,
            None,
            model="instructor:anthropic/claude-sonnet-5",
            stream_limits=StreamLimits(first_byte=1.0, idle=1.0, total=3.0),
            retry=RETRY,
        )
        outcome = await run(tools, opts, env=env)
    got = {r["tool_slug"]: (r["status"], r.get("error_class")) for r in results(outcome.run_dir)}
    assert got == {
        "good-tool": ("ok", None),
        "silent-tool": ("failed", "timeout"),
        "headers-tool": ("failed", "timeout"),
    }
    assert upstream.hits == {"Silent": 2, "Headers": 2}  # retried like any timeout, then ended


def _verdict(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ship": True,
        "confidence": 0.5,
        "headline": "Fine",
        "quote": " ".join(["word"] * 80),
        "answers": [{"question_id": "q1", "answer": "Yes."}],
        "strengths": ["fast"],
        "risks": ["new"],
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"headline": "x" * (5 * 1024 * 1024)}, id="5MB-headline"),
        pytest.param({"quote": " ".join(["w" * 900] * 80)}, id="huge-quote"),
        pytest.param({"strengths": ["s"] * 500}, id="many-strengths"),
        pytest.param({"risks": ["r" * 5000]}, id="long-risk"),
        pytest.param({"answers": [{"question_id": "q1", "answer": "a" * 9000}]}, id="long-answer"),
        pytest.param({"answers": [{"question_id": "q" * 500, "answer": "a"}]}, id="long-qid"),
    ],
)
def test_every_model_written_field_is_size_capped(changes: dict[str, Any]) -> None:
    with pytest.raises(VerdictProblem, match=r"too long|too many"):
        validate_verdict(_verdict(**changes), ["q1"])
    validate_verdict(_verdict(), ["q1"])  # the ordinary verdict still passes
