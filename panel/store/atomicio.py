"""Crash-safe file writes: whole-file replacement and single-write line appends.

A reader never sees a half-written JSON file: `write_json_atomic` writes a temp file in the
same folder, fsyncs it, renames it over the target and fsyncs the folder, so after a crash the
target holds either the old or the new bytes (a stray `.NAME.tmp-*` file may be left; readers
ignore it). `append_line` writes one line with one `os.write` on an O_APPEND descriptor, so a
kill -9 can tear at most the last line of a JSON-lines file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel

# Every open panel makes on its state files refuses to follow a symlink.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

TMP_MARKER = ".tmp-"


def open_dir_fd(path: Path) -> int:
    """Open a directory (not a symlink to one) for fsync or *at() calls."""
    return os.open(path, os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)


def fsync_dir(path: Path) -> None:
    """Make a rename or file creation in `path` durable."""
    fd = open_dir_fd(path)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(name: str) -> str:
    """The temp-file name used while replacing `name` (hidden, unique per writer)."""
    return f".{name}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically and durably (a symlink at `path` is replaced)."""
    parent = path.parent
    tmp = parent / tmp_name(path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)  # rename(2) replaces a symlink itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)


def json_bytes(obj: BaseModel | Any) -> bytes:
    """Pretty, stable JSON for files people read: pydantic models by their JSON dump."""
    value = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: BaseModel | Any) -> None:
    """Write a pydantic model or JSON value to `path` atomically (see module docstring)."""
    write_bytes_atomic(path, json_bytes(obj))


def append_line(fd: int, line: bytes, *, fsync: bool) -> None:
    """Append one newline-terminated line with a single write; fsync it if asked.

    `fd` must be opened with O_APPEND. A short write (disk full) is completed with further
    writes so the line stays whole when the disk recovers; if writing fails the line is torn
    and the next writer's tail repair drops it.
    """
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line needs exactly one newline-terminated line")
    written = os.write(fd, line)
    while written < len(line):
        written += os.write(fd, line[written:])
    if fsync:
        os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)


def is_tmp_file(name: str) -> bool:
    """True for temp files `write_bytes_atomic` may leave behind after a crash."""
    return name.startswith(".") and TMP_MARKER in name


__all__ = [
    "append_line",
    "fsync_dir",
    "is_tmp_file",
    "json_bytes",
    "open_dir_fd",
    "write_bytes_atomic",
    "write_json_atomic",
]
