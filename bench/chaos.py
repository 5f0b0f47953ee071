"""Chaos: a seeded batch of faulty upstream requests against the emulator; prove nothing is lost.

    python bench/chaos.py [--tools 400] [--concurrency 32] [--seed 7]

Runs every built-in persona on N generated tools through the real Anthropic provider path
(a canary API key, ANTHROPIC_BASE_URL pointing at an in-process emulator) with a seeded fault
plan covering every fault class except the two that stop a run on purpose (spend_cap, auth).
Then it cross-checks three ledgers — results.jsonl, attempts.jsonl and the emulator's own
request log — prints a table, and, last, one JSON line with the figures docs/reliability.md
quotes. Targets: lost, duplicates, truncated_accepted, secret_hits all 0; max_in_flight <=
concurrency_cap; requests_per_pair_max (requests the provider ran: every status but 429) <=
1 + the retry limit, and rate_limited_per_pair_max <= the separate 429 budget.

A second, shorter phase throws the edges of issue 12 at the CLI (`python -m panel`, as a user
runs it): upstreams that stay silent, send only headers, stream forever, stream huge deltas,
send one line that never ends (plain or gzip), echo the key back in an error or write it into a
verdict (tests/hardening/hostile_upstream.py),
and a tool folder holding a FIFO, a NUL byte and symlinks to /proc/self/environ and /dev/stdin,
on all three wires; then it asks
`panel publish` to use the runs folder, a hand-written folder, the working directory and its
parent as the site. Its figures: `hangs` (commands that did not end within their deadlines: 0),
`hostile_pairs_ended` (bad pairs that ended as a classified failure), `leaks_found` (the canary
key anywhere on disk or in the output: 0), `files_destroyed` (hand-written workspace files,
run files, or files beside the workspace changed or gone afterwards: 0), `unsafe_sites_refused`
(of `unsafe_sites`: refused with one line and exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ helpers

from panel.emulator.faults import FAULT_NAMES
from panel.emulator.runner import run_emulator
from panel.emulator.state import EmulatorConfig
from panel.inputs.personas import load_personas
from panel.inputs.tools import load_tools
from panel.inputs.workspace import persona_dirs
from panel.run.engine import RunOptions, run_panel
from panel.run.retry import RetryLimits

CANARY = "sk-ant-canary-chaos-5e1d0c9a77b34f21"
RATES = {
    "overloaded": 0.03,
    "rate_limited:1": 0.01,
    "server_error": 0.02,
    "overloaded_midstream": 0.02,
    "error_after_partial": 0.02,
    "reset_midstream": 0.02,
    "stall": 0.01,
    "eof_early": 0.03,
    "garbage": 0.005,
    "max_tokens": 0.01,
    "invalid_json": 0.01,
    "schema_violation": 0.01,
    "no_tool_call": 0.01,
    "refusal": 0.005,
    "missing_usage": 0.01,
}
# A verdict may come only from an attempt whose stream ended whole (missing usage is accounting).
NOT_A_VERDICT = set(RATES) - {"missing_usage", "rate_limited:1"} | {"rate_limited"}
_NAME = re.compile(r"name: (Chaos Tool \d+)\n")
_PERSONA = re.compile(r'<persona id="([^"]+)"')


def _write_tools(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"tool-{i:04d}.yaml").write_text(
            f"name: Chaos Tool {i:04d}\ntagline: tool number {i} under chaos\npricing: Free\n"
            f"description: Chaos Tool {i:04d} formats configuration files and checks them in CI; "
            f"variant {i * 7919 % 1000}.\n"
        )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _pair_of(body: dict[str, Any]) -> tuple[str, str] | None:
    text = "\n".join(_strings(body))
    tool, persona = _NAME.search(text), _PERSONA.search(text)
    if tool is None or persona is None:
        return None
    return tool.group(1), persona.group(1)


async def chaos(n_tools: int, concurrency: int, seed: int, work: Path) -> dict[str, Any]:
    assert {name.partition(":")[0] for name in RATES} == FAULT_NAMES - {"spend_cap", "auth"}
    tools_dir, runs = work / "tools", work / "runs"
    tools_dir.mkdir()
    _write_tools(tools_dir, n_tools)
    loaded = load_tools([tools_dir])
    personas = [p.id for p in load_personas(persona_dirs(work))]
    plan = ",".join(f"{k}={v}" for k, v in RATES.items())
    config = EmulatorConfig.from_cli(seed=seed, latency_scale=0.0, faults=plan)
    limits = RetryLimits(base_delay=0.01, max_delay=0.05)
    with run_emulator(EmulatorConfig(**{**config.__dict__, "stall_seconds": 2.0})) as emu:
        env = {"ANTHROPIC_API_KEY": CANARY, "ANTHROPIC_BASE_URL": emu.base_url}
        options = RunOptions(
            model="anthropic:claude-sonnet-5",
            runs_dir=runs,
            cwd=work,
            concurrency=concurrency,
            retry=limits,
            idle_timeout=0.3,
            use_result_cache=True,
        )
        started = time.monotonic()
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            outcome = await run_panel(loaded.tools, options, env=env)
        elapsed = time.monotonic() - started
        stats, requests = emu.stats(), emu.requests()
    name_of = {t.slug: t.spec.name for t in loaded.tools}
    all_pairs = {(t.spec.name, p) for t in loaded.tools for p in personas}
    lines = [
        json.loads(x) for x in (outcome.run_dir / "results.jsonl").read_text().splitlines() if x
    ]
    per_pair = Counter((name_of[r["tool_slug"]], r["persona"]) for r in lines)
    pending = {(name_of[s], p) for s, p in outcome.pending}
    lost = sum(1 for pair in all_pairs if per_pair[pair] == 0 and pair not in pending) + len(
        pending
    )
    duplicates = sum(n - 1 for n in per_pair.values() if n > 1)
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for req in sorted(requests, key=lambda r: r["time"]):
        pair = _pair_of(req["body"])
        if pair is not None:
            by_pair.setdefault(pair, []).append(req)
    ok = {(name_of[r["tool_slug"]], r["persona"]) for r in lines if r["status"] == "ok"}
    truncated_accepted = sum(
        1 for pair in ok if by_pair.get(pair) and by_pair[pair][-1]["fault"] in NOT_A_VERDICT
    )
    hits = _files_containing(work, CANARY.encode())
    secret_hits = len(hits) + log.getvalue().count(CANARY) + json.dumps(requests).count(CANARY)
    statuses = Counter(
        r["status"] + (f":{r['error_class']}" if r.get("error_class") else "") for r in lines
    )
    return {
        "table": {
            "elapsed_s": round(elapsed, 1),
            "results_by_status": dict(sorted(statuses.items())),
            "faults_by_name": dict(sorted(stats["by_fault"].items())),
            "http_status": dict(sorted(stats["by_status"].items())),
            "run_status": outcome.manifest.status,
        },
        "figures": {
            "pairs": len(all_pairs),
            "requests": stats["requests"],
            "faults_injected": stats["faults_injected"],
            "fault_classes": len(stats["by_fault"]),
            "lost": lost,
            "duplicates": duplicates,
            "truncated_accepted": truncated_accepted,
            "secret_hits": secret_hits,
            "max_in_flight": stats["max_in_flight"],
            "concurrency_cap": concurrency,
            "requests_per_pair_max": max(
                (sum(r["status"] != 429 for r in v) for v in by_pair.values()), default=0
            ),
            "retry_limit": limits.max_attempts - 1,
            "rate_limited_per_pair_max": max(
                (sum(r["status"] == 429 for r in v) for v in by_pair.values()), default=0
            ),
            "rate_limited_limit": limits.max_rate_limited,
        },
    }


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    ]


HOSTILE_TOOLS = ("Silent", "Headers", "Endless", "Huge", "Oneline", "Zipline", "Echo")
# The CLI's deadlines for this phase come from the environment (PANEL_STREAM_LIMITS): short,
# so a phase of five hostile upstreams takes seconds; a command still running after
# HANG_AFTER seconds counts as a hang and is killed.
HANG_AFTER = 60.0


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.is_fifo()
    }


def _edges(work: Path) -> dict[str, Any]:
    """Phase two: hostile upstreams and hostile input files, through the real CLI."""
    from tests.hardening.hostile_upstream import hostile_upstream

    work.mkdir()
    tools = work / "tools"
    tools.mkdir()
    for name in (*HOSTILE_TOOLS, "Plain", "Parrot"):  # Parrot: a verdict quoting the key
        (tools / f"{name.lower()}.yaml").write_text(
            f"name: {name} Tool\ntagline: an edge case\npricing: Free\n"
            f"description: {name} Tool formats configuration files and checks them in CI.\n"
        )
    (tools / "nul.yaml").write_bytes(b"name: Nul\x00 Tool\ntagline: t\npricing: Free\n")
    os.mkfifo(tools / "fifo.yaml")
    (tools / "environ.yaml").symlink_to("/proc/self/environ")
    (tools / "stdin.yaml").symlink_to("/dev/stdin")
    notes = work / "docs"
    notes.mkdir()
    (notes / "hand-written.md").write_text("An editor's notes: panel must never touch these.\n")
    before = _snapshot(work)
    hangs, ended, outputs = 0, 0, []
    config = EmulatorConfig.from_cli(seed=1, latency_scale=0.0, faults="")
    with run_emulator(config) as emu, hostile_upstream(emu.base_url) as upstream:
        procs = []
        for model, key, url_var, suffix in (
            ("anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
            ("openai:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
            ("openai:gpt-6-astra", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ):
            env = {
                **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
                key: CANARY,
                url_var: upstream.base_url + suffix,
                "PANEL_STREAM_LIMITS": "first_byte=1,idle=1,total=2",
            }
            cmd = [sys.executable, "-m", "panel", "run", "tools", "--model", model,
                   "-p", "skeptic", "--runs-dir", f"runs-{model.split(':')[1]}", "--json",
                   "--no-cache"]  # fmt: skip
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=work,
                    env=env,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        started = time.monotonic()
        for proc in procs:
            try:
                out, err = proc.communicate(
                    timeout=max(1.0, HANG_AFTER - (time.monotonic() - started))
                )
            except subprocess.TimeoutExpired:
                hangs += 1
                proc.kill()
                out, err = proc.communicate()
            outputs.append(out + err)
            try:
                results = json.loads(out).get("results", [])
            except ValueError:
                continue
            ended += sum(
                1
                for r in results
                if r.get("status") == "failed" and r.get("tool", "").split()[0] in HOSTILE_TOOLS
            )
    # Publishing onto what panel does not own: the runs, a hand-written folder, the working
    # directory and its parent. Each must be refused (exit 2) with nothing touched.
    with_runs = _snapshot(work)
    outside = _snapshot(work.parent)
    refused = 0
    targets = ("runs-gpt-5.6-luna", "docs", ".", "..")
    for site in targets:
        proc = subprocess.run(
            [sys.executable, "-m", "panel", "publish", "latest", "--site", site,
             "--runs-dir", "runs-gpt-5.6-luna", "--allow-synthetic", "--allow-incomplete"],
            cwd=work, text=True, capture_output=True, timeout=HANG_AFTER, check=False,
        )  # fmt: skip
        refused += proc.returncode == 2 and proc.stderr.count("\n") == 1
    leaks = _files_containing(work, CANARY.encode())
    leaks_found = len(leaks) + sum(o.count(CANARY) for o in outputs)
    after = _snapshot(work)
    destroyed = sum(1 for path, digest in before.items() if after.get(path) != digest)
    destroyed += sum(1 for path, digest in with_runs.items() if after.get(path) != digest)
    around = _snapshot(work.parent)
    destroyed += sum(1 for path, digest in outside.items() if around.get(path) != digest)
    return {
        "hangs": hangs,
        "hostile_pairs_ended": ended,
        "hostile_pairs": 3 * len(HOSTILE_TOOLS),
        "leaks_found": leaks_found,
        "files_destroyed": destroyed,
        "unsafe_sites_refused": refused,
        "unsafe_sites": len(targets),
        "hostile_upstream_hits": dict(sorted(upstream.hits.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=420)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="panel-chaos-") as tmp:
        report = asyncio.run(chaos(args.tools, args.concurrency, args.seed, Path(tmp)))
        edges = _edges(Path(tmp) / "edges")
    table, figures = report["table"], report["figures"]
    table["hostile_upstream_hits"] = edges.pop("hostile_upstream_hits")
    figures.update(edges)
    for key, value in {**table, **figures}.items():
        print(f"{key:>24}  {value}")
    failed = (
        figures["lost"]
        or figures["duplicates"]
        or figures["truncated_accepted"]
        or figures["secret_hits"]
        or figures["max_in_flight"] > figures["concurrency_cap"]
        or figures["requests_per_pair_max"] > 1 + figures["retry_limit"]
        or figures["hangs"]
        or figures["hostile_pairs_ended"] != figures["hostile_pairs"]
        or figures["leaks_found"]
        or figures["files_destroyed"]
        or figures["unsafe_sites_refused"] != figures["unsafe_sites"]
        or figures["rate_limited_per_pair_max"] > figures["rate_limited_limit"]
    )
    sys.stdout.write(json.dumps(figures) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
