"""`panel compare A B`: build "A vs B" from a run (running what is missing) and render it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from panel.cli.options import BaseUrlOpt
from panel.errors import InputError, PanelError
from panel.inputs.personas import Persona, load_personas, parse_persona_file
from panel.inputs.tools import LoadedTool, load_tools
from panel.inputs.workspace import persona_dirs
from panel.pages.records import RunMissing, RunView, compare, load_votes, write_record
from panel.pages.render import write_pages
from panel.runformat import RunManifest

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")]


def _base_run(runs_dir: Path, run_id: str | None, model: str | None) -> RunView | None:
    from panel.store.runindex import resolve_run_id
    from panel.store.runs import RunStore, list_runs

    if run_id:  # `latest` and unique prefixes too
        return RunStore.open(runs_dir, resolve_run_id(runs_dir, run_id))
    for manifest in list_runs(runs_dir):  # newest first
        if model is None or manifest.model == model:
            return RunStore.open(runs_dir, manifest.run_id)
    return None


def _load_one(path: Path) -> LoadedTool:
    loaded = load_tools([path])
    if loaded.errors:
        raise loaded.errors[0]
    return loaded.tools[0]


def resolve_tool(arg: str, manifest: RunManifest | None) -> LoadedTool:
    """A tool file path, or the slug or name of a tool in the run."""
    path = Path(arg)
    if path.is_file():
        tool = _load_one(path)
        if manifest:  # adopt the run's slug for the same file, so its verdicts are found
            for slug, entry in manifest.inputs.tools.items():
                if entry.digest == tool.digest:
                    return tool.model_copy(update={"slug": slug})
        return tool
    if manifest is None:
        raise InputError(f"{arg!r} is not a tool file, and there is no run to look it up in")
    tools = manifest.inputs.tools
    wanted = arg.casefold()
    for slug, entry in tools.items():  # noqa: B007 - entry is used after the loop
        if slug.casefold() == wanted:
            break
    else:
        names = {_load_one(Path(e.path)).spec.name.casefold(): s for s, e in tools.items()}
        if wanted not in names:
            known = ", ".join(sorted(tools)) or "(none)"
            raise InputError(f"no tool {arg!r} in run {manifest.run_id}; its tools: {known}")
        slug, entry = names[wanted], tools[names[wanted]]
    return _load_one(Path(entry.path)).model_copy(update={"slug": slug})


def resolve_personas(manifest: RunManifest | None) -> list[Persona]:
    """The run's personas (from the files it recorded), else the workspace's."""
    if manifest and manifest.inputs.personas:
        try:
            return [parse_persona_file(Path(e.path)) for e in manifest.inputs.personas.values()]
        except (PanelError, OSError):
            pass  # a moved persona file: fall back to the workspace, ids still match results
    return load_personas(persona_dirs())


def engine_runner(
    model: str | None,
    runs_dir: Path,
    personas: Sequence[Persona],
    base_url: str | None = None,
) -> RunMissing:
    """run_missing wired to the engine: a new run of the missing tools, opened as a RunStore."""

    async def run(tools: list[LoadedTool]) -> RunView:
        from panel.run.engine import RunOptions, run_panel
        from panel.store.runs import RunStore

        options = RunOptions(
            model=model, personas=[p.id for p in personas], runs_dir=runs_dir, base_url=base_url
        )
        outcome = await run_panel(tools, options)
        return RunStore.open(runs_dir, outcome.run_id)

    return run


def compare_cmd(
    tool_a: Annotated[str, typer.Argument(help="Tool file, or a tool's slug or name in the run.")],
    tool_b: Annotated[str, typer.Argument(help="Tool file, or a tool's slug or name in the run.")],
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: newest).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="PROVIDER:MODEL.")] = None,
    base_url: BaseUrlOpt = None,
    runs_dir: RunsDir = Path("runs"),
    out: Annotated[Path, typer.Option("--out", help="Folder for the pages.")] = Path("out"),
    votes: Annotated[
        Path | None, typer.Option("--votes", help="YAML/JSON file: tool name -> votes.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record JSON.")] = False,
) -> None:
    """Build and render "A vs B": HTML, Markdown and JSON, running the panel for what is missing."""
    base = _base_run(runs_dir, run, model)
    manifest = base.manifest() if base else None
    a, b = resolve_tool(tool_a, manifest), resolve_tool(tool_b, manifest)
    personas = resolve_personas(manifest)
    # Missing verdicts come from the same model as the run's, unless --model says otherwise.
    runner = engine_runner(
        model or (manifest.model if manifest else None), runs_dir, personas, base_url
    )
    tally = load_votes(votes) if votes else None
    record, used = asyncio.run(compare(a, b, personas, base, runner, tally))
    record_path = write_record(record, used.records_dir())
    pages = write_pages(record, out)
    if as_json:
        typer.echo(json.dumps(record.model_dump(mode="json"), indent=2))
        return
    for path in (pages.html, pages.markdown, pages.json, record_path):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
