"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="PROVIDER:MODEL, e.g. anthropic:claude-sonnet-5 (providers: anthropic, openai, "
        "openrouter, compatible, emulator, instructor). Default: by the keys set; none: emulator.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="The provider's API address, e.g. http://localhost:11434/v1 for compatible: "
        "(Ollama, vLLM, LM Studio); overrides ANTHROPIC_BASE_URL / OPENAI_BASE_URL.",
    ),
]
PersonasOpt = Annotated[
    str | None, typer.Option("--personas", "-p", help="Comma-separated persona ids (default: all).")
]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="Where run folders live.")]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", "-c", min=1, max=512, help="Requests in flight at most.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine-readable result on stdout; progress on stderr.")
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Emulator only: seed of the synthetic verdicts.")
]
LatencyOpt = Annotated[
    float,
    typer.Option(
        "--latency-scale", min=0.0, help="Emulator only: 1 = realistic latency, 0 = instant."
    ),
]
FaultsOpt = Annotated[
    str | None,
    typer.Option(
        "--faults", help="Emulator only: fault plan, e.g. overloaded=0.1,reset_midstream=0.05."
    ),
]
BehaviourOpt = Annotated[
    str,
    typer.Option(
        "--behaviour",
        help="Emulator only: normal | echo | obey | plant (escaping, injection and lint demos).",
    ),
]

FlipsOpt = Annotated[
    str | None,
    typer.Option(
        "--flips",
        help="Emulator only: probabilities that a later sample flips a persona's vote, or that a "
        "model dissents, e.g. skeptic=0.4,*=0.1,model:gpt-5.6-luna=0.3 (docs/emulator.md).",
    ),
]
JuryOpt = Annotated[
    str | None,
    typer.Option(
        "--jury",
        help="Run every persona on each of these models, e.g. emulator:claude-sonnet-5,"
        "emulator:gpt-5.6-luna,emulator:claude-haiku-4-5 (providers may be mixed): a persona's "
        "verdict is the models' majority. Instead of --model.",
    ),
]
SamplesOpt = Annotated[
    int,
    typer.Option(
        "--samples",
        min=1,
        max=50,
        help="Verdicts per tool × persona: the pair's verdict is their majority, with its "
        "agreement, flip rate and a ship % interval (ARCHITECTURE.md, 'Samples and juries').",
    ),
]


ThinkingOpt = Annotated[
    bool,
    typer.Option(
        "--thinking/--no-thinking",
        help="Let models that think by default do so (slower decisions, more output tokens, "
        "no forced tool call). Default: thinking off where the model allows it.",
    ),
]


def split_ids(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


SiteSettingsOpt = Annotated[
    Path | None,
    typer.Option(
        "--site-settings",
        help="Site settings YAML (name, base_url, description, newsletter); default ./site.yaml.",
    ),
]
