"""The front door and the command line: changing either is a deliberate, visible diff."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

import panel
from panel.cli import COMMANDS, app, command_app

PUBLIC = {
    "ComparisonRecord", "ErrorClass", "LoadedTool", "PairResult", "PanelError", "Persona",
    "RunDiff", "RunManifest", "RunOptions", "RunOutcome", "RunStore", "Usage", "Verdict",
    "__version__", "compare", "compare_runs", "list_runs", "load_personas", "load_tools",
    "publish", "render_html", "render_markdown", "run_panel",
}  # fmt: skip


def test_the_public_names_are_pinned_and_resolve() -> None:
    assert set(panel.__all__) == PUBLIC
    assert set(panel._EXPORTS) | {"__version__"} == PUBLIC
    for name in panel.__all__:
        assert getattr(panel, name) is not None, name


def test_importing_panel_or_listing_commands_loads_no_sdk() -> None:
    code = (
        "import sys, panel, panel.cli;"
        "from typer.testing import CliRunner;"
        "CliRunner().invoke(panel.cli.app, ['--help']);"
        "sdks = ('anthropic', 'openai', 'httpx2', 'instructor');"
        "print(sorted(m for m in sdks if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_command_short_help_is_its_own_first_line() -> None:
    for name, short in COMMANDS.items():
        group = typer.main.get_group(command_app(name))
        command = group.commands[name]
        first = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert first == short, name


def test_help_lists_every_command_and_version_prints() -> None:
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    for name in COMMANDS:
        assert name in listing.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0
    assert version.output.strip() == f"panel {panel.__version__}"
