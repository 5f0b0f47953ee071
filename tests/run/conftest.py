"""Fixtures of the run stage's unit specs (helpers: double_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from double_helpers import make_tools

from panel.inputs.tools import LoadedTool


@pytest.fixture
def tools(tmp_path: Path) -> list[LoadedTool]:
    return make_tools(tmp_path / "tools", "Alpha Tool", "Beta Tool", "Gamma Tool")
