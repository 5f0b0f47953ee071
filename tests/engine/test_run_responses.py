"""`panel run` over the OpenAI Responses wire (gpt-6-astra) on the emulator, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from panelproc import launcher
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.runner import EmulatorHandle
from panel.errors import ConfigError
from panel.inputs.tools import load_tools
from panel.providers.select import EmulatorSettings
from panel.run.engine import RunOptions, run_panel

TOOL = Path(__file__).resolve().parents[2] / "examples" / "tools" / "openrouter-model-fusion.yaml"


def _run_json(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, ["run", *args, "--json"], env=env)
    return result.exit_code, json.loads(result.stdout or "{}"), result.stderr


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> dict[str, str]:
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return {"PANEL_EMULATOR_URL": emulator.base_url}


def _paths(emulator: EmulatorHandle) -> list[str]:
    return [r["path"] for r in emulator.requests()]


@pytest.mark.parametrize("wire", ["chat", "responses"])
def test_every_persona_reads_the_house_block_on_the_openai_wires(
    tmp_path: Path,
    no_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorHandle,
    wire: str,
) -> None:
    """One `prompt_cache_key` per house block: the house prefix is written by the first persona
    and read by the other three (one key per persona wrote it four times, above no-cache)."""
    monkeypatch.setenv("PANEL_OPENAI_WIRE", wire)
    args = [str(TOOL), "--model", "emulator:gpt-5.6-luna", "--runs-dir", str(tmp_path / "runs")]
    code, out, err = _run_json([*args, "--no-cache"], no_keys)
    assert code == 0, err
    keys = {r["body"]["prompt_cache_key"] for r in emulator.requests()}
    assert len(keys) == 1, keys
    reads = [r["usage"]["cache_read_tokens"] for r in out["results"]]
    assert sorted(x > 0 for x in reads) == [False, True, True, True], reads
    assert out["cost"]["usd"] < out["cost"]["no_cache_usd"]


@pytest.mark.slow
def test_gpt_6_astra_streams_four_verdicts_through_responses_and_reads_the_cache(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle
) -> None:
    args = [str(TOOL), "--model", "emulator:gpt-6-astra", "--runs-dir", str(tmp_path / "runs")]
    code, out, err = _run_json(args, no_keys)
    assert code == 0, err
    assert out["synthetic"] is True
    assert [r["status"] for r in out["results"]] == ["ok"] * 4
    assert _paths(emulator) == ["/v1/responses"] * 4
    assert all(r["stream"] for r in emulator.requests())
    first = out["cost"]
    # The house block is written once (explicit breakpoint) and read by the other personas.
    assert sum(r["usage"]["cache_read_tokens"] for r in out["results"]) > 0
    assert emulator.stats()["billed_usd"] == pytest.approx(first["usd"], rel=1e-6)
    # A second identical run (result cache off) reads every prompt from the prompt cache.
    code, again, err = _run_json([*args, "--no-cache"], no_keys)
    assert code == 0, err
    assert [r["status"] for r in again["results"]] == ["ok"] * 4
    usages = [r["usage"] for r in again["results"]]
    assert all(u["cache_read_tokens"] > 0 and u["cache_write_tokens"] == 0 for u in usages)
    assert again["cost"]["usd"] < first["usd"]


@pytest.mark.slow
def test_openai_provider_against_a_running_emulator_uses_responses_for_astra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle
) -> None:
    monkeypatch.delenv("PANEL_EMULATOR_URL", raising=False)
    env = {"OPENAI_API_KEY": "sk-test-not-real", "OPENAI_BASE_URL": emulator.openai_base_url}
    args = [str(TOOL), "--model", "openai:gpt-6-astra", "--runs-dir", str(tmp_path / "runs")]
    code, out, err = _run_json(args, env)
    assert code == 0, err
    assert [r["status"] for r in out["results"]] == ["ok"] * 4
    assert out["synthetic"] is True  # the emulator said so (x-panel-emulator), not the prefix
    assert _paths(emulator) == ["/v1/responses"] * 4
    code, again, err = _run_json([*args, "--no-cache"], env)
    assert code == 0, err
    assert all(r["usage"]["cache_read_tokens"] > 0 for r in again["results"])


def test_wire_override_and_its_refusal(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle
) -> None:
    runs = ["--runs-dir", str(tmp_path / "runs")]
    env = {**no_keys, "PANEL_OPENAI_WIRE": "responses"}
    code, out, err = _run_json([str(TOOL), "--model", "emulator:gpt-5.6-luna", *runs], env)
    assert [r["status"] for r in out["results"]] == ["ok"] * 4
    assert code == 0, err
    assert _paths(emulator) == ["/v1/responses"] * 4
    env = {**no_keys, "PANEL_OPENAI_WIRE": "chat_completions"}
    model = ["--model", "emulator:gpt-6-astra"]
    result = CliRunner().invoke(app, ["run", str(TOOL), *model, *runs], env=env)
    # A ConfigError: panel.cli.main turns it into one stderr line and exit 2.
    assert isinstance(result.exception, ConfigError)
    assert "gpt-6-astra takes tool calls only on responses" in str(result.exception)


@pytest.mark.parametrize("fault", ["max_tokens", "invalid_json", "no_tool_call"])
def test_billed_failures_carry_their_usage_into_the_cost(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle, fault: str
) -> None:
    emulator.configure(rules=[{"match": "record_verdict", "fault": fault}])
    args = [str(TOOL), "--model", "emulator:gpt-6-astra", "--runs-dir", str(tmp_path / "runs")]
    _, out, err = _run_json([*args, "--personas", "builder"], no_keys)
    assert out["results"][0]["status"] == "failed", err
    cost = out["cost"]
    assert cost["known"] is True and cost["usd"] > 0.01  # gpt-6-astra: $10/M input
    assert emulator.stats()["billed_usd"] == pytest.approx(cost["usd"], rel=1e-6)


def test_the_wire_is_part_of_the_result_cache_key(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle
) -> None:
    args = [str(TOOL), "--model", "emulator:gpt-5.6-luna", "--runs-dir", str(tmp_path / "runs")]
    args += ["--personas", "builder"]
    code, out, err = _run_json(args, no_keys)
    assert code == 0 and out["requested"] == 1, err
    # The same pair over the Responses wire is a different request: not reused.
    code, out, err = _run_json(args, {**no_keys, "PANEL_OPENAI_WIRE": "responses"})
    assert code == 0 and out["requested"] == 1 and out["reused"] == 0, err
    code, out, err = _run_json(args, {**no_keys, "PANEL_OPENAI_WIRE": "responses"})
    assert code == 0 and out["reused"] == 1, err


@pytest.mark.slow
def test_panel_run_against_panel_emulator_with_openai_base_url(tmp_path: Path) -> None:
    """The must-show, as a user types it: `panel emulator`, then `panel run … openai:gpt-6-astra`
    with OPENAI_BASE_URL, twice (the second with the result cache off reads the prompt cache)."""
    proc = launcher().Popen(
        [sys.executable, "-m", "panel", "emulator", "--port", "0", "--latency-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.pop("PANEL_EMULATOR_URL", None)
        env |= {"OPENAI_API_KEY": "sk-local-not-real", "OPENAI_BASE_URL": url + "/v1"}
        args = [sys.executable, "-m", "panel", "run", str(TOOL), "--model", "openai:gpt-6-astra"]
        args += ["--runs-dir", str(tmp_path / "runs"), "--json"]
        runs = []
        for extra in ([], ["--no-cache"]):
            done = launcher().run(
                [*args, *extra], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stderr
            runs.append(json.loads(done.stdout))
        assert all([r["status"] for r in run["results"]] == ["ok"] * 4 for run in runs)
        assert all(run["synthetic"] is True for run in runs)
        assert all(r["usage"]["cache_read_tokens"] > 0 for r in runs[1]["results"])
        assert runs[1]["cost"]["usd"] < runs[0]["cost"]["usd"]
        paths = [r["path"] for r in httpx2.get(url + "/emulator/requests").json()]
        assert paths == ["/v1/responses"] * 8
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.slow
async def test_cache_waves_on_the_responses_wire(tmp_path: Path, emulator_factory: Any) -> None:
    """With real latency, every request after the first reads the house block: StreamStarted
    (after response.created) releases the next wave only once the leader's output began."""
    handle = emulator_factory(latency_scale=0.05)
    tools = load_tools(sorted(TOOL.parent.glob("*.yaml"))[:3]).tools
    out = await run_panel(
        tools,
        RunOptions(
            model="emulator:gpt-6-astra",
            runs_dir=tmp_path,
            use_result_cache=False,
            concurrency=12,
            emulator=EmulatorSettings(url=handle.base_url),
        ),
    )
    stats = out.manifest.cache_stats
    assert stats is not None and stats.requests == 12
    assert stats.requests_reading_cache == 11
    plan = out.manifest.cache_plan
    assert plan is not None and plan.segments[0].name == "tools+house"
    house = plan.segments[0].tokens
    readers = [r for r in out.results if r.usage and r.usage.cache_read_tokens >= house]
    assert len(readers) == 11
    # Each persona's block is written once and read by its two followers.
    assert sum(1 for r in out.results if r.usage and r.usage.cache_read_tokens > house) == 8


def test_base_url_points_the_responses_wire_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle
) -> None:
    for var in ("PANEL_EMULATOR_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    args = [str(TOOL), "--model", "openai:gpt-6-astra", "--personas", "builder"]
    args += ["--base-url", emulator.openai_base_url, "--runs-dir", str(tmp_path / "runs")]
    code, out, err = _run_json(args, {"OPENAI_API_KEY": "sk-test-not-real"})
    assert code == 0 and out["results"][0]["status"] == "ok", err
    assert _paths(emulator) == ["/v1/responses"]
