"""The live terminal display of a run: one row per draw, filled in as verdicts stream.

With samples (`--samples K`) a row is one sample of a pair ("builder #2"), with a jury one
model's ("builder · gpt-5.6-luna"); the final report then shows each pair's verdict over its
draws (panel.run.report) — agreement, stability, the tools' ship % intervals.

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
from panel.run.report import VerdictReport, interval_phrase, verdict_report
from panel.runformat import DrawId, PairResult, RunManifest


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
    rows: dict[tuple[str, str, int, str], _Row] = field(default_factory=dict)
    several_models: bool = False
    several_samples: bool = False
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
            self.several_models = len({d.model for d in event.pairs}) > 1
            self.several_samples = any(d.sample for d in event.pairs)
            for draw in event.pairs:
                self._row(draw.tool_slug, draw.persona, draw.sample, draw.model)
        elif isinstance(event, ReviewStarted):
            row = self._row(event.tool, event.persona, event.sample, event.model)
            row.state, row.attempts = "streaming", event.attempt
        elif isinstance(event, VerdictDelta):
            row = self._row(event.tool, event.persona, event.sample, event.model)
            snap = event.snapshot
            if isinstance(snap.get("ship"), bool):
                row.ship = snap["ship"]
            row.headline = redact_secrets(str(snap.get("headline") or row.headline), growing=True)
            row.quote = redact_secrets(str(snap.get("quote") or row.quote), growing=True)
        elif isinstance(event, ReviewRetrying):
            row = self._row(event.tool, event.persona, event.sample, event.model)
            row.note = f"retrying: {event.error_class}"
        elif isinstance(event, ReviewFinished):
            self._finish(event.result)
        self._refresh()

    def _row(self, tool: str, persona: str, sample: int = 0, model: str = "") -> _Row:
        key = (tool, persona, sample, model if self.several_models else "")
        if key not in self.rows:
            self.rows[key] = _Row(tool, draw_label(DrawId(tool, persona, key[3], sample)))
        return self.rows[key]

    def _finish(self, r: PairResult) -> None:
        row = self._row(r.tool_slug, r.persona, r.sample, r.model)
        row.state = "reused" if r.reused else r.status
        row.ship, row.headline, row.quote = r.ship, r.headline or "", r.quote or ""
        row.note = f"{r.error_class}: {r.error}" if r.error_class else ""
        if self.live is None:
            verdict = {True: "SHIP", False: "NO SHIP", None: r.status.upper()}[r.ship]
            label = " [synthetic]" if r.synthetic else ""
            detail = _shown(r.headline or row.note)
            who = _shown(row.persona)
            self._line(f"{_shown(r.tool)} · {who}: [bold]{verdict}[/]{label} — {detail}")

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
            table.add_row(_shown(row.tool), _shown(row.persona), _verdict(row), _body(row))
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


def draw_label(draw: DrawId) -> str:
    """ "builder", "builder #2" (the second sample), "builder · gpt-5.6-luna" (a jury's model)."""
    label = draw.persona + (f" #{draw.sample + 1}" if draw.sample else "")
    if draw.model:
        label += f" · {draw.model.partition(':')[2] or draw.model}"
    return label


def render_summary(console: Console, outcome: RunOutcome) -> None:
    """The final report: verdicts, then cost and cache figures side by side."""
    m = outcome.manifest
    if m.synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    table = Table(title=f"run {m.run_id} · {m.model}", expand=True)
    for col in ("tool", "persona", "verdict", "headline"):
        table.add_column(col, overflow="fold")
    if m.samples > 1 or m.jury:
        render_verdicts(console, table, verdict_report(m, outcome.results), outcome.results)
    else:
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
    if m.members:
        console.print(_members_table(m))
    if outcome.pending:
        runs = Path(outcome.run_dir).parent
        where = "" if runs.resolve() == Path("runs").resolve() else f" --runs-dir {runs}"
        console.print(
            f"[yellow]{_pending(outcome)} pending[/] (run {m.run_id} is {m.status}): "
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


def render_verdicts(
    console: Console, table: Table, report: VerdictReport, results: list[PairResult]
) -> None:
    """Samples or a jury: one row per pair (its verdict over its draws), then the tools' ship %
    with intervals, the personas' flip rates and the jury's agreement."""
    shown = {r.draw: r for r in results}
    jury = bool(report.jury)
    for p in report.pairs:
        split = p.sampling
        quoted = shown.get(DrawId(p.tool_slug, p.persona, split.quoted_model, split.quoted_sample))
        verdict = {True: "[green]SHIP[/]", False: "[red]NO SHIP[/]"}.get(p.ship, p.status)  # type: ignore[arg-type]
        if p.ship is not None:
            verdict += f" · {split.label()}"
            if split.stable is not None:
                verdict += " · stable" if split.stable else " · [yellow]unstable[/]"
        detail = _shown((quoted.headline if quoted else None) or "")
        if jury and quoted is not None and quoted.headline:
            detail += f" [dim](quoted: {_shown(quoted.model)})[/]"
        table.add_row(_shown(p.tool), p.persona, verdict, detail)
    console.print(table)
    lines = [f"{_shown(t.tool)}: ship {interval_phrase(t)}" for t in report.tools]
    if report.flip_rates and report.samples > 1:
        rates = ", ".join(f"{p} {r:.0%}" for p, r in report.flip_rates.items())
        lines.append(f"flip rate by persona (votes against their own majority): {rates}")
    a = report.agreement
    if a is not None:
        kappa = "undefined" if a.fleiss_kappa is None else f"{a.fleiss_kappa:.2f}"
        agree = "—" if a.percent_agreement is None else f"{a.percent_agreement:.0%}"
        lines.append(
            f"jury agreement over {a.pairs} pairs: {agree} (pairwise), {a.unanimous} unanimous, "
            f"Fleiss' kappa {kappa}; dissents most: {a.dissents_most or 'nobody'}"
        )
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _members_table(m: RunManifest) -> Table:
    """A jury: each model's own cost against its own floor, and its own cache figures."""
    table = Table(title="each model of the jury (its own cache)", expand=False)
    table.add_column("model", no_wrap=True)  # a model id is never cut; the figures give way
    for col in ("cost", "floor", "no cache", "requests", "reading cache"):
        table.add_column(col, justify="right")
    for model, r in m.members.items():
        s = r.cache_stats
        table.add_row(
            _shown(model),
            f"${r.cost.usd:.4f}",
            f"${r.cost.floor_usd:.4f}",
            f"${r.cost.no_cache_usd:.4f}",
            str(s.requests) if s else "—",
            str(s.requests_reading_cache) if s else "—",
        )
    return table


def _pending(outcome: RunOutcome) -> str:
    draws = len(outcome.pending_draws)
    pairs = f"{len(outcome.pending)} pairs"
    return pairs if draws <= len(outcome.pending) else f"{pairs} ({draws} draws)"


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
                "model": r.model,
                "sample": r.sample,
            }
            for r in outcome.results  # in run order: tools, personas in display order, samples
        ],
        "pending": [
            {"tool": d.tool_slug, "persona": d.persona, "model": d.model, "sample": d.sample}
            for d in outcome.pending_draws
        ],
        "reused": outcome.reused,
        "requested": outcome.requested,
        "cost": m.cost.model_dump(),
        "cache_plan": m.cache_plan.model_dump() if m.cache_plan else None,
        "cache_stats": m.cache_stats.model_dump() if m.cache_stats else None,
        # Each pair's verdict over its draws, the tools' ship % intervals, flip rates, and a
        # jury's agreement (panel.run.report): with one draw per pair, the verdicts are the
        # results and the intervals null.
        "verdicts": verdict_report(m, outcome.results).model_dump(mode="json"),
        "members": {k: v.model_dump(mode="json") for k, v in m.members.items()},
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
