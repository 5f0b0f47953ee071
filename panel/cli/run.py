"""`panel run TOOL_FILE...`: run the panel on tools and watch the verdicts stream in."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from panel.cli.display import LiveDisplay, outcome_json, render_summary
from panel.cli.interrupt import RunHandle, announce, resume_hint, run_stoppable
from panel.cli.options import (
    BaseUrlOpt,
    BehaviourOpt,
    ConcurrencyOpt,
    FaultsOpt,
    FlipsOpt,
    JsonOpt,
    JuryOpt,
    LatencyOpt,
    ModelOpt,
    PersonasOpt,
    RunsDirOpt,
    SamplesOpt,
    SeedOpt,
    ThinkingOpt,
    split_ids,
)
from panel.errors import ConfigError
from panel.inputs.textsafety import terminal_safe
from panel.inputs.tools import ToolLoadResult, load_tools
from panel.providers.select import EmulatorSettings, parse_model
from panel.run.engine import RunOptions, RunStoppedError, run_panel
from panel.run.events import RunOutcome
from panel.run.inputcopy import resume_tools
from panel.run.resume import resume_arguments
from panel.store.runindex import resolve_run_id
from panel.store.runs import RunStore


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def run(
    ctx: typer.Context,
    tool_files: Annotated[
        list[Path] | None,
        typer.Argument(help="Tool YAML files, or folders of them (none with --resume)."),
    ] = None,
    model: ModelOpt = None,
    jury: JuryOpt = None,
    base_url: BaseUrlOpt = None,
    personas: PersonasOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    concurrency: ConcurrencyOpt = 8,
    json_out: JsonOpt = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ignore the result cache.")] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", help="Finish a stopped run (id, unique prefix or latest) from its manifest."
        ),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="With --resume: re-ask the failed pairs too.")
    ] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=256)] = 2048,
    ttl: Annotated[str, typer.Option("--ttl", help="Prompt-cache lifetime: 5m or 1h.")] = "5m",
    budget: Annotated[
        float | None, typer.Option("--budget", help="Stop launching at this many USD.")
    ] = None,
    thinking: ThinkingOpt = False,
    samples: SamplesOpt = 1,
    seed: SeedOpt = 0,
    latency_scale: LatencyOpt = 0.5,
    faults: FaultsOpt = None,
    behaviour: BehaviourOpt = "normal",
    flips: FlipsOpt = None,
) -> None:
    """Run every persona on every tool; stream the verdicts; write `runs/<run-id>/`.

    Exits 0 when every verdict was recorded (ok or declined), 1 when some failed or are
    pending, 2 on bad input or configuration, 130/143 when stopped by Ctrl-C/SIGTERM (the run
    is left "stopped" and the command that finishes it is printed).

    `--resume ID` reads the tools, personas, model and settings from the run's manifest; an
    argument that contradicts them, or an input file changed since, is refused.
    """
    err = Console(stderr=True)
    if retry_failed and not resume:
        raise ConfigError("--retry-failed re-asks a run's failed pairs: use it with --resume ID")
    resumed_tools = None
    if resume:
        resume = resolve_run_id(runs_dir, resume)
        store = RunStore.open(runs_dir, resume)
        asked = resume_arguments(store.manifest())
        resumed_tools = None if tool_files else resume_tools(store.path, store.manifest())
        if asked.jury and model:
            raise ConfigError(
                f"run {resume} is a jury ({', '.join(asked.jury)}): resume it without --model"
            )
        jury = jury or ",".join(asked.jury) or None
        model = model or (None if jury else asked.model)
        personas = personas or ",".join(asked.personas)
        took = asked.settings
        max_tokens = (
            max_tokens if _given(ctx, "max_tokens") else int(took.get("max_tokens") or max_tokens)
        )
        ttl = ttl if _given(ctx, "ttl") else str(took.get("cache_ttl") or ttl)
        thinking = thinking if _given(ctx, "thinking") else bool(took.get("thinking", thinking))
        seed = seed if _given(ctx, "seed") else int(took.get("emulator_seed") or seed)
        if not _given(ctx, "no_cache") and took.get("result_cache") is False:
            no_cache = True  # the run was asked without the result cache: it stays so
        if not _given(ctx, "behaviour") and took.get("emulator_behaviour"):
            behaviour = str(took["emulator_behaviour"])
        if not _given(ctx, "flips") and took.get("emulator_flips"):
            flips = str(took["emulator_flips"])
        samples = samples if _given(ctx, "samples") else asked.samples
    if not tool_files and not resume:
        raise ConfigError("give tool files (or folders), or --resume RUN_ID")
    members = tuple(split_ids(jury) or ())
    if members and model:
        raise ConfigError("give --model or --jury, not both (a jury names its models)")
    spec = parse_model(model if not members else members[0])
    if spec.defaulted_to_emulator:
        err.print(
            "[yellow]no API key set (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY): "
            "using the built-in emulator — verdicts are synthetic[/]",
            soft_wrap=True,
        )
    if ttl not in ("5m", "1h"):
        raise ConfigError("--ttl must be 5m or 1h")
    # On --resume with no files: the run's own tools (the workspace file, else the run's copy).
    loaded = ToolLoadResult(tools=resumed_tools) if resumed_tools else load_tools(tool_files or [])
    for error in loaded.errors:
        err.print(f"[red]skipped[/] {escape(terminal_safe(str(error)))}", soft_wrap=True)
    for warning in loaded.warnings:
        err.print(f"[yellow]warning[/] {escape(terminal_safe(warning))}", soft_wrap=True)
    if not loaded.tools:
        raise ConfigError("no tool file loaded; nothing to run")
    options = RunOptions(
        model=None if members else str(spec),
        jury=members,
        base_url=base_url,
        personas=split_ids(personas),
        runs_dir=runs_dir,
        concurrency=concurrency,
        max_tokens=max_tokens,
        cache_ttl="1h" if ttl == "1h" else "5m",
        use_result_cache=not no_cache,
        budget_usd=budget,
        thinking=thinking,
        samples=samples,
        resume=resume,
        retry_failed=retry_failed,
        emulator=EmulatorSettings(
            seed=seed, latency_scale=latency_scale, behaviour=behaviour, faults=faults, flips=flips
        ),
    )
    handle = RunHandle(resume_hint(["run"], runs_dir))
    try:
        with LiveDisplay(err) as display:
            sink = announce(err, handle, display)
            outcome = run_stoppable(
                err, handle, run_panel(loaded.tools, options, sink, env=dict(os.environ))
            )
    except RunStoppedError as stopped:
        if json_out:  # the run's record still goes to stdout; the one error line to stderr
            _write_json(stopped.outcome)
        raise
    if json_out:
        _write_json(outcome)
    else:
        render_summary(Console(), outcome)
    bad = outcome.pending or loaded.errors or any(r.status == "failed" for r in outcome.results)
    raise typer.Exit(1 if bad else 0)


def _write_json(outcome: RunOutcome) -> None:
    sys.stdout.write(json.dumps(outcome_json(outcome), indent=2, ensure_ascii=False) + "\n")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
