"""Issue 13 through the CLI, as a user meets it: --base-url on every provider that takes one,
synthetic labels whichever provider reached the emulator, and one-line failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panel.emulator.runner import EmulatorHandle

from .cli_proc import panel
from .conftest import write_tool


def _run_json(proc: Any) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    value = json.loads(proc.stdout)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("model", "env"),
    [
        ("compatible:gpt-5.6-luna", {}),
        ("openrouter:gpt-5.6-luna", {"OPENROUTER_API_KEY": "sk-or-test"}),
    ],
)
def test_base_url_points_run_at_a_local_server(
    tmp_path: Path, emulator: EmulatorHandle, model: str, env: dict[str, str]
) -> None:
    tool = write_tool(tmp_path / "tools", "Baseurlprobe")
    proc = panel(
        "run", str(tool), "--model", model, "--base-url", emulator.openai_base_url,
        "--no-cache", "--json", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = _run_json(proc)
    assert [r["status"] for r in out["results"]] == ["ok"] * 4
    seen = [r for r in emulator.requests() if "Baseurlprobe" in str(r["body"])]
    assert len(seen) == 4 and all(r["path"] == "/v1/chat/completions" for r in seen)


@pytest.mark.parametrize("command", ["run", "compare", "batch"])
def test_base_url_is_an_option_of_every_command_that_calls_a_model(
    tmp_path: Path, command: str
) -> None:
    proc = panel(command, "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--base-url" in proc.stdout
