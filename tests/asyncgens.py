"""Which async generators a block of async code started, and which it left suspended.

An async generator left suspended is finalised whenever the garbage collector reaches it
(in another thread, or once its event loop has closed: "Exception ignored in:
<async_generator ...>"). `started_generators()` records every one first iterated inside the
block, in this thread, with the garbage collector off so nothing is cleaned up by chance,
and which of them were dropped unclosed (handed to the loop's finalizer);
`still_suspended()` lets the event loop run what was dropped (finalised at once into tasks
on the loop, one layer of a chain per step) and names those still suspended.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Started:
    seen: weakref.WeakSet[AsyncGenerator[Any, Any]] = field(default_factory=weakref.WeakSet)
    dropped: list[str] = field(default_factory=list)  # qualnames the finalizer was handed


@contextmanager
def started_generators() -> Iterator[Started]:
    """Every async generator first iterated inside the block, in this thread (weakly held)."""
    started = Started()
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def record(agen: AsyncGenerator[Any, Any]) -> None:
        started.seen.add(agen)
        if firstiter is not None:
            firstiter(agen)

    def dropped(agen: AsyncGenerator[Any, Any]) -> None:
        started.dropped.append(agen.__qualname__)
        if finalizer is not None:
            finalizer(agen)

    sys.set_asyncgen_hooks(firstiter=record, finalizer=dropped)
    gc.disable()
    try:
        yield started
    finally:
        gc.enable()
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)


async def still_suspended(started: Started, *, steps: int = 100) -> list[str]:
    """The recorded generators still suspended once the loop has run `steps` times at most
    (a bound on steps, not a clock)."""
    for _ in range(steps):
        suspended = sorted(a.__qualname__ for a in started.seen if a.ag_frame is not None)
        if not suspended:
            break
        await asyncio.sleep(0)
    return suspended
