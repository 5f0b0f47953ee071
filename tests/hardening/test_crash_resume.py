"""Crash/resume: `kill -9` a `panel run` process at 20 seeded moments, resume it, and compare
with an uninterrupted run: the same set of results, no duplicates, at most C re-paid calls.

Importing the SDKs costs seconds of CPU per process, so the processes are forked from one
pre-imported server (a plain subprocess that imports panel.cli once). Each fork runs the real
CLI entry point, `panel.cli.main()`, and is killed with SIGKILL from the test: no handler,
no flush, no cleanup — whatever phase it was in (before a request, mid-stream, between the
response and the record, inside a write). The emulator runs in the test process, reached
through PANEL_EMULATOR_URL, with latency on so kills land inside requests too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.emulator.runner import run_emulator
from panel.emulator.state import EmulatorConfig

from .conftest import write_tool

KILL_POINTS = 20
CONCURRENCY = 2
PERSONAS = "skeptic,builder"
TOOLS = ("Crashtool Alpha", "Crashtool Beta", "Crashtool Gamma")

FORK_SERVER = r"""
import json, os, signal, sys
import panel.cli
# panel imports the SDKs lazily; import them (and the run command) once, before forking.
import anthropic, openai, panel.cli.run, panel.run.engine, panel.providers.anthropic
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(job["cwd"])
        os.environ.update(job["env"])
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1); os.dup2(fd, 2)
        sys.argv = ["panel", *job["args"]]
        code = 0
        try:
            panel.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        os._exit(code)
    if job["wait"]:
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}), flush=True)
    else:
        print(json.dumps({"pid": pid}), flush=True)
        # reap later: a killed child is collected before the next job
    while True:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if done == 0:
            break
"""


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def start(
        self, args: list[str], cwd: Path, env: dict[str, str], *, wait: bool
    ) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(
            json.dumps({"args": args, "cwd": str(cwd), "env": env, "wait": wait}) + "\n"
        )
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def fork_server() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


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
def test_kill_9_at_seeded_points_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    tools = tmp_path / "tools"
    for name in TOOLS:
        write_tool(tools, name)
    pairs = len(TOOLS) * len(PERSONAS.split(","))
    # Latency on (scaled down): a run takes about 1.2 s and each request a few hundred
    # milliseconds, so kills spread over the run land mid-stream too.
    config = EmulatorConfig(latency_scale=0.03, stall_seconds=1.0)
    with run_emulator(config) as emu:
        env = {"PANEL_EMULATOR_URL": emu.base_url, "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}
        baseline_runs = tmp_path / "baseline"
        reply = fork_server.start(_run_args(tools, baseline_runs), tmp_path, env, wait=True)
        assert reply["exit"] == 0
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
            runs = tmp_path / f"kill-{point:02d}"
            delay = rng.uniform(0.05, 1.3)
            child = fork_server.start(_run_args(tools, runs), tmp_path, env, wait=False)
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child["pid"], signal.SIGKILL)
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
            if run_dirs:
                reply = fork_server.start(
                    _run_args(tools, runs, "--resume", run_dirs[0].name), tmp_path, env, wait=True
                )
            else:  # killed before the run folder existed: nothing to resume, start it again
                reply = fork_server.start(_run_args(tools, runs), tmp_path, env, wait=True)
            assert reply["exit"] == 0, f"kill point {point} (after {delay:.3f}s): resume failed"
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
