"""Claims on pair keys: two runs (or batches) on one workspace never both pay for one pair.

Before a pair is requested, its run takes an exclusive `flock` on
`<cache>/claims/<key>.lock`. A second run reaching the same pair key waits for the claim,
then looks in the result cache again: the first run's result is there (ok and refused results
are cached), so it is reused instead of bought twice. A failed pair is not cached, and the
waiter then requests it itself.

The claim file is removed by its holder while still locked, and a waiter checks after locking
that the file it holds is still the one at the path (else it locked a removed file and tries
again): the standard way to delete lock files without a race. A crashed holder's lock is
released by the kernel with its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

POLL_SECONDS = 0.05


def _name(key: str) -> str:
    return key.removeprefix("sha256:")[:64] + ".lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock on the file now at `path`, or None when another holder has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # the holder removed it between our open and our lock: not a claim
        os.close(fd)
        return None
    return fd


@contextlib.asynccontextmanager
async def claim_pair(cache_dir: Path, key: str) -> AsyncIterator[bool]:
    """Hold the claim on `key` for the block; yields True if another run held it first.

    A folder that cannot hold claims (read-only, full) never blocks a run: the block runs
    unclaimed, as it did before claims existed.
    """
    folder = Path(cache_dir) / "claims"
    path = folder / _name(key)
    waited = False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while (fd := _try_lock(path)) is None:
            waited = True
            await asyncio.sleep(POLL_SECONDS)
    except OSError:
        yield waited
        return
    try:
        yield waited
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still locked: a waiter that opened it sees a stale inode
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on the lock file `path` for the block (a process waits for
    another's); yields True if it had to wait. The file is removed on the way out, as claims
    are. Errors opening it are the caller's (OSError)."""
    waited = False
    while (fd := _try_lock(path)) is None:
        waited = True
        time.sleep(POLL_SECONDS)
    try:
        yield waited
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


__all__ = ["claim_pair", "exclusive"]
