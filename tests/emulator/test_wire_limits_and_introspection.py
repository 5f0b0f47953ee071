"""Rate limits, introspection endpoints, and the `panel emulator` command."""

from __future__ import annotations

import subprocess
import sys

import anthropic
import httpx2
import openai
import pytest

from panel.emulator.runner import EmulatorHandle
from panel.providers.base import EMULATOR_HEADER
from tests.conftest import TEST_KEY


def test_requests_per_minute_limit(emulator, anthropic_client, anthropic_request):
    emulator.configure(rpm=2)
    ok = anthropic_client.messages.with_raw_response.create(**anthropic_request())
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "2"
    anthropic_client.messages.create(**anthropic_request())
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client.messages.create(**anthropic_request())
    headers = info.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "anthropic-ratelimit-requests-reset" in headers
    # Another key has its own bucket; advancing the clock refills this one.
    with anthropic.Anthropic(base_url=emulator.base_url, api_key="other", max_retries=0) as c:
        c.messages.create(**anthropic_request())
    emulator.advance_clock(60)
    anthropic_client.messages.create(**anthropic_request())


def test_input_token_limit_ignores_cache_reads(emulator, anthropic_client, anthropic_request):
    first = anthropic_client.messages.create(**anthropic_request())
    total = first.usage.cache_creation_input_tokens + first.usage.input_tokens
    emulator.configure(itpm=total + 100)  # room for one uncached request per minute
    anthropic_client.messages.create(**anthropic_request(system_repeat=301))  # uncached
    hit = anthropic_client.messages.create(**anthropic_request())  # a cache read: nearly free
    assert hit.usage.cache_read_input_tokens > 100
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client.messages.create(**anthropic_request(system_repeat=302))
    assert "anthropic-ratelimit-input-tokens-remaining" in info.value.response.headers


def test_openai_rate_limit_headers(emulator, openai_client):
    emulator.configure(rpm=1)
    req = {"model": "gpt-5.6-luna", "messages": [{"role": "user", "content": "hi"}]}
    raw = openai_client.chat.completions.with_raw_response.create(**req)
    assert raw.headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError) as info:
        openai_client.chat.completions.create(**req)
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_request_log_never_holds_the_key(
    emulator, anthropic_client, openai_client, anthropic_request
):
    anthropic_client.messages.create(**anthropic_request())
    openai_client.chat.completions.create(
        model="gpt-5.6-luna", messages=[{"role": "user", "content": "hi"}]
    )
    httpx2.post(
        emulator.base_url + "/v1/messages",
        json=anthropic_request(),
        headers={"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"},
    )
    text = httpx2.get(emulator.base_url + "/emulator/requests").text
    assert TEST_KEY not in text
    log = httpx2.get(emulator.base_url + "/emulator/requests").json()
    assert [e["path"] for e in log] == ["/v1/messages", "/v1/chat/completions", "/v1/messages"]
    assert log[0]["usage"]["cache_creation_input_tokens"] > 0 and log[0]["status"] == 200


def test_stats_reset_config_health(emulator, anthropic_client, anthropic_request):
    anthropic_client.messages.create(**anthropic_request())
    stats = httpx2.get(emulator.base_url + "/emulator/stats").json()
    assert stats["requests"] == 1 and stats["by_status"] == {"200": 1} and stats["in_flight"] == 0
    assert httpx2.post(emulator.base_url + "/emulator/reset").json()["ok"]
    assert httpx2.get(emulator.base_url + "/emulator/stats").json()["requests"] == 0
    r = httpx2.post(emulator.base_url + "/emulator/config", json={"faults": "overloaded=1"})
    assert r.json()["config"]["faults"] == "overloaded=1.0"
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**anthropic_request())
    assert httpx2.post(emulator.base_url + "/emulator/config", json={"bogus": 1}).status_code == 400
    assert httpx2.get(emulator.base_url + "/emulator/health").json()["ok"]


@pytest.mark.slow
def test_cli_prints_listening_line_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "emulator", "--port", "0", "--latency-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as c:
            msg = c.messages.create(
                model="claude-haiku-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "hi"}],
            )
        assert msg.content[0].type == "text"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_every_response_says_it_came_from_the_emulator(emulator: EmulatorHandle) -> None:
    with httpx2.Client(base_url=emulator.base_url) as client:
        answers = [
            client.get("/emulator/health"),
            client.post("/v1/messages", json={}),  # 401 / 400
            client.post("/v1/chat/completions", json={"model": "nope"}),
            client.get("/no/such/path"),
        ]
    assert all(r.headers.get(EMULATOR_HEADER) == "1" for r in answers), [
        (r.status_code, dict(r.headers)) for r in answers
    ]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"latency_scale": "inf"}, "latency_scale must be a finite number"),  # never answered
        ({"latency_scale": -1}, "latency_scale must be a finite number"),
        ({"stall_seconds": "nan"}, "stall_seconds must be a finite number"),
        ({"rpm": 0}, "rpm must be at least 1"),  # was a 500 on every request (division by 0)
        ({"otpm": -3}, "otpm must be at least 1"),
    ],
)
def test_config_that_would_hang_or_break_the_emulator_is_refused(
    emulator: EmulatorHandle, patch: dict[str, object], message: str
) -> None:
    r = httpx2.post(emulator.base_url + "/emulator/config", json=patch)
    assert r.status_code == 400 and message in r.json()["error"], r.text
    config = httpx2.post(emulator.base_url + "/emulator/config", json={}).json()["config"]
    assert config["latency_scale"] >= 0 and config["rpm"] is None  # unchanged


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], "--port 99999: a port is 0 to 65535"),  # was a traceback
        (["--port", "0", "--latency-scale", "inf"], "--latency-scale must be a finite number"),
        (["--port", "0", "--rpm", "0"], "--rpm must be at least 1"),
    ],
)
def test_cli_refuses_an_emulator_it_cannot_serve_in_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "panel", "emulator", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"panel: error: {message}"), proc.stderr
