"""Fixtures for the end-to-end engine tests (`panel ...` as a user runs it, on the emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.emulator.runner import EmulatorHandle


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle, tmp_path: Path
) -> dict[str, str]:
    """No API key (the emulator is the default), the test's folder as the workspace."""
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PANEL_EMULATOR_URL", emulator.base_url)
    return {"PANEL_EMULATOR_URL": emulator.base_url}
