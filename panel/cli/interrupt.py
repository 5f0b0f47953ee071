"""Runs the CLI can stop: SIGINT and SIGTERM end a run as "stopped" with its resume command.

`run_stoppable` runs a coroutine with SIGTERM wired to cancelling it (asyncio.run already
turns Ctrl-C into a cancellation), so the engine sees a CancelledError, marks the run
"stopped" and releases its lock; the CLI then prints the run id and the exact command that
finishes it. `announce` prints the run id the moment the run starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from panel.run.events import Event, EventSink, RunStarted

T = TypeVar("T")


@dataclass
class RunHandle:
    """What the CLI knows of the run it started: its id once RunStarted arrives."""

    resume_command: Callable[[str], str]
    run_id: str | None = None


def resume_hint(
    command: list[str], runs_dir: Path | None, default: Path | None = Path("runs")
) -> Callable[[str], str]:
    """`panel run --resume ID [--runs-dir D]`, quoted for a shell: `--runs-dir` only when it is
    not what the command would take by itself (`default`; None: whatever was given)."""

    def hint(run_id: str) -> str:
        parts = ["panel", *command, "--resume", run_id]
        if runs_dir is not None and runs_dir != default:
            parts += ["--runs-dir", str(runs_dir)]
        return shlex.join(parts)

    return hint


def announce(err: Console, handle: RunHandle, inner: EventSink | None) -> EventSink:
    """An event sink that prints `run ID started` first, then passes every event on."""

    def sink(event: Event) -> None:
        if isinstance(event, RunStarted) and handle.run_id is None:
            handle.run_id = event.run_id
            err.print(
                f"run {event.run_id} started: {_to_ask(event)}, "
                f"{event.reused} reused · stop with Ctrl-C, finish with: "
                f"{handle.resume_command(event.run_id)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if inner is not None:
            inner(event)

    return sink


def _to_ask(event: RunStarted) -> str:
    """ "8 pair(s) to ask", or with samples or a jury "40 draw(s) of 8 pair(s) to ask"."""
    pairs = len({d.pair for d in event.pairs})
    if len(event.pairs) == pairs:
        return f"{pairs} pair(s) to ask"
    return f"{len(event.pairs)} draw(s) of {pairs} pair(s) to ask"


def run_stoppable(err: Console, handle: RunHandle, main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) where Ctrl-C and SIGTERM stop the run resumably (exit 130 / 143)."""
    got: list[int] = []

    async def wrapped() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None

        def on_term() -> None:
            got.append(signal.SIGTERM)
            task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, on_term)
        return await main

    try:
        return asyncio.run(wrapped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = 143 if got else 130
        if handle.run_id is None:
            err.print("stopped before the run started; nothing was recorded", highlight=False)
        else:
            err.print(
                f"run {handle.run_id} stopped (run.json says stopped); "
                f"finish it with: {handle.resume_command(handle.run_id)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        raise typer.Exit(code) from None


__all__ = ["RunHandle", "announce", "resume_hint", "run_stoppable"]
