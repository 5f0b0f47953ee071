"""Batch test helpers: a workspace of generated tools, personas and a manifest."""

from __future__ import annotations

import shutil
from pathlib import Path

from panel.batch.regenerate import BatchSettings, LoadedManifest
from panel.emulator.runner import EmulatorHandle
from panel.inputs.workspace import builtin_dir
from panel.providers.select import EmulatorSettings
from panel.run.engine import RunOptions

TOOL = """name: {name}
category: Developer Tools
tagline: Synthetic tool number {n} for batch tests
pricing: Free
description: |
  {name} is a synthetic developer tool used by the batch tests. It indexes a repository,
  answers questions about it and proposes edits that a developer reviews before merging.
  Variant {n}: it keeps {n} worker processes warm and logs every request for replay.
"""


def write_tools(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"tool-{i:04d}.yaml").write_text(TOOL.format(name=f"Batch Tool {i:04d}", n=i))


def make_workspace(root: Path, n_tools: int, *, extra: str = "") -> Path:
    """root/{tools/, personas/, manifest.yaml}; personas copied from the built-ins."""
    write_tools(root / "tools", n_tools)
    src = builtin_dir("personas")
    assert src is not None
    shutil.copytree(src, root / "personas")
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "tools: [tools/*.yaml]\n"
        "comparisons:\n  - [Batch Tool 0000, batch-tool-0001]\n"
        "model: emulator:claude-sonnet-5\nconcurrency: 8\nruns_dir: runs\n" + extra
    )
    return manifest


def settings_for(
    loaded: LoadedManifest, emulator: EmulatorHandle, **overrides: object
) -> BatchSettings:
    """Settings that drive the shared test emulator (no private emulator per run)."""
    opts = RunOptions(emulator=EmulatorSettings(url=emulator.base_url), idle_timeout=5.0)
    return BatchSettings.of(loaded, options=opts, **overrides)
