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
@pytest.mark.slow
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


def test_json_run_stopped_on_auth_still_prints_its_record(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    tool = write_tool(tmp_path / "tools", "Authprobe")
    emulator.configure(rules=[{"match": "Authprobe", "fault": "auth"}])
    proc = panel(
        "run", str(tool), "--model", "openai:gpt-5.6-luna", "--no-cache", "--json",
        "--concurrency", "1", cwd=tmp_path,
        env={"OPENAI_API_KEY": "sk-bad", "OPENAI_BASE_URL": emulator.openai_base_url},
    )  # fmt: skip
    assert proc.returncode == 2
    out = _run_json(proc)
    assert out["status"] == "failed" and out["pending"]
    # The pair that met the 401 is named with its class; on disk it stays pending (resumable).
    assert [(r["status"], r["error_class"]) for r in out["results"]] == [("failed", "auth")]
    run_dir = tmp_path / out["run_dir"]
    assert not (run_dir / "results.jsonl").read_text().strip()
    errors = [line for line in proc.stderr.strip().splitlines() if "started:" not in line]
    assert len(errors) == 1 and "OPENAI_API_KEY" in errors[0]  # one error line (and the start line)
    assert "Traceback" not in proc.stderr


def test_unknown_fault_is_one_line_and_exit_2(tmp_path: Path) -> None:
    tool = write_tool(tmp_path / "tools", "Faultname")
    proc = panel("run", str(tool), "--model", "emulator:claude-sonnet-5", "--faults", "bogus=1",
                 cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("panel: error")]
    assert len(lines) == 1 and "unknown emulator fault 'bogus'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_emulator_on_a_busy_port_is_one_line(tmp_path: Path, emulator: EmulatorHandle) -> None:
    port = emulator.base_url.rsplit(":", 1)[1].strip("/")
    proc = panel("emulator", "--port", port, cwd=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"panel: error: port {port} on 127.0.0.1 is already in use: stop what holds it, "
        "or pick another with --port (0 picks a free one)"
    ]


@pytest.mark.parametrize(
    ("model", "key", "url_var", "suffix"),
    [
        ("anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
        ("openai:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("openai:gpt-6-astra", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("compatible:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("openrouter:gpt-5.6-luna", "OPENROUTER_API_KEY", "--base-url", "/v1"),
        ("instructor:anthropic/claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
        ("instructor:openai/gpt-5.6-luna", "OPENAI_API_KEY", "--base-url", "/v1"),
    ],
)
@pytest.mark.slow
def test_verdicts_from_the_emulator_are_synthetic_whichever_provider_reached_it(
    tmp_path: Path, emulator: EmulatorHandle, model: str, key: str, url_var: str, suffix: str
) -> None:
    tool = write_tool(tmp_path / "tools", "Syntheticprobe")
    url = emulator.base_url.rstrip("/") + suffix
    env = {key: "sk-anything"} if url_var == "--base-url" else {key: "sk-anything", url_var: url}
    where = ["--base-url", url] if url_var == "--base-url" else []
    proc = panel(
        "run", str(tool), "--model", model, *where, "--no-cache", "--json", "--personas", "skeptic",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = _run_json(proc)
    assert out["synthetic"] is True
    assert [r["synthetic"] for r in out["results"]] == [True]
    run_dir = tmp_path / out["run_dir"]
    assert json.loads((run_dir / "run.json").read_text())["synthetic"] is True
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(ln)["synthetic"] for ln in lines] == [True]


def test_batch_takes_base_url_too(tmp_path: Path, emulator: EmulatorHandle) -> None:
    write_tool(tmp_path / "tools", "Batchurlprobe")
    (tmp_path / "batch.yaml").write_text(
        "tools:\n  - tools/*.yaml\npersonas: [skeptic]\nmodel: emulator:claude-sonnet-5\n",
        encoding="utf-8",
    )
    proc = panel(
        "batch", "batch.yaml", "--model", "compatible:gpt-5.6-luna",
        "--base-url", emulator.openai_base_url, "--json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _run_json(proc)["ok"] == 1
    assert any("Batchurlprobe" in str(r["body"]) for r in emulator.requests())
