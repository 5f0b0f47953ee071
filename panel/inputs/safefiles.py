"""Opening input files an editor does not control: regular files only, never blocking.

Tool files, personas, templates and manifests come from pull requests, and git carries
symlinks. A FIFO (or a symlink to `/dev/stdin`) would block `open()` forever; a symlink to
`/proc/self/environ` would send the environment upstream in a prompt. So every input file is
read through `read_input_file`:

- a symlink is followed only when its target resolves inside one of the allowed roots (the
  workspace, or the folder the file was found in), and the target must be a regular file;
- the file is opened with `O_NONBLOCK | O_NOFOLLOW`, then checked with `fstat` on the open
  descriptor (no check-then-open race): FIFOs, devices, sockets and folders are refused;
- at most `max_bytes + 1` bytes are read, so an oversized file costs nothing to refuse.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class UnsafeFileError(ValueError):
    """An input path panel will not read; the message says why, in a few words."""


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root.resolve()) for root in roots)


def read_input_file(path: Path, max_bytes: int, roots: Sequence[Path] = ()) -> bytes:
    """The file's first `max_bytes + 1` bytes; UnsafeFileError (or OSError) if it is unsafe.

    `roots`: where a symlink may lead; the file's own folder is always allowed.
    """
    path = Path(path)
    target = path
    if path.is_symlink():
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise UnsafeFileError("a symlink whose target does not exist") from None
        allowed = [path.absolute().parent, *roots]
        if not _inside(real, allowed):
            raise UnsafeFileError(f"a symlink leading outside the workspace (to {real})")
        target = real
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{_kind(info.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_regular_file(path: Path, roots: Sequence[Path] = ()) -> bool:
    """True when `read_input_file` would open `path` (for loaders that list folders)."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            real = path.resolve(strict=True)
            if not _inside(real, [path.absolute().parent, *roots]):
                return False
            info = real.stat()
    except (OSError, RuntimeError):
        return False
    return stat.S_ISREG(info.st_mode)


__all__ = ["UnsafeFileError", "is_regular_file", "read_input_file"]
