"""Where a run finds its personas and prompt templates: the workspace first, then the built-ins.

``personas/`` and ``prompts/`` in the current folder override the defaults (a file of the same
name wins; a persona file with a new id adds a persona). The defaults ship inside the wheel
as ``panel/_defaults/`` (pyproject's force-include); an editable install reads the repo-root
folders next to the package instead.
"""

from __future__ import annotations

from pathlib import Path

import panel

_KINDS = ("personas", "prompts")


def builtin_dir(kind: str) -> Path | None:
    """The shipped default folder for ``personas`` or ``prompts``, or None if absent."""
    if kind not in _KINDS:
        raise ValueError(f"unknown workspace folder {kind!r}")
    package = Path(panel.__file__).resolve().parent
    for candidate in (package / "_defaults" / kind, package.parent / kind):
        if candidate.is_dir():
            return candidate
    return None


def _dirs(kind: str, cwd: Path | None) -> list[Path]:
    found: list[Path] = []
    local = (cwd or Path.cwd()) / kind
    if local.is_dir():
        found.append(local.resolve())
    builtin = builtin_dir(kind)
    if builtin is not None and builtin.resolve() not in found:
        found.append(builtin.resolve())
    return found


def persona_dirs(cwd: Path | None = None) -> list[Path]:
    """Persona folders in priority order: ``<cwd>/personas`` then the built-in one."""
    return _dirs("personas", cwd)


def prompt_dirs(cwd: Path | None = None) -> list[Path]:
    """Template folders in priority order: ``<cwd>/prompts`` then the built-in one."""
    return _dirs("prompts", cwd)


__all__ = ["builtin_dir", "persona_dirs", "prompt_dirs"]
