"""`panel run` end to end on the emulator: streamed verdicts, cache plan, faults, run folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.runner import EmulatorHandle
from panel.inputs.tools import load_tools
from panel.providers.select import EmulatorSettings
from panel.run.engine import ReviewFinished, RunOptions, VerdictDelta, run_panel
from panel.store.runs import RunStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tools"
TOOL = EXAMPLES / "openrouter-model-fusion.yaml"


def _persona(persona_id: str) -> str:
    """A substring of the request body (JSON) that only this persona's requests contain."""
    return f'<persona id=\\"{persona_id}\\"'


def _run_json(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", *args, "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> dict[str, str]:
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return {"PANEL_EMULATOR_URL": emulator.base_url}


def test_json_run_reads_house_block_from_cache_and_costs_the_floor(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle
) -> None:
    code, out = _run_json(
        [str(TOOL), "--model", "emulator:claude-sonnet-5", "--runs-dir", str(tmp_path / "runs")],
        no_keys,
    )
    assert code == 0
    assert out["synthetic"] is True and out["model"] == "emulator:claude-sonnet-5"
    results = out["results"]
    assert [r["persona"] for r in results] == ["builder", "skeptic", "futurist", "business"]
    assert all(r["status"] == "ok" for r in results)
    assert all(r["quote"].startswith("Synthetic verdict") for r in results)
    house = next(s for s in out["cache_plan"]["segments"] if s["name"] == "tools+house")
    readers = [r for r in results if r["usage"]["cache_read_tokens"] >= house["tokens"]]
    assert len(readers) >= 3
    cost = out["cost"]
    assert abs(cost["usd"] - cost["floor_usd"]) <= 0.05 * cost["floor_usd"]
    assert cost["usd"] < cost["no_cache_usd"]
    # The emulator agrees on what was billed.
    assert emulator.stats()["billed_usd"] == pytest.approx(cost["usd"], rel=1e-6)
    run_dir = Path(out["run_dir"])
    assert {p.name for p in run_dir.iterdir()} >= {"run.json", "results.jsonl", "attempts.jsonl"}
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["synthetic"] for line in lines)


def test_second_run_reuses_every_verdict_without_a_request(
    tmp_path: Path, no_keys: dict[str, str], emulator: EmulatorHandle
) -> None:
    args = [str(TOOL), "--model", "emulator:claude-sonnet-5", "--runs-dir", str(tmp_path / "runs")]
    _run_json(args, no_keys)
    before = emulator.stats()["requests"]
    code, out = _run_json(args, no_keys)
    assert code == 0 and out["reused"] == 4 and out["requested"] == 0
    assert emulator.stats()["requests"] == before
    assert all(r["reused"] for r in out["results"])


def test_no_key_defaults_to_the_emulator_and_says_so(
    tmp_path: Path, no_keys: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["run", str(TOOL), "--runs-dir", str(tmp_path)], env=no_keys)
    assert result.exit_code == 0, result.output
    assert "using the built-in emulator" in result.stderr
    assert "SYNTHETIC" in result.stderr


@pytest.mark.parametrize(
    "model", ["claude-sonnet-5", "claude-opus-5-5", "gpt-5.6-luna", "gpt-6-astra"]
)
@pytest.mark.slow
async def test_faulty_panel_ends_ok_or_failed_with_the_right_class(
    tmp_path: Path, emulator: EmulatorHandle, model: str
) -> None:
    """Overloads, resets, truncation and invalid JSON: every persona ends ok or failed, never
    a truncated verdict recorded as ok."""
    emulator.configure(
        rules=[
            {"match": _persona("builder"), "fault": "overloaded", "attempts": [1]},
            {"match": _persona("skeptic"), "fault": "reset_midstream", "attempts": [1]},
            {"match": _persona("futurist"), "fault": "max_tokens"},
            {"match": _persona("business"), "fault": "invalid_json"},
        ]
    )
    tools = load_tools([TOOL]).tools
    deltas: list[VerdictDelta] = []
    finished: list[ReviewFinished] = []

    def sink(event: object) -> None:
        if isinstance(event, VerdictDelta):
            deltas.append(event)
        elif isinstance(event, ReviewFinished):
            finished.append(event)

    out = await run_panel(
        tools,
        RunOptions(
            model=f"emulator:{model}",
            runs_dir=tmp_path,
            use_result_cache=False,
            emulator=EmulatorSettings(url=emulator.base_url),
        ),
        sink,
    )
    by = {r.persona: r for r in out.results}
    assert by["builder"].status == "ok" and by["builder"].attempts == 2
    assert by["skeptic"].status == "ok" and by["skeptic"].attempts == 2
    assert by["futurist"].status == "failed"
    assert by["futurist"].error_class == "truncated_max_tokens"
    assert by["futurist"].attempts == 2  # one retry with more room, then the error
    assert by["business"].status == "failed" and by["business"].error_class == "invalid_json"
    assert by["business"].ship is None and by["futurist"].quote is None
    assert len(finished) == 4
    # Partial verdicts streamed before the final ones.
    assert any(isinstance(d.snapshot.get("ship"), bool) for d in deltas)
    attempts = RunStore.open(tmp_path, out.run_id).attempts()
    assert len(attempts) == sum(r.attempts for r in out.results)
    overloaded = "server_error" if model.startswith("gpt") else "overloaded"  # OpenAI has no 529
    assert {a.error_class for a in attempts if a.outcome == "error"} >= {
        overloaded,
        "connection",
        "truncated_max_tokens",
        "invalid_json",
    }


async def test_cache_aware_schedule_releases_followers_after_the_leader_streams(
    tmp_path: Path, emulator_factory: Any
) -> None:
    """With real latency, concurrent same-prefix requests would all write; panel's waves make
    every request after the first read the house block."""
    handle = emulator_factory(latency_scale=0.05)
    tools = load_tools(sorted(EXAMPLES.glob("*.yaml"))[:3]).tools
    out = await run_panel(
        tools,
        RunOptions(
            model="emulator:claude-sonnet-5",
            runs_dir=tmp_path,
            use_result_cache=False,
            concurrency=12,
            emulator=EmulatorSettings(url=handle.base_url),
        ),
    )
    stats = out.manifest.cache_stats
    assert stats is not None and stats.requests == 12
    assert stats.requests_reading_cache == 11
    house = out.manifest.cache_plan.segments[0] if out.manifest.cache_plan else None
    assert house is not None and house.name == "tools+house"
    # tools+house written exactly once; each persona block written once.
    personas_tokens = sum(s.tokens for s in out.manifest.cache_plan.segments[1:])  # type: ignore[union-attr]
    assert stats.write_tokens == house.tokens + personas_tokens
    assert out.manifest.cost.usd == pytest.approx(out.manifest.cost.floor_usd, rel=0.01)
