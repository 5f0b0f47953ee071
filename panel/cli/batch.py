"""`panel batch MANIFEST`: regenerate many verdicts and comparisons; incremental, resumable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from panel.batch.regenerate import BatchSettings, BatchSummary, Estimate, load_manifest, run_batch
from panel.cli.interrupt import RunHandle, announce, resume_hint, run_stoppable
from panel.cli.options import (
    BaseUrlOpt,
    FaultsOpt,
    JsonOpt,
    JuryOpt,
    LatencyOpt,
    SeedOpt,
    ThinkingOpt,
    split_ids,
)
from panel.cli.progress import BatchProgress
from panel.errors import ConfigError
from panel.providers.select import EmulatorSettings, parse_model
from panel.run.engine import RunOptions
from panel.run.report import interval_phrase
from panel.store.runindex import resolve_run_id
from panel.store.runs import RunStore


def batch(
    ctx: typer.Context,
    manifest: Annotated[
        Path, typer.Argument(help="Batch manifest (YAML): tools, comparisons, personas, …")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="PROVIDER:MODEL (overrides the manifest).")
    ] = None,
    base_url: BaseUrlOpt = None,
    personas: Annotated[
        str | None, typer.Option("--personas", "-p", help="Comma-separated persona ids.")
    ] = None,
    runs_dir: Annotated[
        Path | None, typer.Option("--runs-dir", help="Where run folders live.")
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, max=512)] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", min=0.0, help="Stop launching at this many USD.")
    ] = None,
    via: Annotated[
        str | None, typer.Option("--via", help="stream (default) or batch-api (half price).")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish a stopped batch run by id.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ignore the result cache.")] = False,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=256)] = None,
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="Prompt-cache lifetime: 5m or 1h.")
    ] = None,
    json_out: JsonOpt = False,
    thinking: ThinkingOpt = False,
    seed: SeedOpt = 0,
    latency_scale: LatencyOpt = 0.5,
    faults: FaultsOpt = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples", min=1, max=50, help="Verdicts per tool × persona (overrides samples:)."
        ),
    ] = None,
    jury: JuryOpt = None,
) -> None:
    """Run the panel over a manifest's tools, reusing unchanged verdicts; build its comparisons.

    Exits 0 when every pair has a recorded verdict, 1 when some failed or are pending
    (finish them with --resume RUN_ID), 2 on bad input or configuration.
    """
    err = Console(stderr=True)
    loaded = load_manifest(manifest)
    if via not in (None, "stream", "batch-api"):
        raise ConfigError("--via must be stream or batch-api")
    if ttl not in (None, "5m", "1h"):
        raise ConfigError("--ttl must be 5m or 1h")
    if resume:  # `latest` or a prefix; the run's own model and seed unless given
        where = BatchSettings.of(loaded, runs_dir=runs_dir).runs_dir
        resume = resolve_run_id(where, resume)
        took = RunStore.open(where, resume).manifest()
        source = ctx.get_parameter_source("seed")
        if source is None or source.name.startswith("DEFAULT"):
            seed = int(took.settings.get("emulator_seed") or seed)
        model = model or (None if took.jury else took.model)
        samples = samples or took.samples
        jury = jury or ",".join(took.jury) or None
    members = tuple(split_ids(jury) or loaded.manifest.jury or ())
    if members and model:
        raise ConfigError("give --model or --jury, not both (a jury names its models)")
    spec = parse_model(members[0] if members else model or loaded.manifest.model)
    if spec.defaulted_to_emulator:
        err.print(
            "[yellow]no API key set (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY): "
            "using the built-in emulator — verdicts are synthetic[/]"
        )
    settings = BatchSettings.of(
        loaded,
        model=str(spec),
        personas=split_ids(personas),
        runs_dir=runs_dir,
        concurrency=concurrency,
        budget_usd=budget,
        via=via,
        max_tokens=max_tokens,
        ttl=ttl,
        samples=samples,
        jury=members or None,
        resume=resume,
        use_result_cache=not no_cache,
        options=RunOptions(
            base_url=base_url,
            emulator=EmulatorSettings(seed=seed, latency_scale=latency_scale, faults=faults),
            thinking=thinking or loaded.manifest.thinking,
        ),
    )

    def preflight(est: Estimate) -> None:
        err.print(escape(est.line()), highlight=False)
        if (
            settings.budget_usd is not None
            and est.cost is not None
            and est.cost.usd > settings.budget_usd
        ):
            err.print(
                f"[yellow]the estimate is over the ${settings.budget_usd:.2f} budget: "
                "launching stops when it is reached; the rest stays pending[/]"
            )

    # --runs-dir only if it was given: without it, the manifest says where its runs go.
    handle = RunHandle(resume_hint(["batch", str(manifest)], runs_dir, default=None))
    with BatchProgress(err) as progress:
        sink = announce(err, handle, progress)
        summary = run_stoppable(
            err,
            handle,
            run_batch(loaded, settings, sink, on_estimate=preflight, env=dict(os.environ)),
        )
    for line in summary.problems:
        err.print(escape(line), highlight=False)
    if json_out:
        sys.stdout.write(json.dumps(summary.as_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _render(Console(), summary, handle.resume_command(summary.run_id))
    raise typer.Exit(1 if summary.pending or summary.failed else 0)


def _render(out: Console, s: BatchSummary, resume_command: str) -> None:
    out.print(
        f"run {s.run_id} ({s.status}) · {s.model} · via {s.via} · {s.run_dir}",
        highlight=False,
        soft_wrap=True,  # a path is never broken across lines
    )
    drawn = f" × {s.samples} samples" if s.samples > 1 else ""
    out.print(
        f"{s.pairs} pairs{drawn}: {s.reused} reused, {s.requested} requested — "
        f"{s.ok} ok, {s.refused} declined, {s.failed} failed, {len(s.pending)} pending",
        highlight=False,
    )
    if s.verdicts is not None:
        unstable = sum(1 for p in s.verdicts.pairs if p.sampling.stable is False)
        out.print(
            f"stability: {unstable} of {len(s.verdicts.pairs)} pairs unstable; "
            + "; ".join(f"{escape(t.tool)} {interval_phrase(t)}" for t in s.verdicts.tools[:10])
            + (" …" if len(s.verdicts.tools) > 10 else ""),
            highlight=False,
        )
    if s.why:
        out.print(
            "why they ran: " + ", ".join(f"{n} {why}" for why, n in sorted(s.why.items())),
            highlight=False,
        )
    c = s.cost
    discount = " (batch price)" if c.batch_discount else ""
    out.print(
        f"cost ${c.usd:.4f}{discount} · floor ${c.floor_usd:.4f} · no-cache ${c.no_cache_usd:.4f}"
        + (f" · cache hit rate {s.cache_hit_rate:.0%}" if s.cache_hit_rate is not None else ""),
        highlight=False,
    )
    if s.lint is not None:
        kinds = ", ".join(f"{n} {check}" for check, n in s.lint.by_check.items())
        out.print(
            f"lint (house rules): {s.lint.findings} finding(s)"
            + (f" ({kinds}) — details: panel lint {s.run_id}" if kinds else ""),
            highlight=False,
        )
    for path in s.records:
        out.print(f"record {path}", highlight=False, soft_wrap=True)
    if s.pending:
        shown = ", ".join(
            f"{d.tool_slug}×{d.persona}" + (f"#{d.sample + 1}" if d.sample else "")
            for d in s.pending[:20]
        )
        more = f" and {len(s.pending) - 20} more" if len(s.pending) > 20 else ""
        out.print(
            f"pending: {shown}{more} (run {s.run_id} is {s.status}) — finish with: "
            f"{resume_command}",
            highlight=False,
            soft_wrap=True,
        )
    for note in s.notes:
        out.print(f"note: {escape(note)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
