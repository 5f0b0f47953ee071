"""Batch test fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from batch_helpers import make_workspace

from panel.batch.regenerate import LoadedManifest, load_manifest


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., LoadedManifest]:
    def make(n_tools: int, extra: str = "") -> LoadedManifest:
        return load_manifest(make_workspace(tmp_path, n_tools, extra=extra))

    return make
