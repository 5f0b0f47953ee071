"""Helpers for the hardening suite: tool files, a one-call panel run, and the run's ledger."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.emulator.runner import EmulatorHandle
from panel.inputs.tools import LoadedTool, load_tools
from panel.providers.select import EmulatorSettings
from panel.run.engine import RunOptions, RunOutcome, run_panel
from panel.run.retry import RetryLimits

# Retries back off in milliseconds here: the suite asserts attempt counts, not waits.
FAST_RETRY = RetryLimits(base_delay=0.01, max_delay=0.02)
CANARY_KEY = "sk-ant-canary-7f3a9c1e5b2d4f60-DO-NOT-LEAK"
ANTHROPIC_MODEL = "emulator:claude-sonnet-5"
OPENAI_MODEL = "emulator:gpt-5.6-luna"
RESPONSES_MODEL = "emulator:gpt-6-astra"  # the OpenAI Responses wire
PATHS = [
    pytest.param(ANTHROPIC_MODEL, id="anthropic"),
    pytest.param(OPENAI_MODEL, id="openai"),
    pytest.param(RESPONSES_MODEL, id="responses"),
]


def tool_yaml(name: str, description: str | None = None, **extra: Any) -> str:
    doc: dict[str, Any] = {
        "name": name,
        "tagline": f"{name} does one thing well",
        "pricing": "Free",
        "description": description
        or f"{name} is a command-line tool that formats configuration files and checks them in CI.",
        **extra,
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def write_tool(folder: Path, name: str, description: str | None = None, **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.lower().replace(' ', '-')}.yaml"
    path.write_text(tool_yaml(name, description, **extra), encoding="utf-8")
    return path


def make_tools(folder: Path, *names: str) -> list[LoadedTool]:
    paths = [write_tool(folder, n) for n in names]
    loaded = load_tools(paths)
    assert not loaded.errors, loaded.errors
    return loaded.tools


def options(
    tmp: Path,
    emulator: EmulatorHandle | None,
    *,
    model: str = ANTHROPIC_MODEL,
    personas: Sequence[str] = ("skeptic",),
    **changes: Any,
) -> RunOptions:
    base: dict[str, Any] = {
        "model": model,
        "personas": list(personas),
        "runs_dir": tmp / "runs",
        "cwd": tmp,
        "concurrency": 4,
        "use_result_cache": False,
        "retry": FAST_RETRY,
        "emulator": EmulatorSettings(url=emulator.base_url if emulator else None),
    }
    base.update(changes)
    return RunOptions(**base)


async def run(
    tools: Sequence[LoadedTool],
    opts: RunOptions,
    env: dict[str, str] | None = None,
) -> RunOutcome:
    return await run_panel(tools, opts, env=env if env is not None else {})


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def results(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rule(match: str, fault: str, attempts: Sequence[int] | None = None) -> dict[str, Any]:
    return {"match": match, "fault": fault, "attempts": list(attempts) if attempts else None}
