"""Crash/resume: `kill -9` a `panel run` process at 20 seeded moments, resume it, and compare
with an uninterrupted run: the same set of results, no duplicates, at most C re-paid calls.

Importing the SDKs costs seconds of CPU per process, so the processes are forked from the
suite's pre-imported server (tests/panelproc.py). Each fork runs `python -m panel run`, and is
killed with SIGKILL from the test: no handler, no flush, no cleanup — whatever phase it was in
(before a request, mid-stream, between the response and the record, inside a write). The
emulator runs in the test process, reached through PANEL_EMULATOR_URL, with latency on so kills
land inside requests too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from panelproc import launcher

from panel.emulator.runner import run_emulator
from panel.emulator.state import EmulatorConfig

from .conftest import write_tool

KILL_POINTS = 20
CONCURRENCY = 2
PERSONAS = "skeptic,builder"
TOOLS = ("Crashtool Alpha", "Crashtool Beta", "Crashtool Gamma")

ENV = {"ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}


def _panel(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return launcher().run(
        [sys.executable, "-m", "panel", *args],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _run_args(tools: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "run", str(tools), "--model", "emulator:claude-sonnet-5", "-p", PERSONAS,
        "--runs-dir", str(runs),
        "--no-cache", "-c", str(CONCURRENCY), "--latency-scale", "0", "--json", *extra,
    ]  # fmt: skip


def _results(run_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines() if x.strip()
    ]


def _signature(lines: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(r["tool_slug"], r["persona"], r["status"], r["ship"], r["headline"]) for r in lines}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_at_seeded_points_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    for name in TOOLS:
        write_tool(tools, name)
    pairs = len(TOOLS) * len(PERSONAS.split(","))
    # Latency on (scaled down): a run takes about 0.6 s and each request a hundred or more
    # milliseconds, so kills spread over the run land mid-stream too.
    config = EmulatorConfig(latency_scale=0.015, stall_seconds=1.0)
    with run_emulator(config) as emu:
        env = {"PANEL_EMULATOR_URL": emu.base_url, **ENV}
        baseline_runs = tmp_path / "baseline"
        done = _panel(_run_args(tools, baseline_runs), tmp_path, env)
        assert done.returncode == 0, done.stderr
        (baseline_dir,) = [
            p for p in baseline_runs.iterdir() if p.is_dir() and not p.name.startswith(".")
        ]
        baseline = _signature(_results(baseline_dir))
        assert len(baseline) == pairs
        per_run = emu.stats()["requests"]
        assert per_run == pairs
        rng = random.Random(20261122)
        phases: Counter[str] = Counter()
        for point in range(KILL_POINTS):
            emu.reset()
            emu.configure(latency_scale=config.latency_scale)
            runs = tmp_path / f"kill-{point:02d}"
            delay = rng.uniform(0.025, 0.65)
            child = launcher().Popen(
                [sys.executable, "-m", "panel", *_run_args(tools, runs)],
                cwd=tmp_path, env={**os.environ, **env},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(delay)
            child.kill()
            child.wait()
            time.sleep(0.05)
            first = emu.stats()["requests"]
            in_flight = emu.stats()["in_flight"]
            run_dirs = (
                [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
                if runs.exists()
                else []
            )
            recorded = (
                len(_results(run_dirs[0]))
                if run_dirs and (run_dirs[0] / "results.jsonl").exists()
                else 0
            )
            phase = _phase(first, in_flight, recorded, pairs, bool(run_dirs))
            emu.configure(latency_scale=0.0)  # the resume is checked by its results, not timed
            if run_dirs:
                done = _panel(_run_args(tools, runs, "--resume", run_dirs[0].name), tmp_path, env)
            else:  # killed before the run folder existed: nothing to resume, start it again
                done = _panel(_run_args(tools, runs), tmp_path, env)
            assert done.returncode == 0, (
                f"kill point {point} (after {delay:.3f}s, {phase}): resume failed: {done.stderr}"
            )
            # The emulator logs a stream the killed client walked away from: proof that this
            # kill landed mid-stream (the in-flight count is already 0 when we look).
            if any(r.get("note") == "client disconnected" for r in emu.requests()):
                phase = "mid-stream"
            phases[phase] += 1
            (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
            lines = _results(run_dir)
            keys = [(r["tool_slug"], r["persona"]) for r in lines]
            assert len(keys) == len(set(keys)), f"kill point {point}: duplicate results"
            assert _signature(lines) == baseline, (
                f"kill point {point}: differs from the uninterrupted run"
            )
            repaid = emu.stats()["requests"] - pairs
            assert repaid <= CONCURRENCY, (
                f"kill point {point}: {repaid} calls re-paid (cap {CONCURRENCY})"
            )
            manifest = json.loads((run_dir / "run.json").read_text())
            assert manifest["status"] == "complete"
    # The seeded delays spread the kills over the run's phases (not a timing assertion: a
    # count of where they happened to land, kept in the test output for the record).
    print(f"kill phases: {dict(phases)}")
    assert sum(phases.values()) == KILL_POINTS
    assert phases["mid-stream"] > 0, f"no kill landed mid-stream: {dict(phases)}"


def _phase(requests: int, in_flight: int, recorded: int, pairs: int, started: bool) -> str:
    if not started:
        return "before the run folder"
    if requests == 0:
        return "before any request"
    if in_flight:
        return "mid-request"
    if recorded >= pairs:
        return "after the last record"
    return "between requests and records"
