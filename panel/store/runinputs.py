"""A run's copy of exactly what it sent: its tool files, persona files and templates.

    runs/<run-id>/inputs/tools/<slug>.yaml      each tool file, as read (by tool slug)
    runs/<run-id>/inputs/personas/<id>.md       each persona file, as read (by persona id)
    runs/<run-id>/inputs/prompts/<name>         each template (house.j2, persona.j2, tool.j2)

Every file's sha256 equals its digest in `run.json` → `inputs`, so the copy and the manifest
can never disagree about what the run used: the writer checks each digest before it writes
anything, and a reader keeps only the files whose bytes still match. The folder appears in one
step (built in a hidden sibling, then renamed), so a run has the whole copy or none; its files
are not fsynced one by one (a power loss can tear one; a reader then counts it missing). Runs
made before the copy existed have no `inputs/` folder; readers fall back to the digests.

`lint`, `diff` ("why" a verdict changed, field by field) and `--resume` read the copy back
with `read_input_copy`, so they work from the run folder alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from panel.digests import digest
from panel.errors import RunStoreError
from panel.runformat import Inputs
from panel.store.atomicio import O_CLOEXEC, O_NOFOLLOW, fsync_dir, open_dir_fd, tmp_name

INPUTS_DIR = "inputs"
MAX_COPY_BYTES = 4 * 1024 * 1024  # a tool file, persona or template is far smaller
Kind = Literal["tools", "personas", "prompts"]
# Keys come from slugs, persona ids and template names (all path-safe by construction); a
# hand-edited manifest is checked again before any key becomes a file name.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")


class InputFile(NamedTuple):
    """One file a run sent: its kind, its key in `run.json` → `inputs`, and its bytes."""

    kind: Kind
    key: str
    data: bytes


def copy_name(kind: Kind, key: str) -> str:
    """The file's path inside `inputs/`: tools/<slug>.yaml, personas/<id>.md, prompts/<name>."""
    if not _KEY.fullmatch(key) or ".." in key:
        raise RunStoreError(f"unsafe input name {key!r} in the run manifest")
    suffix = {"tools": ".yaml", "personas": ".md", "prompts": ""}[kind]
    return f"{kind}/{key}{suffix}"


def expected_digests(inputs: Inputs) -> dict[tuple[Kind, str], str]:
    """(kind, key) -> the digest `run.json` records for it."""
    out: dict[tuple[Kind, str], str] = {}
    out.update({("tools", k): v.digest for k, v in inputs.tools.items()})
    out.update({("personas", k): v.digest for k, v in inputs.personas.items()})
    out.update({("prompts", k): v for k, v in inputs.templates.items()})
    return out


def write_input_copy(run_dir: Path, inputs: Inputs, files: Iterable[InputFile]) -> Path:
    """Write the copy into `run_dir/inputs/` in one step; every digest must match `inputs`.

    A file whose bytes do not hash to the manifest's digest (edited while the run started)
    is an error before anything is written: the copy is exact or absent.
    """
    expected = expected_digests(inputs)
    chosen: dict[str, bytes] = {}
    for f in files:
        want = expected.get((f.kind, f.key))
        if want is None:
            raise RunStoreError(f"{f.kind} {f.key} is not an input of the run; not copied")
        if digest(f.data) != want:
            raise RunStoreError(
                f"{copy_name(f.kind, f.key)} changed while the run started "
                f"({digest(f.data)[:19]}, the run recorded {want[:19]}); start the run again"
            )
        chosen[copy_name(f.kind, f.key)] = f.data
    final = run_dir / INPUTS_DIR
    building = run_dir / tmp_name(INPUTS_DIR)
    os.mkdir(building, 0o755)
    try:
        for name, data in sorted(chosen.items()):
            path = building / name
            path.parent.mkdir(exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        # No fsync per file: every reader checks each digest, so a copy a power loss tore
        # reads as missing (the digest fallback), never as a wrong input.
        os.rename(building, final)  # one step: the whole copy or none (fails if one exists)
        fsync_dir(run_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final


def _read_in(folder_fd: int, name: str) -> bytes | None:
    """A regular file inside the folder (no symlink at any level), or None."""
    sub, _, base = name.partition("/")
    try:
        dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, dir_fd=folder_fd)
    except OSError:
        return None
    try:
        fd = os.open(base, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_COPY_BYTES:
            return None
        chunks, left = [], MAX_COPY_BYTES + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= MAX_COPY_BYTES else None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class InputCopy:
    """What a run's `inputs/` folder holds that still matches its manifest."""

    folder: Path
    files: dict[tuple[Kind, str], bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # inputs with no matching copy

    @property
    def complete(self) -> bool:
        return not self.missing

    def get(self, kind: Kind, key: str) -> bytes | None:
        return self.files.get((kind, key))

    def path(self, kind: Kind, key: str) -> Path | None:
        """The copy's file on disk, when the copy holds it (for loaders that take a path)."""
        return self.folder / copy_name(kind, key) if (kind, key) in self.files else None


def read_input_copy(run_dir: Path, inputs: Inputs) -> InputCopy:
    """Read a run's copy back: every file whose bytes hash to the manifest's digest.

    A run made before copies existed (no `inputs/` folder) gives an empty copy with every
    input listed as missing; a file edited or removed by hand is missing too, never trusted.
    """
    folder = run_dir / INPUTS_DIR
    expected = expected_digests(inputs)
    files: dict[tuple[Kind, str], bytes] = {}
    missing: list[str] = []
    try:
        folder_fd = open_dir_fd(folder)
    except OSError:
        folder_fd = -1
    try:
        for (kind, key), want in sorted(expected.items()):
            name = copy_name(kind, key)
            data = _read_in(folder_fd, name) if folder_fd >= 0 else None
            if data is not None and digest(data) == want:
                files[(kind, key)] = data
            else:
                missing.append(name)
    finally:
        if folder_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(folder_fd)
    return InputCopy(folder=folder, files=files, missing=missing)


__all__ = [
    "INPUTS_DIR",
    "InputCopy",
    "InputFile",
    "copy_name",
    "expected_digests",
    "read_input_copy",
    "write_input_copy",
]
