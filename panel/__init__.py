"""panel: reviewer-panel verdicts for software tools.

The front door of the library. Everything here is loaded on first use (PEP 562), so
`import panel` stays cheap and the SDKs load only when a provider opens::

    import asyncio, panel

    loaded = panel.load_tools([Path("examples/tools/cursor.yaml")])
    options = panel.RunOptions(model="emulator:claude-sonnet-5")
    outcome = asyncio.run(panel.run_panel(loaded.tools, options))
    for result in outcome.results:
        print(result.persona, result.status, result.ship, result.synthetic)

(the README's "As a library" section runs a longer version of this in a test).

tests/architecture/test_public_api.py pins this list: changing it is a deliberate, visible diff.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → the module that defines it
_EXPORTS: dict[str, str] = {
    # run a panel
    "run_panel": "panel.run.engine",
    "RunOptions": "panel.run.engine",
    "RunOutcome": "panel.run.events",
    # inputs
    "load_tools": "panel.inputs.tools",
    "LoadedTool": "panel.inputs.tools",
    "load_personas": "panel.inputs.personas",
    "Persona": "panel.inputs.personas",
    # results on disk
    "PairResult": "panel.runformat",
    "RunManifest": "panel.runformat",
    "Usage": "panel.runformat",
    "Verdict": "panel.verdict",
    "RunStore": "panel.store.runs",
    "list_runs": "panel.store.runs",
    # records and pages
    "ComparisonRecord": "panel.pages.records",
    "compare": "panel.pages.records",
    "render_html": "panel.pages.render",
    "render_markdown": "panel.pages.render",
    # diff and publish
    "compare_runs": "panel.pages.diff",
    "RunDiff": "panel.pages.diff",
    "publish": "panel.pages.publish",
    # errors
    "PanelError": "panel.errors",
    "ErrorClass": "panel.errors",
}

# The same names, spelled out for readers and linters
# (tests/architecture/test_public_api.py keeps them equal).
__all__ = [
    "ComparisonRecord",
    "ErrorClass",
    "LoadedTool",
    "PairResult",
    "PanelError",
    "Persona",
    "RunDiff",
    "RunManifest",
    "RunOptions",
    "RunOutcome",
    "RunStore",
    "Usage",
    "Verdict",
    "__version__",
    "compare",
    "compare_runs",
    "list_runs",
    "load_personas",
    "load_tools",
    "publish",
    "render_html",
    "render_markdown",
    "run_panel",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'panel' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from panel.errors import ErrorClass, PanelError
    from panel.inputs.personas import Persona, load_personas
    from panel.inputs.tools import LoadedTool, load_tools
    from panel.pages.diff import RunDiff, compare_runs
    from panel.pages.publish import publish
    from panel.pages.records import ComparisonRecord, compare
    from panel.pages.render import render_html, render_markdown
    from panel.run.engine import RunOptions, run_panel
    from panel.run.events import RunOutcome
    from panel.runformat import PairResult, RunManifest, Usage
    from panel.store.runs import RunStore, list_runs
    from panel.verdict import Verdict
