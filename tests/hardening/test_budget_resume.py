"""Issue 12, "Also": `--budget` is the run's, across resumes.

One run stops at its budget with pairs pending; resuming it three times with the same budget
sends no further request, because what the run already spent counts (before, each resume
spent up to the budget again: three resumes reached 9.7x).
"""

from __future__ import annotations

from pathlib import Path

from panel.emulator.runner import EmulatorHandle

from .conftest import make_tools, options, run


async def test_resumes_do_not_reset_the_budget(tmp_path: Path, emulator: EmulatorHandle) -> None:
    tools = make_tools(tmp_path / "tools", *(f"Budget Tool {i}" for i in range(8)))
    probe = await run(tools[:1], options(tmp_path / "probe", emulator))
    one_pair = probe.manifest.cost.usd
    assert one_pair > 0
    budget = one_pair * 2.5  # room for about two pairs of eight
    emulator.reset()
    first = await run(tools, options(tmp_path, emulator, concurrency=1, budget_usd=budget))
    assert first.pending, "the budget should have stopped the run"
    assert len(set(first.pending)) == len(first.pending)
    sent = len(emulator.requests())
    for concurrency in (1, 4, 8):  # every worker sees the stop: the rest is pending once
        again = await run(
            tools,
            options(
                tmp_path, emulator, concurrency=concurrency, budget_usd=budget, resume=first.run_id
            ),
        )
        assert sorted(again.pending) == sorted(first.pending), concurrency
    assert len(emulator.requests()) == sent  # no resume paid for anything
    assert again.manifest.cost.usd <= budget + one_pair  # one in-flight pair may overshoot


async def test_a_bigger_budget_on_resume_finishes_the_run(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    tools = make_tools(tmp_path / "tools", *(f"Budget Tool {i}" for i in range(4)))
    probe = await run(tools[:1], options(tmp_path / "probe", emulator))
    budget = probe.manifest.cost.usd * 1.5
    first = await run(tools, options(tmp_path, emulator, concurrency=1, budget_usd=budget))
    assert first.pending
    done = await run(
        tools,
        options(tmp_path, emulator, concurrency=1, budget_usd=budget * 10, resume=first.run_id),
    )
    assert not done.pending and done.manifest.status == "complete"
