"""What stability sampling and juries cost, against the emulator run out of process.

    python bench/sampling.py [--tools 6] [--samples 5] [--latency-scale 0.5]

For `--samples K`: the run's cost against its caching floor (every shared segment written once,
each tool block once per pair, the rest read), against the no-cache baseline, and against K
separate runs of one sample each (what a script that loops `panel run` K times pays; the first
of them fills the result cache, so the others are forced with `--no-cache`). For a jury of
three emulated models: each model's cost against its own floor. Prints a table, then one JSON
line. Every figure is the engine's own report, checked against what the emulator billed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Emulator, generated_tools

JURY = ("emulator:claude-sonnet-5", "emulator:gpt-5.6-luna", "emulator:claude-haiku-4-5")


async def _run(tools: list[Any], runs: Path, url: str, **options: Any) -> Any:
    from panel.providers.select import EmulatorSettings
    from panel.run.engine import RunOptions, run_panel

    opts = RunOptions(
        runs_dir=runs,
        concurrency=16,
        use_result_cache=False,
        emulator=EmulatorSettings(url=url),
        **options,
    )
    return await run_panel(tools, opts, env={})


def _output_usd(manifest: Any) -> float:
    from panel.modeltable import model_info

    info = model_info(manifest.model.partition(":")[2])
    assert info is not None and info.prices is not None
    return float(manifest.usage.output_tokens * info.prices.output / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=6)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--latency-scale", type=float, default=0.5)
    args = parser.parse_args()
    tools = generated_tools(args.tools, seed=14)
    emulator = Emulator(latency_scale=args.latency_scale)
    try:
        url = emulator.wait_ready()
        with tempfile.TemporaryDirectory() as tmp:
            runs = Path(tmp)
            model = "emulator:claude-sonnet-5"
            emulator.reset()
            sampled = asyncio.run(_run(tools, runs, url, model=model, samples=args.samples))
            billed = emulator.stats()["billed_usd"]
            emulator.reset()
            separate = [
                asyncio.run(_run(tools, runs, url, model=model)).manifest
                for _ in range(args.samples)
            ]
            singles = [m.cost.usd for m in separate]
            emulator.reset()
            jury = asyncio.run(_run(tools, runs, url, jury=JURY))
            jury_billed = emulator.stats()["billed_usd"]
    finally:
        emulator.close()
    c = sampled.manifest.cost
    # Output is the same whichever way the draws are asked; input is what caching changes.
    input_sampled = c.usd - _output_usd(sampled.manifest)
    input_separate = sum(m.cost.usd - _output_usd(m) for m in separate)
    rows = [
        ("run", "requests", "cost", "floor", "cost ÷ floor", "no-cache"),
        (
            f"--samples {args.samples}",
            str(sampled.manifest.cache_stats.requests),
            f"${c.usd:.4f}",
            f"${c.floor_usd:.4f}",
            f"{c.usd / c.floor_usd:.4f}",
            f"${c.no_cache_usd:.4f}",
        ),
        (f"{args.samples} runs of one sample", "", f"${sum(singles):.4f}", "", "", ""),
    ]
    for name, member in jury.manifest.members.items():
        mc = member.cost
        reqs = member.cache_stats.requests if member.cache_stats else 0
        rows.append(
            (
                f"jury: {name}",
                str(reqs),
                f"${mc.usd:.4f}",
                f"${mc.floor_usd:.4f}",
                f"{mc.usd / mc.floor_usd:.4f}" if mc.floor_usd else "—",
                f"${mc.no_cache_usd:.4f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    members = {
        name: round(m.cost.usd / m.cost.floor_usd, 4) if m.cost.floor_usd else None
        for name, m in jury.manifest.members.items()
    }
    print(
        json.dumps(
            {
                "tools": args.tools,
                "samples": args.samples,
                "samples_cost_vs_floor": round(c.usd / c.floor_usd, 4),
                "samples_cost_vs_no_cache": round(c.usd / c.no_cache_usd, 4),
                "samples_cost_vs_separate_runs": round(c.usd / sum(singles), 4),
                "samples_input_vs_separate_runs": round(input_sampled / input_separate, 4),
                "samples_billed_matches": abs(billed - c.usd) < 1e-6 * max(1.0, billed),
                "jury_cost_vs_floor": members,
                "jury_billed_matches": abs(jury_billed - jury.manifest.cost.usd)
                < 1e-6 * max(1.0, jury_billed),
            }
        )
    )


if __name__ == "__main__":
    main()
