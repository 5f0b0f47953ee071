"""kill -9 in the middle of a batch, then --resume: the same results as an uninterrupted run,
each pair once, and no more re-paid calls than were in flight at the kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from batch_helpers import settings_for
from panelproc import launcher

from panel.batch.regenerate import LoadedManifest, run_batch
from panel.emulator.runner import EmulatorHandle
from panel.store.runs import RunStore

CONCURRENCY = 4


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_and_kill(loaded: LoadedManifest, emulator: EmulatorHandle, tmp_path: Path) -> Path:
    """Start `panel batch` in a child process; kill -9 it once 12 results are recorded."""
    env = {**os.environ, "PANEL_EMULATOR_URL": emulator.base_url}
    runs = loaded.base / "runs"
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "batch",
        str(loaded.path),
        "--concurrency",
        str(CONCURRENCY),
        "--json",
    ]
    proc = launcher().Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        results_file: Path | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = [p for p in runs.glob("*/results.jsonl")] if runs.is_dir() else []
            if found and _lines(found[0]) >= 12:
                results_file = found[0]
                break
            time.sleep(0.05)
        assert results_file is not None and proc.poll() is None, "the batch should still be running"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert results_file is not None
    return results_file


@pytest.mark.timeout(300)
@pytest.mark.slow
async def test_kill_9_mid_batch_then_resume(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle, tmp_path: Path
) -> None:
    loaded = workspace(12)  # 48 pairs
    emulator.configure(latency_scale=0.05)  # slow enough that requests are mid-flight
    results_file = _run_and_kill(loaded, emulator, tmp_path)
    recorded_at_kill = _lines(results_file)
    assert recorded_at_kill < 48
    run_id = results_file.parent.name
    runs = results_file.parent.parent

    emulator.configure(latency_scale=0.0)  # the resume needs no latency: only the kill did
    resumed = await run_batch(
        loaded, settings_for(loaded, emulator, resume=run_id, concurrency=CONCURRENCY)
    )
    results = RunStore.open(runs, run_id).results()  # raises on a duplicate pair
    assert len(results) == 48 and not resumed.pending and resumed.status == "complete"
    billed = sum(1 for e in emulator.requests() if e["status"] == 200)
    assert billed - 48 <= CONCURRENCY  # re-paid: at most what was in flight at the kill

    reference = await run_batch(
        loaded, settings_for(loaded, emulator, runs_dir=tmp_path / "ref", use_result_cache=False)
    )
    ref = RunStore.open(tmp_path / "ref", reference.run_id).results()
    assert {k: (r.status, r.headline) for k, r in results.items()} == {
        k: (r.status, r.headline) for k, r in ref.items()
    }


async def test_a_second_process_cannot_write_the_same_run(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(2)
    first = await run_batch(loaded, settings_for(loaded, emulator))
    holder = RunStore.open(loaded.base / "runs", first.run_id, write=True)
    try:
        from panel.errors import RunStoreError

        with pytest.raises(RunStoreError, match="in use by pid"):
            await run_batch(loaded, settings_for(loaded, emulator, resume=first.run_id))
    finally:
        holder.release()
