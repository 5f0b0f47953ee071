"""Shared pieces of the benchmark: the out-of-process emulator, generated tools, the exact
request bodies panel sends, and the latency model's arithmetic (the ideal a run is held to).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "claude-sonnet-5"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- the emulator, out of process -------------------------------------------------------------


class Emulator:
    """`panel emulator --port 0` in a child process; its URL is read from its first line."""

    def __init__(self, latency_scale: float = 1.0) -> None:
        cmd = [sys.executable, "-m", "panel", "emulator", "--port", "0"]
        cmd += ["--latency-scale", str(latency_scale)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.url = ""

    def wait_ready(self, timeout: float = 120.0) -> str:
        """Block until the child prints `listening on http://HOST:PORT`; return the URL."""
        if self.url:
            return self.url
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"emulator exited with {self.proc.wait()}")
            if line.startswith("listening on "):
                self.url = line.split()[-1].strip()
                return self.url
        raise RuntimeError("emulator did not start in time")

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if data is None else "POST"
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            out: dict[str, Any] = json.load(resp)
            return out

    def stats(self) -> dict[str, Any]:
        return self._call("/emulator/stats")

    def reset(self) -> None:
        self._call("/emulator/reset", {})

    def set_scale(self, scale: float) -> None:
        self._call("/emulator/config", {"latency_scale": scale})

    def reset_at(self, scale: float) -> None:
        self.set_scale(scale)
        self.reset()

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the emulator process so far (Linux /proc), else None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- generated tools ---------------------------------------------------------------------------

_NOUNS = (
    "pipeline",
    "agent",
    "gateway",
    "index",
    "cache",
    "scheduler",
    "tracer",
    "sandbox",
    "runner",
    "registry",
    "vault",
    "router",
    "notebook",
    "linter",
    "profiler",
    "queue",
    "proxy",
    "catalog",
)
_VERBS = (
    "indexes",
    "streams",
    "retries",
    "batches",
    "caches",
    "routes",
    "validates",
    "signs",
    "replays",
    "deduplicates",
    "versions",
    "shards",
    "audits",
    "compresses",
    "mirrors",
    "schedules",
)
_OBJECTS = (
    "model calls",
    "build artefacts",
    "prompt templates",
    "evaluation runs",
    "embeddings",
    "container images",
    "feature flags",
    "database migrations",
    "webhook events",
    "test fixtures",
    "API keys",
    "log lines",
    "traces",
    "notebooks",
    "datasets",
    "pull requests",
)
_QUALIFIERS = (
    "across regions",
    "behind a single endpoint",
    "without a daemon",
    "from the command line",
    "inside CI",
    "with a hosted dashboard",
    "for small teams",
    "under a usage-based plan",
    "with an open-source core",
    "on commodity hardware",
    "with role-based access",
    "offline",
)
_PRICING = ("Free", "Freemium", "Paid", "Open source", "Enterprise")


def generated_tools(n: int, seed: int = 7) -> list[Any]:
    """`n` plausible, distinct, deterministic tools (LoadedTool), 90–260 word descriptions."""
    from panel.inputs.tools import LoadedTool, ToolSpec, assign_slugs

    rng = random.Random(seed)
    specs = []
    for i in range(n):
        name = f"{rng.choice(_NOUNS).title()}{rng.choice(_NOUNS)} {i + 1}"
        sentences = []
        for _ in range(rng.randint(7, 20)):
            sentences.append(
                f"It {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}, "
                f"and {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}."
            )
        specs.append(
            ToolSpec(
                name=name,
                tagline=f"A {rng.choice(_NOUNS)} that {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}",
                description=f"{name} is a developer tool. " + " ".join(sentences),
                pricing=rng.choice(_PRICING),
            )
        )
    slugs = assign_slugs([s.name for s in specs])
    return [
        LoadedTool(
            spec=s,
            slug=slug,
            path=f"<generated:{slug}>",
            digest="sha256:" + hashlib.sha256(s.model_dump_json().encode()).hexdigest(),
        )
        for s, slug in zip(specs, slugs, strict=True)
    ]


# -- the request bodies panel sends -----------------------------------------------------------


def panel_request_params(tools: Sequence[Any], *, max_tokens: int = 2048) -> list[dict[str, Any]]:
    """The exact bodies panel's engine sends for every (tool, persona) pair, in its pair order.

    Mirrors the engine's request building (same renderer, same provider `build_params`, same
    breakpoint rule); the bench checks each body's digest against the run's attempts.jsonl.
    """
    from collections import Counter

    from panel.inputs.personas import load_personas, select_personas
    from panel.inputs.prompts import load_prompts, render_prompt
    from panel.inputs.workspace import persona_dirs, prompt_dirs
    from panel.providers.anthropic import AnthropicProvider
    from panel.providers.base import VerdictRequest
    from panel.verdict import verdict_tool_schema

    personas = select_personas(load_personas(persona_dirs(ROOT)), None)
    prompts = load_prompts(prompt_dirs(ROOT))
    pairs = [(t, p) for t in tools for p in personas]
    per_persona = Counter(p.id for _, p in pairs)
    schema = verdict_tool_schema()
    provider = AnthropicProvider(MODEL, api_key="unused")  # only build_params; never sends
    out = []
    for tool, persona in pairs:
        breakpoints: list[str] = (["house"] if len(pairs) > 1 else []) + (
            ["persona"] if per_persona[persona.id] > 1 else []
        )
        request = VerdictRequest(
            tool_slug=tool.slug,
            persona_id=persona.id,
            parts=render_prompt(persona, tool, prompts),
            tool_schema=schema,
            max_tokens=max_tokens,
            breakpoints=frozenset(breakpoints),  # type: ignore[arg-type]
        )
        out.append(provider.build_params(request))
    return out


def params_digest(params: dict[str, Any]) -> str:
    from panel.tokens import canonical_json

    return "sha256:" + hashlib.sha256(canonical_json(params).encode()).hexdigest()


# -- the latency model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Modelled:
    """One request as the emulator's latency model times it (seconds, at a given scale)."""

    ttft: float
    duration: float


def modelled(usage: Any, scale: float) -> Modelled:
    """TTFT and total duration for a request with this usage (panel.emulator.latency)."""
    from panel.modeltable import model_info

    info = model_info(MODEL)
    assert info is not None
    lat = info.latency
    uncached = usage.input_tokens + usage.cache_write_tokens  # cache reads are free
    ttft = scale * (lat.ttft_ms + lat.ms_per_1k_uncached * uncached / 1000) / 1000
    return Modelled(ttft=ttft, duration=ttft + scale * usage.output_tokens / lat.output_tps)


def ideal_makespan(durations: Sequence[float], slots: int) -> float:
    """The ideal wall time for these requests on `slots` parallel slots with zero overhead.

    Longest-first list scheduling (each request starts on the earliest free slot): it accounts
    for the last partial wave, which the bare bound max(Σd/C, max d) ignores. Never below that
    bound.
    """
    import heapq

    free = [0.0] * max(1, slots)
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(free, free[0] + d)
    return max(free)


def lower_bound(durations: Sequence[float], slots: int) -> float:
    return max(sum(durations) / max(1, slots), max(durations, default=0.0))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_1m_at_start": round(load, 2),
    }
