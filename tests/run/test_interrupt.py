"""SIGINT and SIGTERM during `panel run` and `panel batch`: stopped, resumable, exactly once.

The run is a real `python -m panel` process on the built-in emulator with realistic latency and
one request at a time; the signal goes in once the first verdict is on disk (polled, no sleeps
that a slow machine could beat).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from panelproc import launcher

from panel.inputs.workspace import builtin_dir

TOOL = """name: {name}
category: Developer Tools
tagline: {name} in one line
pricing: Free
description: |
  {name} is a developer tool that indexes a repository and answers questions about it.
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    for var in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "PANEL_EMULATOR_URL"):
        env.pop(var, None)
    return {**env, "PYTHONDONTWRITEBYTECODE": "1"}


def _workspace(root: Path, n: int) -> None:
    (root / "tools").mkdir(parents=True)
    for i in range(n):
        (root / "tools" / f"t{i}.yaml").write_text(TOOL.format(name=f"Tool {i}"))


def _results(run_dir: Path) -> list[dict[str, object]]:
    path = run_dir / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _interrupt(cmd: list[str], cwd: Path, sig: int) -> tuple[int, str, Path]:
    proc = launcher().Popen(
        [sys.executable, "-m", "panel", *cmd],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    run_dir: Path | None = None
    while time.monotonic() < deadline and proc.poll() is None:
        runs = [p for p in (cwd / "runs").glob("*") if p.is_dir() and not p.name.startswith(".")]
        if runs and _results(runs[0]):
            run_dir = runs[0]
            break
        time.sleep(0.05)
    assert run_dir is not None and proc.poll() is None, "the run ended before it was signalled"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, run_dir


def _resume(printed: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(printed)
    assert argv[0] == "panel"
    return launcher().run(
        [sys.executable, "-m", "panel", *argv[1:], "--latency-scale", "0"],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _resume_command(err: str, run_id: str) -> str:
    line = next(x for x in err.splitlines() if f"run {run_id} stopped" in x)
    return line.split("finish it with: ", 1)[1].strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.slow
def test_signal_during_panel_run_leaves_it_stopped_and_resumable(tmp_path: Path, sig: int) -> None:
    _workspace(tmp_path, 4)
    args = ["run", "tools", "-c", "1", "--latency-scale", "0.3", "--seed", "5", "--no-cache"]
    code, err, run_dir = _interrupt(args, tmp_path, sig)
    assert code == (130 if sig == signal.SIGINT else 143), err
    run_id = run_dir.name
    assert f"run {run_id} started" in err and "Traceback" not in err, err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "stopped"
    printed = _resume_command(err, run_id)
    assert printed == f"panel run --resume {run_id}"
    before = len(_results(run_dir))
    assert 0 < before < 16
    done = _resume(printed, tmp_path)
    assert done.returncode == 0, done.stderr
    pairs = [(r["tool_slug"], r["persona"]) for r in _results(run_dir)]
    assert len(pairs) == 16 and len(set(pairs)) == 16  # every pair exactly once
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["settings"]["emulator_seed"] == 5


@pytest.mark.slow
def test_sigint_during_panel_batch_leaves_it_stopped_and_resumable(tmp_path: Path) -> None:
    _workspace(tmp_path, 4)
    src = builtin_dir("personas")
    assert src is not None
    shutil.copytree(src, tmp_path / "personas")
    (tmp_path / "batch.yaml").write_text(
        "tools: [tools/*.yaml]\ncomparisons:\n  - [Tool 0, Tool 1]\n"
        "model: emulator:claude-sonnet-5\nconcurrency: 1\nruns_dir: runs\n"
    )
    args = ["batch", "batch.yaml", "--latency-scale", "0.3", "--no-cache"]
    code, err, run_dir = _interrupt(args, tmp_path, signal.SIGINT)
    assert code == 130, err
    run_id = run_dir.name
    assert f"run {run_id} started" in err and "Traceback" not in err, err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    printed = _resume_command(err, run_id)
    # No --runs-dir: none was given, and the manifest says where its runs go.
    assert printed == f"panel batch batch.yaml --resume {run_id}"
    done = _resume(printed, tmp_path)
    assert done.returncode == 0, done.stderr
    pairs = [(r["tool_slug"], r["persona"]) for r in _results(run_dir)]
    assert len(pairs) == 16 and len(set(pairs)) == 16
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    again = launcher().run(
        [sys.executable, "-m", "panel", "batch", "batch.yaml", "--resume", run_id, "--seed", "9"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 2 and "emulator_seed=9, but the run used 0" in again.stderr
