"""The live terminal display of a run: one row per pair, filled in as verdicts stream.

The ship decision shows the moment it streams in; the headline and the quote grow as they
arrive. Rendered on stderr, so `--json` keeps stdout clean. Without a terminal (CI, pipes) it
prints one line per finished verdict instead of redrawing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel as Box
from rich.table import Table
from rich.text import Text

from panel.inputs.textsafety import terminal_safe
from panel.lint.report import count_line
from panel.redact import redact_secrets
from panel.run.events import (
    Event,
    ReviewFinished,
    ReviewRetrying,
    ReviewStarted,
    RunOutcome,
    RunStarted,
    VerdictDelta,
)
from panel.runformat import PairResult


def _shown(text: str) -> str:
    """Model- or file-written text as safe rich markup: no terminal controls, no markup."""
    return escape(terminal_safe(text))


SYNTHETIC_BANNER = "SYNTHETIC — verdicts written by the panel emulator, not by a model"


@dataclass
class _Row:
    tool: str
    persona: str
    state: str = "queued"
    ship: bool | None = None
    headline: str = ""
    quote: str = ""
    note: str = ""
    attempts: int = 0


@dataclass
class LiveDisplay:
    console: Console
    max_rows: int = 24
    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    started: RunStarted | None = None
    live: Live | None = None
    t0: float = field(default_factory=time.monotonic)
    last_refresh: float = 0.0

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=10, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._render(), refresh=True)
            self.live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
            if event.synthetic:
                self._line(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
            for note in event.notes:
                self._line(f"[yellow]note:[/] {_shown(note)}")
            for tool, persona in event.pairs:
                self.rows.setdefault((tool, persona), _Row(tool, persona))
        elif isinstance(event, ReviewStarted):
            row = self._row(event.tool, event.persona)
            row.state, row.attempts = "streaming", event.attempt
        elif isinstance(event, VerdictDelta):
            row = self._row(event.tool, event.persona)
            snap = event.snapshot
            if isinstance(snap.get("ship"), bool):
                row.ship = snap["ship"]
            row.headline = redact_secrets(str(snap.get("headline") or row.headline), growing=True)
            row.quote = redact_secrets(str(snap.get("quote") or row.quote), growing=True)
        elif isinstance(event, ReviewRetrying):
            self._row(event.tool, event.persona).note = f"retrying: {event.error_class}"
        elif isinstance(event, ReviewFinished):
            self._finish(event.result)
        self._refresh()

    def _row(self, tool: str, persona: str) -> _Row:
        return self.rows.setdefault((tool, persona), _Row(tool, persona))

    def _finish(self, r: PairResult) -> None:
        row = self._row(r.tool_slug, r.persona)
        row.state = "reused" if r.reused else r.status
        row.ship, row.headline, row.quote = r.ship, r.headline or "", r.quote or ""
        row.note = f"{r.error_class}: {r.error}" if r.error_class else ""
        if self.live is None:
            verdict = {True: "SHIP", False: "NO SHIP", None: r.status.upper()}[r.ship]
            label = " [synthetic]" if r.synthetic else ""
            detail = _shown(r.headline or row.note)
            self._line(f"{_shown(r.tool)} · {r.persona}: [bold]{verdict}[/]{label} — {detail}")

    def _line(self, markup: str) -> None:
        (self.live.console if self.live else self.console).print(
            markup, highlight=False, soft_wrap=True
        )

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.live is not None and now - self.last_refresh > 0.08:
            self.last_refresh = now
            self.live.update(self._render())

    def _render(self) -> Group:
        table = Table(expand=True, show_lines=False, pad_edge=False)
        table.add_column("tool", ratio=2, no_wrap=True, overflow="ellipsis")
        table.add_column("persona", ratio=1, no_wrap=True)
        table.add_column("verdict", ratio=1, no_wrap=True)
        table.add_column("headline / quote (streaming)", ratio=6, overflow="fold")
        active = [r for r in self.rows.values() if r.state not in ("queued",)]
        shown = (active or list(self.rows.values()))[-self.max_rows :]
        for row in shown:
            table.add_row(_shown(row.tool), row.persona, _verdict(row), _body(row))
        done = sum(r.state in ("ok", "failed", "refused", "reused") for r in self.rows.values())
        footer = Text(
            f"{done}/{len(self.rows)} verdicts · {time.monotonic() - self.t0:.1f}s", style="dim"
        )
        parts: list[Any] = [table, footer]
        if self.started and self.started.synthetic:
            parts.insert(0, Text(SYNTHETIC_BANNER, style="bold yellow"))
        return Group(*parts)


def _verdict(row: _Row) -> Text:
    if row.ship is True:
        return Text("SHIP", style="bold green")
    if row.ship is False:
        return Text("NO SHIP", style="bold red")
    styles = {"failed": "red", "refused": "magenta", "streaming": "cyan", "queued": "dim"}
    return Text(row.state, style=styles.get(row.state, ""))


def _body(row: _Row) -> Text:
    text = Text()
    if row.headline:
        text.append(terminal_safe(row.headline), style="bold")
    if row.quote:
        tail = row.quote if len(row.quote) < 220 else "…" + row.quote[-219:]
        text.append("\n" + terminal_safe(tail), style="dim")
    if row.note:
        text.append(("\n" if text else "") + terminal_safe(row.note), style="yellow")
    return text


def render_summary(console: Console, outcome: RunOutcome) -> None:
    """The final report: verdicts, then cost and cache figures side by side."""
    m = outcome.manifest
    if m.synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    table = Table(title=f"run {m.run_id} · {m.model}", expand=True)
    for col in ("tool", "persona", "verdict", "headline"):
        table.add_column(col, overflow="fold")
    for r in outcome.results:
        verdict = {True: "[green]SHIP[/]", False: "[red]NO SHIP[/]"}.get(r.ship, r.status)  # type: ignore[arg-type]
        detail = r.headline or f"{r.error_class}: {r.error}"
        reused = " [dim](reused)[/]" if r.reused else ""
        table.add_row(_shown(r.tool), r.persona, verdict + reused, _shown(detail or ""))
    console.print(table)
    c, s = m.cost, m.cache_stats
    figures = Table.grid(padding=(0, 3))
    figures.add_row(
        "cost (actual)",
        f"${c.usd:.4f}",
        "caching floor",
        f"${c.floor_usd:.4f}",
        "no-cache baseline",
        f"${c.no_cache_usd:.4f}",
    )
    if s is not None:
        figures.add_row(
            "requests",
            str(s.requests),
            "reading cache",
            str(s.requests_reading_cache),
            "tokens read / written / uncached",
            f"{s.read_tokens} / {s.write_tokens} / {s.uncached_tokens}",
        )
    note = (
        ""
        if c.known
        else "\n[yellow]some prices or usage were unknown: cost figures are incomplete[/]"
    )
    console.print(Box(figures, title="cost and cache", expand=False), note)
    if outcome.pending:
        runs = Path(outcome.run_dir).parent
        where = "" if runs.resolve() == Path("runs").resolve() else f" --runs-dir {runs}"
        console.print(
            f"[yellow]{len(outcome.pending)} pairs pending[/] (run {m.run_id} is {m.status}): "
            f"finish with: panel run --resume {m.run_id}{escape(where)}",
            soft_wrap=True,
        )
    if outcome.lint is not None:
        style = "yellow" if outcome.lint.counts.findings else "green"
        more = f" — details: panel lint {m.run_id}" if outcome.lint.counts.findings else ""
        console.print(
            f"[{style}]lint (house rules):[/] {_shown(count_line(outcome.lint))}{more}",
            soft_wrap=True,
        )
    console.print(f"run folder: {outcome.run_dir}")


def outcome_json(outcome: RunOutcome) -> dict[str, Any]:
    """The `--json` contract of `panel run` (README, docs/formats.md)."""
    m = outcome.manifest
    return {
        "run_id": m.run_id,
        "run_dir": str(outcome.run_dir),
        "model": m.model,
        "synthetic": m.synthetic,
        "status": m.status,
        "results": [
            {
                "tool": r.tool,
                "tool_slug": r.tool_slug,
                "persona": r.persona,
                "status": r.status,
                "ship": r.ship,
                "confidence": r.confidence,
                "headline": r.headline,
                "quote": r.quote,
                "rubric": r.rubric,
                "error_class": r.error_class,
                "error": r.error,
                "flags": r.flags,
                "lint": [f.model_dump() for f in r.lint],
                "reused": r.reused,
                "attempts": r.attempts,
                "synthetic": r.synthetic,
                "usage": r.usage.model_dump(exclude={"known"}),
            }
            for r in outcome.results  # in run order: tools, then personas in display order
        ],
        "pending": [{"tool": t, "persona": p} for t, p in outcome.pending],
        "reused": outcome.reused,
        "requested": outcome.requested,
        "cost": m.cost.model_dump(),
        "cache_plan": m.cache_plan.model_dump() if m.cache_plan else None,
        "cache_stats": m.cache_stats.model_dump() if m.cache_stats else None,
        "lint": lint_json(outcome),
    }


def lint_json(outcome: RunOutcome) -> dict[str, Any] | None:
    """The run's lint counts and its run-level findings (per-verdict ones are on each result)."""
    if outcome.lint is None:
        return None
    report = outcome.lint
    return {
        "findings": report.counts.findings,
        "verdicts_with_findings": report.counts.verdicts_with_findings,
        "by_check": report.counts.by_check,
        "run": [f.model_dump() for f in report.run],
        "file": str(Path(outcome.run_dir) / "lint.json"),
    }
