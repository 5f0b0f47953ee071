"""`panel compare A B`: build "A vs B" from a run (running what is missing) and render it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from panel.aggregate import PairVerdict
from panel.cli.options import (
    BaseUrlOpt,
    JuryOpt,
    PersonasOpt,
    SamplesOpt,
    SiteSettingsOpt,
    split_ids,
)
from panel.errors import InputError
from panel.inputs.personas import Persona, load_personas, select_personas
from panel.inputs.prompts import load_prompts
from panel.inputs.textsafety import terminal_safe
from panel.inputs.tools import LoadedTool, load_tools
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.pages.records import (
    ComparisonRecord,
    RunMissing,
    RunView,
    ToolCard,
    compare,
    load_votes,
    run_verdicts,
    write_record,
)
from panel.pages.render import stability, write_index, write_pages
from panel.pages.sitesettings import find_site_settings
from panel.pages.toolpages import PageRecord, read_page_record, tool_records_from
from panel.providers.select import parse_model
from panel.run.events import Event, EventSink, ReviewFinished
from panel.run.jury import jury_label
from panel.runformat import PairId, PairResult, RunManifest
from panel.verdict import schema_digest

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")]


def _base_run(runs_dir: Path, run_id: str | None, model: str) -> RunView | None:
    """--run (an id, prefix or `latest`), else the newest run of the model now in use."""
    from panel.store.runindex import resolve_run_id
    from panel.store.runs import RunStore, list_runs

    if run_id:
        return RunStore.open(runs_dir, resolve_run_id(runs_dir, run_id))
    for manifest in list_runs(runs_dir):  # newest first; never another model's verdicts
        if manifest.model == model:
            return RunStore.open(runs_dir, manifest.run_id)
    return None


def _newest_manifest(runs_dir: Path) -> RunManifest | None:
    from panel.store.runs import list_runs

    runs = list_runs(runs_dir)
    return runs[0] if runs else None


class CurrentView:
    """A run seen through what is current: only verdicts whose inputs are today's files."""

    def __init__(self, run: RunView, results: dict[PairId, PairResult]) -> None:
        self.run, self._results = run, results

    def manifest(self) -> RunManifest:
        return self.run.manifest()

    def results(self) -> dict[PairId, PairResult]:
        return self._results

    def verdicts(self) -> dict[PairId, PairVerdict]:
        return {pair: v for pair, v in run_verdicts(self.run).items() if pair in self._results}

    def records_dir(self) -> Path:
        return self.run.records_dir()


def current_results(
    run: RunView,
    tools: Sequence[LoadedTool],
    personas: Sequence[Persona],
    model: str,
    samples: int = 1,
) -> dict[PairId, PairResult]:
    """The run's verdicts whose tool file, persona file, templates, schema and model are current
    (and drawn as many times as asked: a run with other --samples lends its draws only through
    the result cache, draw by draw)."""
    manifest = run.manifest()
    inputs = manifest.inputs
    templates = load_prompts(prompt_dirs()).template_digests()
    if manifest.model != model or inputs.templates != templates or manifest.samples != samples:
        return {}
    if inputs.verdict_schema != schema_digest():
        return {}
    tool_ok = {t.slug for t in tools if (e := inputs.tools.get(t.slug)) and e.digest == t.digest}
    persona_ok = {
        p.id for p in personas if (e := inputs.personas.get(p.id)) and e.digest == p.digest
    }
    return {
        pair: r for pair, r in run.results().items() if pair[0] in tool_ok and pair[1] in persona_ok
    }


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


def engine_runner(
    model: str | None,
    runs_dir: Path,
    personas: Sequence[Persona],
    base_url: str | None = None,
    on_event: EventSink | None = None,
    samples: int = 1,
    jury: tuple[str, ...] = (),
) -> RunMissing:
    """run_missing wired to the engine: a new run of the missing tools, opened as a RunStore."""

    async def run(tools: list[LoadedTool]) -> RunView:
        from panel.run.engine import RunOptions, run_panel
        from panel.store.runs import RunStore

        options = RunOptions(
            model=None if jury else model,
            personas=[p.id for p in personas],
            runs_dir=runs_dir,
            base_url=base_url,
            samples=samples,
            jury=jury,
        )
        outcome = await run_panel(tools, options, on_event)
        return RunStore.open(runs_dir, outcome.run_id)

    return run


def compare_cmd(
    tool_a: Annotated[str, typer.Argument(help="Tool file, or a tool's slug or name in a run.")],
    tool_b: Annotated[str, typer.Argument(help="Tool file, or a tool's slug or name in a run.")],
    run: Annotated[
        str | None, typer.Option("--run", help="Take current verdicts from this run first.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="PROVIDER:MODEL.")] = None,
    personas: PersonasOpt = None,
    base_url: BaseUrlOpt = None,
    runs_dir: RunsDir = Path("runs"),
    out: Annotated[Path, typer.Option("--out", help="Folder for the pages.")] = Path("out"),
    votes: Annotated[
        Path | None, typer.Option("--votes", help="YAML/JSON file: tool name -> votes.")
    ] = None,
    site_settings: SiteSettingsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record JSON.")] = False,
    samples: SamplesOpt = 1,
    jury: JuryOpt = None,
) -> None:
    """Build and render "A vs B": HTML, Markdown and JSON, running the panel for what is missing.

    Every persona of the workspace reviews both tools (`--personas` narrows on purpose). A
    verdict is reused only when its inputs are current: from `--run` (or the newest run of
    the model in use) when its tool file, persona file, templates and model are today's, else
    from the result cache, which keys on all of them and the settings; the rest is asked.
    With no API key the model is the emulator, as for `panel run`.
    """
    err = Console(stderr=True)
    site = find_site_settings(site_settings)  # a bad settings file fails before any request
    members = tuple(split_ids(jury) or ())
    if members and model:
        raise InputError("give --model or --jury, not both (a jury names its models)")
    spec = parse_model(model if not members else members[0])
    # The runs a verdict may come from are those of the same model, or of the same jury.
    asked = jury_label([str(parse_model(m)) for m in members]) if members else str(spec)
    if spec.defaulted_to_emulator:
        err.print(
            "[yellow]no API key set (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY): "
            "using the built-in emulator — verdicts are synthetic[/]",
            soft_wrap=True,
        )
    base = _base_run(runs_dir, run, asked)
    lookup = base.manifest() if base else _newest_manifest(runs_dir)  # names -> tool files
    a, b = resolve_tool(tool_a, lookup), resolve_tool(tool_b, lookup)
    panel = select_personas(load_personas(persona_dirs()), split_ids(personas))
    seen = Reuse()
    view: RunView | None = None
    if base is not None:
        view = CurrentView(base, current_results(base, [a, b], panel, asked, samples))
    runner = engine_runner(str(spec), runs_dir, panel, base_url, seen, samples, members)
    tally = load_votes(votes) if votes else None
    record, used = asyncio.run(compare(a, b, panel, view, runner, tally))
    if view is not None:  # the base run's verdicts that made it onto the page
        rerun = set() if used is view else {slug for slug, _ in used.results()}
        seen.from_run = sum(1 for slug, _ in view.results() if slug not in rerun)
    record_path = write_record(record, used.records_dir())
    pages = write_pages(record, out, site)
    for tool_page in tool_records_from(record):  # the page each tool's card links to
        write_pages(tool_page, out, site)
    if _index_is_ours(out):  # never replace an index.html panel did not write
        write_index(
            _out_records(out), out, site.name if site and site.name else "Tool verdicts", site
        )
    if as_json:
        typer.echo(json.dumps(record.model_dump(mode="json"), indent=2))
        return
    for line in summary_lines(record, seen, base.manifest().run_id if base else None):
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    for path in (pages.html, pages.markdown, pages.json, record_path):
        typer.echo(str(path))


def _index_is_ours(out: Path) -> bool:
    html, md = out / "index.html", out / "index.md"
    if not html.exists() and not md.exists():
        return True
    try:
        return html.is_file() and b'<meta name="generator" content="panel">' in html.read_bytes()
    except OSError:
        return False


def _out_records(out: Path) -> list[PageRecord]:
    """Every page record in the out folder, for its index (unreadable files are skipped)."""
    found: list[PageRecord] = []
    for path in sorted(out.glob("*.json")):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(InputError):
                found.append(read_page_record(path))
    return found


class Reuse:
    """Where the verdicts came from: the base run, the result cache, or a new request."""

    def __init__(self) -> None:
        self.from_run = 0
        self.from_cache = 0
        self.asked = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ReviewFinished):
            if event.result.reused:
                self.from_cache += 1
            else:
                self.asked += 1


def summary_lines(record: ComparisonRecord, seen: Reuse, base: str | None) -> list[str]:
    """One screen: A 75% vs B 100%, the reviewers, synthetic or not, where verdicts came from."""
    a, b = record.tools
    prov = record.provenance

    def side(card: ToolCard) -> str:
        pct = "—" if card.panel_ship_pct is None else f"{card.panel_ship_pct}%"
        drawn = f", {stability(card)}" if card.stability else ""
        return f"{card.name} {pct} ({card.ship_votes}/{card.verdicts} ship{drawn})"

    reviewers = len(a.split)
    lines = [
        f"{terminal_safe(record.title)}: {terminal_safe(side(a))} vs {terminal_safe(side(b))}",
        f"reviewers: {', '.join(v.persona for v in a.split)} "
        f"({a.verdicts} of {reviewers} on {terminal_safe(a.name)}, "
        f"{b.verdicts} of {reviewers} on {terminal_safe(b.name)})",
        f"model {prov.model}" + (" — synthetic verdicts (emulator)" if prov.synthetic else ""),
        f"verdicts: {seen.from_run} current from run {base}, " * bool(base)
        + f"{seen.from_cache} reused from the result cache, {seen.asked} asked"
        + f" (run {prov.run_id})",
    ]
    return lines


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
