"""panel's benchmarks against the emulator, run out of process with its latency model.

    python bench/run.py [--quick] [--plot docs/img/benchmarks.png] [--save results.json]

Prints a table and, last, one JSON line. Every ratio compares two measurements taken in this
run against the same emulator, so it holds on a noisy machine. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MODEL,
    ROOT,
    Emulator,
    generated_tools,
    ideal_makespan,
    lower_bound,
    machine,
    modelled,
    panel_request_params,
    params_digest,
)

KEYS = (
    "cost_vs_floor",
    "cost_vs_no_cache",
    "cost_vs_naive",
    "wall_vs_naive",
    "panel_latency_ratio",
    "first_decision_ratio",
    "throughput_ratio_c8",
    "throughput_ratio_c32",
    "throughput_ratio_c64",
    "cpu_ms_per_verdict",
    "peak_rss_mb_10k",
)


@dataclass(frozen=True)
class Profile:
    cost_tools: int
    cost_scale: float
    cost_concurrency: int
    latency_scale: float
    throughput_requests: dict[int, int]  # concurrency -> requests
    throughput_scales: dict[int, float]  # concurrency -> latency scale (see docs/benchmarks.md)
    alone_together: bool  # the lone calls at once, each under its own key (its own cache)
    memory_pairs: int | None


FULL = Profile(
    cost_tools=24,
    cost_scale=0.5,
    cost_concurrency=16,
    latency_scale=1.0,
    throughput_requests={8: 1000, 32: 1000, 64: 1000},
    throughput_scales={8: 0.06, 32: 0.15, 64: 0.3},
    alone_together=False,
    memory_pairs=10_000,
)
QUICK = Profile(
    cost_tools=20,
    cost_scale=0.08,
    cost_concurrency=20,
    latency_scale=0.3,
    # c=32 gets 8 waves at the full run's scale: with 4 the warm-up and the last partial wave
    # alone moved the ratio by ~0.05 between runs.
    throughput_requests={8: 64, 32: 256, 64: 128},
    throughput_scales={8: 0.05, 32: 0.15, 64: 0.3},
    alone_together=True,
    memory_pairs=None,
)
LEVELS = (8, 32, 64)


@dataclass
class Bench:
    emu: Emulator
    url: str
    runs_dir: Path
    profile: Profile
    table: list[tuple[str, str, str]] = field(default_factory=list)
    out: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self, section: str, name: str, value: str) -> None:
        self.table.append((section, name, value))
        print(f"  {name:<44} {value}", file=sys.stderr, flush=True)


# -- running panel --


class Recorder:
    """Timestamps of the engine's events, per pair."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], float] = {}
        self.decided: dict[tuple[str, str], float] = {}
        self.finished: dict[tuple[str, str], float] = {}

    def __call__(self, event: Any) -> None:
        from panel.run.engine import ReviewFinished, ReviewStarted, VerdictDelta

        now = time.perf_counter()
        if isinstance(event, ReviewStarted):
            self.started.setdefault((event.tool, event.persona), now)
        elif isinstance(event, VerdictDelta):
            key = (event.tool, event.persona)
            if key not in self.decided and isinstance(event.snapshot.get("ship"), bool):
                self.decided[key] = now
        elif isinstance(event, ReviewFinished):
            self.finished[(event.result.tool_slug, event.result.persona)] = now


@dataclass
class PanelRun:
    outcome: Any
    wall_s: float
    cpu_s: float
    emu_cpu_s: float | None
    billed_usd: float
    events: Recorder


async def run_panel_once(b: Bench, tools: list[Any], concurrency: int) -> PanelRun:
    from panel.providers.select import EmulatorSettings
    from panel.run.engine import RunOptions, run_panel

    options = RunOptions(
        model=f"emulator:{MODEL}",
        runs_dir=b.runs_dir,
        cwd=ROOT,
        concurrency=concurrency,
        use_result_cache=False,
        emulator=EmulatorSettings(url=b.url),
    )
    events = Recorder()
    e0 = b.emu.cpu_seconds()
    c0, t0 = time.process_time(), time.perf_counter()
    outcome = await run_panel(tools, options, events, env={})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    e1 = b.emu.cpu_seconds()
    failed = [r for r in outcome.results if r.status != "ok"]
    if failed or outcome.pending:
        raise SystemExit(f"bench: {len(failed)} pairs failed, {len(outcome.pending)} pending")
    billed = float(b.emu.stats()["billed_usd"])
    emu_cpu = None if e0 is None or e1 is None else e1 - e0
    return PanelRun(outcome, wall, cpu, emu_cpu, billed, events)


def _prices() -> Any:
    from panel.modeltable import model_info

    info = model_info(MODEL)
    assert info is not None and info.prices is not None
    return info.prices


# -- 1 + 2: cost against the floor, no-cache and the naive script --


async def bench_cost(b: Bench) -> None:
    from bench import naive

    p = b.profile
    print(
        f"cost: {p.cost_tools} tools x 4 personas, concurrency {p.cost_concurrency}, "
        f"latency scale {p.cost_scale}",
        file=sys.stderr,
        flush=True,
    )
    tools = generated_tools(p.cost_tools, seed=1)
    b.emu.reset_at(p.cost_scale)
    run = await run_panel_once(b, tools, p.cost_concurrency)
    m = run.outcome.manifest
    plan = m.cache_plan
    if plan is None or plan.warnings or not all(s.cacheable for s in plan.segments):
        raise SystemExit(f"bench: the shared blocks must be cacheable; plan: {plan}")
    prices = _prices()
    output_usd = m.usage.output_tokens * prices.output / 1e6
    actual_in = m.cost.usd - output_usd
    floor_in = m.cost.floor_usd - output_usd
    no_cache_in = m.cost.no_cache_usd - output_usd

    # The engine records the digest of each body it sent (before the SDK adds stream=true).
    bodies = panel_request_params(tools)
    if {params_digest(body) for body in bodies} != _sent_digests(run.outcome.run_dir):
        raise SystemExit("bench: the naive bodies differ from the ones panel sent")
    b.emu.reset()
    result = await naive.run(bodies, base_url=b.url, concurrency=p.cost_concurrency)
    naive_stats = b.emu.stats()
    naive_usd = float(naive_stats["billed_usd"])
    naive_out = sum(u["output_tokens"] for u in result.usage) * prices.output / 1e6
    panel_ships = [r.ship for r in run.outcome.results]
    if [v.get("ship") for v in result.verdicts] != panel_ships:
        raise SystemExit("bench: the naive script got different verdicts for the same bodies")

    b.out["cost_vs_floor"] = round(actual_in / floor_in, 4)
    b.out["cost_vs_no_cache"] = round(actual_in / no_cache_in, 4)
    b.out["cost_vs_naive"] = round(run.billed_usd / naive_usd, 4)
    b.out["wall_vs_naive"] = round(run.wall_s / result.wall_s, 4)
    stats = m.cache_stats
    b.detail["cost"] = {
        "pairs": len(run.outcome.results),
        "concurrency": p.cost_concurrency,
        "latency_scale": p.cost_scale,
        "panel_usd": run.billed_usd,
        "manifest_usd": m.cost.usd,
        "floor_usd": m.cost.floor_usd,
        "no_cache_usd": m.cost.no_cache_usd,
        "naive_usd": naive_usd,
        "output_usd": output_usd,
        "panel_input_usd": actual_in,
        "floor_input_usd": floor_in,
        "no_cache_input_usd": no_cache_in,
        "naive_input_usd": naive_usd - naive_out,
        "panel_wall_s": run.wall_s,
        "naive_wall_s": result.wall_s,
        "panel_cache_writes": stats.write_tokens if stats else None,
        "naive_cache_writes": naive_stats["cache"]["write_tokens"],
        "naive_write_requests": sum(1 for u in result.usage if u["cache_write_tokens"]),
        "panel_write_requests": sum(1 for r in run.outcome.results if r.usage.cache_write_tokens),
        "cost_vs_floor_total": round(m.cost.usd / m.cost.floor_usd, 4),
        "cost_vs_no_cache_total": round(m.cost.usd / m.cost.no_cache_usd, 4),
        "naive_input_vs_panel_input": round((naive_usd - naive_out) / actual_in, 4),
    }
    d = b.detail["cost"]
    b.row("cost", "pairs (tools x personas)", f"{d['pairs']} at concurrency {p.cost_concurrency}")
    b.row("cost", "panel cost (billed by the emulator)", f"${run.billed_usd:.4f}")
    b.row("cost", "  of which input / floor input", f"${actual_in:.4f} / ${floor_in:.4f}")
    b.row("cost", "no-cache cost / input", f"${m.cost.no_cache_usd:.4f} / ${no_cache_in:.4f}")
    b.row("cost", "naive script cost / input", f"${naive_usd:.4f} / ${naive_usd - naive_out:.4f}")
    b.row(
        "cost",
        "cache-writing requests panel / naive",
        f"{d['panel_write_requests']} / {d['naive_write_requests']}",
    )
    b.row("cost", "input cost / floor (cost_vs_floor)", f"{b.out['cost_vs_floor']:.4f}")
    b.row("cost", "total cost / floor", f"{d['cost_vs_floor_total']:.4f}")
    b.row("cost", "input cost / no-cache (cost_vs_no_cache)", f"{b.out['cost_vs_no_cache']:.4f}")
    b.row("cost", "total cost / no-cache", f"{d['cost_vs_no_cache_total']:.4f}")
    b.row("cost", "panel / naive cost (cost_vs_naive)", f"{b.out['cost_vs_naive']:.4f}")
    b.row(
        "cost",
        "panel / naive wall",
        f"{run.wall_s:.2f}s / {result.wall_s:.2f}s = {b.out['wall_vs_naive']:.3f}",
    )


def _sent_digests(run_dir: Path) -> set[str]:
    lines = (run_dir / "attempts.jsonl").read_text().splitlines()
    return {json.loads(line)["request_digest"] for line in lines if line.strip()}


# -- 3 + 4: one panel's latency and the time to each first decision --


async def bench_latency(b: Bench) -> None:
    from panel.inputs.tools import load_tools

    scale = b.profile.latency_scale
    print(f"latency: one tool x 4 personas, latency scale {scale}", file=sys.stderr, flush=True)
    tool = load_tools([ROOT / "examples" / "tools" / "cursor.yaml"]).tools[0]
    b.emu.reset_at(scale)
    run = await run_panel_once(b, [tool], 8)
    results = run.outcome.results
    alone: dict[str, float] = {}
    alone_marks: dict[str, tuple[float, float]] = {}
    pairs = list(zip(panel_request_params([tool]), results, strict=True))
    if b.profile.alone_together:  # cold caches too: the emulator's cache is per API key
        b.emu.reset()
        calls = (_alone(b.url, body, f"alone-{r.persona}") for body, r in pairs)
        timed = await asyncio.gather(*calls)
    else:
        timed = []
        for body, _r in pairs:
            b.emu.reset()  # a cold cache: this call writes every prefix itself, as the leader did
            timed.append(await _alone(b.url, body))
    for (_body, r), (total, first, tool_byte) in zip(pairs, timed, strict=True):
        alone[r.persona] = total
        alone_marks[r.persona] = (first, tool_byte)
    slowest = max(alone.values())
    ratios, vs_tool_byte = {}, {}
    for r in results:
        key = (r.tool_slug, r.persona)
        to_decision = run.events.decided[key] - run.events.started[key]
        ratios[r.persona] = to_decision / modelled(r.usage, scale).ttft
        vs_tool_byte[r.persona] = to_decision / alone_marks[r.persona][1]
    span = max(run.events.finished.values()) - min(run.events.started.values())
    b.out["panel_latency_ratio"] = round(run.wall_s / slowest, 4)
    b.out["first_decision_ratio"] = round(max(ratios.values()), 4)
    b.detail["latency"] = {
        "latency_scale": scale,
        "panel_wall_s": run.wall_s,
        "panel_request_span_s": span,
        "alone_s": alone,
        "modelled_alone_s": {r.persona: modelled(r.usage, scale).duration for r in results},
        "first_decision_ratio": ratios,
        "first_decision_ratio_mean": statistics.mean(ratios.values()),
        "alone_first_event_s": {k: v[0] for k, v in alone_marks.items()},
        "alone_first_tool_byte_s": {k: v[1] for k, v in alone_marks.items()},
        "decision_vs_first_tool_byte": vs_tool_byte,
    }
    b.row("latency", "panel wall (run_panel, 4 personas)", f"{run.wall_s:.3f}s")
    b.row("latency", "  first request sent -> last verdict", f"{span:.3f}s")
    b.row(
        "latency", "slowest persona alone", f"{slowest:.3f}s ({max(alone, key=lambda k: alone[k])})"
    )
    b.row(
        "latency",
        "panel / slowest alone (panel_latency_ratio)",
        f"{b.out['panel_latency_ratio']:.4f}",
    )
    b.row(
        "latency",
        "time to ship/skip / TTFT, max (mean)",
        f"{b.out['first_decision_ratio']:.3f} ({statistics.mean(ratios.values()):.3f})",
    )
    first = statistics.mean(m[0] for m in alone_marks.values())
    tool_byte = statistics.mean(m[1] for m in alone_marks.values())
    b.row(
        "latency",
        "alone: first event / first tool byte (mean)",
        f"{first:.3f}s / {tool_byte:.3f}s (any thinking or text block comes first)",
    )
    b.row(
        "latency",
        "time to ship/skip / first tool byte alone, max",
        f"{max(vs_tool_byte.values()):.3f}",
    )


async def _alone(url: str, body: dict[str, Any], key: str = "") -> tuple[float, float, float]:
    """Wall time of one streamed call; also when its first event and first tool byte came."""
    import anthropic

    from panel.providers.select import EMULATOR_KEY

    client = anthropic.AsyncAnthropic(api_key=key or EMULATOR_KEY, base_url=url, max_retries=0)
    try:
        t0 = time.perf_counter()
        stream = await client.messages.create(**body, stream=True)
        first = tool_byte = 0.0
        async for event in stream:
            now = time.perf_counter() - t0
            first = first or now
            delta = getattr(event, "delta", None)
            is_args = getattr(delta, "type", None) == "input_json_delta"
            if not tool_byte and is_args and delta.partial_json:
                tool_byte = now
        return time.perf_counter() - t0, first, tool_byte
    finally:
        await client.close()


# -- 5 + 6: batch throughput against the ideal, and the client's CPU --


async def bench_throughput(b: Bench) -> None:
    p = b.profile
    n = max(p.throughput_requests.values())
    all_tools = generated_tools(n // 4, seed=2)
    cpu_total = verdicts = 0.0
    levels: dict[str, Any] = {}
    for c in LEVELS:
        scale = p.throughput_scales[c]
        tools = all_tools[: p.throughput_requests[c] // 4]
        print(
            f"throughput: {4 * len(tools)} requests, concurrency {c}, latency scale {scale}",
            file=sys.stderr,
            flush=True,
        )
        b.emu.reset_at(scale)
        run = await run_panel_once(b, tools, c)
        durations = [modelled(r.usage, scale).duration for r in run.outcome.results]
        ideal = ideal_makespan(durations, c)
        span = max(run.events.finished.values()) - min(run.events.started.values())
        ratio = run.wall_s / ideal
        cpu_total += run.cpu_s
        verdicts += len(run.outcome.results)
        b.out[f"throughput_ratio_c{c}"] = round(ratio, 4)
        levels[str(c)] = {
            "latency_scale": scale,
            "requests": len(durations),
            "wall_s": run.wall_s,
            "request_span_s": span,
            "ideal_s": ideal,
            "lower_bound_s": lower_bound(durations, c),
            "mean_duration_s": statistics.mean(durations),
            "ratio": ratio,
            "span_ratio": span / ideal,
            "client_cpu_s": run.cpu_s,
            "emulator_cpu_s": run.emu_cpu_s,
            "max_in_flight": run.outcome.max_in_flight,
            "requests_per_s": len(durations) / run.wall_s,
        }
        emu = f", emulator {run.emu_cpu_s:.1f}s" if run.emu_cpu_s is not None else ""
        b.row(
            "throughput",
            f"c={c}: wall / ideal",
            f"{run.wall_s:.2f}s / {ideal:.2f}s = {ratio:.3f} (span {span / ideal:.3f})",
        )
        b.row(
            "throughput",
            f"c={c}: CPU client{', emulator' if emu else ''}",
            f"{run.cpu_s:.1f}s{emu} over {run.wall_s:.1f}s; peak in flight "
            f"{run.outcome.max_in_flight}",
        )
    b.out["cpu_ms_per_verdict"] = round(1000 * cpu_total / verdicts, 2)
    b.detail["throughput"] = {"requests": n, "levels": levels}
    b.row("client", "CPU per verdict (cpu_ms_per_verdict)", f"{b.out['cpu_ms_per_verdict']:.2f} ms")


# -- 7: memory for a 10,000-pair batch, in a child process --


def bench_memory(b: Bench) -> None:
    pairs = b.profile.memory_pairs
    if pairs is None:
        b.out["peak_rss_mb_10k"] = None
        b.row("memory", "peak RSS, 10,000 pairs", "skipped (--quick)")
        return
    print(f"memory: {pairs} pairs at latency 0 in a child process", file=sys.stderr, flush=True)
    b.emu.reset_at(0.0)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        b.url,
        "--pairs",
        str(pairs),
        "--runs-dir",
        str(b.runs_dir),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: memory child failed:\n{done.stderr[-2000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    b.emu.reset()  # drop the emulator's request log
    b.out["peak_rss_mb_10k"] = round(child["peak_rss_mb"], 1)
    b.detail["memory"] = child
    b.row(
        "memory",
        "peak RSS, 10,000 pairs (peak_rss_mb_10k)",
        f"{child['peak_rss_mb']:.0f} MB (after imports: {child['baseline_rss_mb']:.0f} MB)",
    )
    b.row(
        "memory",
        "  10,000 pairs at latency 0",
        f"{child['wall_s']:.0f}s wall, {child['cpu_s']:.0f}s client CPU "
        f"({1000 * child['cpu_s'] / pairs:.1f} ms/verdict)",
    )


def memory_child(url: str, pairs: int, runs_dir: Path) -> None:
    from panel.providers.select import EmulatorSettings
    from panel.run.engine import RunOptions, run_panel

    tools = generated_tools(pairs // 4, seed=3)
    baseline = _rss_mb()
    extra: dict[str, Any] = {}
    if "keep_results" in RunOptions.__dataclass_fields__:
        extra["keep_results"] = False  # a batch keeps its results on disk only
    options = RunOptions(
        model=f"emulator:{MODEL}",
        runs_dir=runs_dir,
        cwd=ROOT,
        concurrency=32,
        use_result_cache=False,
        emulator=EmulatorSettings(url=url),
        **extra,
    )
    c0, t0 = time.process_time(), time.perf_counter()
    outcome = asyncio.run(run_panel(tools, options, env={}))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(
        json.dumps(
            {
                "pairs": pairs,
                "status": outcome.manifest.status,
                "peak_rss_mb": peak_kb / 1024,
                "baseline_rss_mb": baseline,
                "wall_s": wall,
                "cpu_s": cpu,
                "keep_results": extra.get("keep_results", True),
            }
        )
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- output --


def print_table(b: Bench) -> None:
    width = max(len(name) for _, name, _ in b.table)
    section = ""
    for sec, name, value in b.table:
        if sec != section:
            print(f"\n[{sec}]")
            section = sec
        print(f"  {name:<{width}}  {value}")
    print()


def plot(b: Bench, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = b.detail["cost"]
    levels = b.detail["throughput"]["levels"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["panel", "naive script", "no cache", "caching floor"]
    values = [cost["panel_usd"], cost["naive_usd"], cost["no_cache_usd"], cost["floor_usd"]]
    bars = ax1.bar(names, values, color=["#2b6cb0", "#dd6b20", "#a0aec0", "#68d391"])
    ax1.bar_label(bars, labels=[f"${v:.3f}" for v in values], padding=2)
    ax1.set_ylabel("USD per run (input + output)")
    ax1.set_title(f"Cost of one run: {cost['pairs']} pairs, concurrency {cost['concurrency']}")
    conc = [int(c) for c in levels]
    ax2.plot(conc, [levels[str(c)]["ratio"] for c in conc], "o-", label="wall / ideal")
    ax2.plot(
        conc, [levels[str(c)]["span_ratio"] for c in conc], "s--", label="request span / ideal"
    )
    ax2.axhline(1.10, color="#c53030", linestyle=":", label="target 1.10")
    ax2.axhline(1.0, color="#718096", linewidth=0.8)
    for c in conc:
        ax2.annotate(
            f"{levels[str(c)]['requests_per_s']:.0f} req/s",
            (c, levels[str(c)]["ratio"]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(conc, [str(c) for c in conc])
    ax2.set_ylim(0.9, max(1.3, max(levels[str(c)]["ratio"] for c in conc) + 0.05))
    ax2.set_xlabel("concurrency")
    ax2.set_title(f"Throughput: up to {b.detail['throughput']['requests']} requests vs the ideal")
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main --


async def bench_all(b: Bench) -> None:
    await bench_cost(b)
    await bench_latency(b)
    await bench_throughput(b)


def main() -> None:
    parser = argparse.ArgumentParser(description="panel benchmarks against the emulator")
    parser.add_argument("--quick", action="store_true", help="smaller, under a minute")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    parser.add_argument("--save", type=Path, help="write every figure as JSON here")
    parser.add_argument("--memory-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--runs-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.pairs, args.runs_dir or Path(tempfile.mkdtemp()))
        return
    profile = QUICK if args.quick else FULL
    started = time.perf_counter()
    emu = Emulator(latency_scale=0.0)  # started first: it imports while we do
    try:
        url = emu.wait_ready()
        with tempfile.TemporaryDirectory(prefix="panel-bench-") as tmp:
            b = Bench(emu=emu, url=url, runs_dir=Path(tmp), profile=profile)
            b.detail["machine"] = machine()
            b.detail["profile"] = profile.__dict__
            asyncio.run(bench_all(b))
            bench_memory(b)
    finally:
        emu.close()
    b.detail["bench_wall_s"] = round(time.perf_counter() - started, 1)
    print_table(b)
    m = b.detail["machine"]
    print(
        f"machine: {m['nproc']} cores, {m['memory_gb']} GB, Python {m['python']}; "
        f"bench took {b.detail['bench_wall_s']}s"
    )
    if args.plot:
        plot(b, args.plot)
    if args.save:
        args.save.write_text(json.dumps({"result": b.out, "detail": b.detail}, indent=2) + "\n")
    print(json.dumps({k: b.out.get(k) for k in KEYS}))


if __name__ == "__main__":
    main()
