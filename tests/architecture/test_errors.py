"""The exception tree is closed: every exception class panel defines is either a PanelError
(what a user can meet: one line and exit 2 at the CLI) or one of the few internal signals,
each converted where it is raised (the map below, drawn in panel/errors.py)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from panel.errors import PanelError

PANEL = Path(__file__).resolve().parents[2] / "panel"

# Internal exception → what it becomes before anything reaches a user.
INTERNAL = {
    "panel.inputs.yamlsafe.YamlInputError": "ToolFileError / PersonaError at the loaders",
    "panel.inputs.safefiles.UnsafeFileError": "ToolFileError / PersonaError / TemplateError",
    "panel.verdict.VerdictProblem": "ErrorClass.SCHEMA_INVALID on the pair",
    "panel.run.retry.RunPaused": "a paused, resumable run",
    "panel.providers.sse.StreamErrorEvent": "an UpstreamError, classified in the provider",
    "panel.emulator.faults.FaultSpecError": "an API-shaped 400 (or ConfigError in the CLI)",
    "panel.emulator.variability.FlipSpecError": "an API-shaped 400 (or ConfigError in the CLI)",
    "panel.emulator.promptcache.CacheControlError": "an API-shaped 400",
    "panel.emulator.exchange.BadRequest": "an API-shaped 400",
    "panel.emulator.sse.ConnectionReset": "the emulator's reset fault: the socket is dropped",
    "panel.run.engine._Stopped": "the pair stays pending (the run is stopping)",
    "panel.store.resultcache.CorruptEntry": "a logged cache miss; the pair runs",
}


def _exception_classes() -> list[str]:
    found = []
    for path in sorted(PANEL.rglob("*.py")):
        module = ".".join(path.relative_to(PANEL.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception", "Problem", "Paused")) for b in bases):
                    found.append(f"{module}.{node.name}")
    return found


def _resolve(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


def test_every_exception_is_a_panel_error_or_a_known_internal_signal() -> None:
    classes = _exception_classes()
    assert len(classes) >= 12  # the scan sees the tree (PanelError and its family)
    stray = [c for c in classes if not issubclass(_resolve(c), PanelError) and c not in INTERNAL]
    assert stray == [], "add it under PanelError, or to INTERNAL with where it is converted"


@pytest.mark.parametrize("dotted", sorted(INTERNAL))
def test_internal_signals_are_not_panel_errors_and_still_exist(dotted: str) -> None:
    cls = _resolve(dotted)
    assert issubclass(cls, Exception) and not issubclass(cls, PanelError)
