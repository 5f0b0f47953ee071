"""Issue 12, "Also": two runs on one workspace never both pay for the same pairs.

Two runs started together on the same tools with the result cache on (what two concurrent
`panel batch` invocations do): every pair is requested once in all, the other run reuses it,
and both runs end complete with every pair recorded. A second pair of processes shows the
same across processes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from panelproc import launcher

from panel.emulator.runner import EmulatorHandle
from panel.store.claims import claim_pair

from .conftest import make_tools, options, run, write_tool


async def test_two_runs_at_once_pay_once(tmp_path: Path, emulator: EmulatorHandle) -> None:
    tools = make_tools(tmp_path / "tools", *(f"Claim Tool {i}" for i in range(6)))
    opts = options(tmp_path, emulator, use_result_cache=True, concurrency=4)
    a, b = await asyncio.gather(run(tools, opts), run(tools, opts))
    assert a.manifest.status == b.manifest.status == "complete"
    assert len(a.results) == len(b.results) == 6
    assert len(emulator.requests()) == 6  # not 12
    assert sum(r.reused for r in [*a.results, *b.results]) == 6


async def test_a_claim_waits_for_its_holder_and_leaves_no_file(tmp_path: Path) -> None:
    order: list[str] = []

    async def holder() -> None:
        async with claim_pair(tmp_path, "sha256:abc") as waited:
            order.append(f"holder waited={waited}")
            await asyncio.sleep(0.2)
            order.append("holder done")

    async def waiter() -> None:
        await asyncio.sleep(0.05)
        async with claim_pair(tmp_path, "sha256:abc") as waited:
            order.append(f"waiter waited={waited}")

    await asyncio.gather(holder(), waiter())
    assert order == ["holder waited=False", "holder done", "waiter waited=True"]
    assert list((tmp_path / "claims").iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux", reason="flock semantics as on Linux")
@pytest.mark.slow
def test_two_processes_at_once_pay_once(tmp_path: Path, emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = emulator_factory(latency_scale=0.3)
    for i in range(4):
        write_tool(tmp_path / "tools", f"Proc Tool {i}")
    env = {"PANEL_EMULATOR_URL": emu.base_url}
    args = ("run", "tools", "--model", "emulator:claude-sonnet-5", "-p", "skeptic", "--json")
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    procs = [
        launcher().Popen(
            [sys.executable, "-m", "panel", *args],
            cwd=tmp_path,
            env={**base, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert len(emu.requests()) == 4  # not 8
