"""What a run tells its caller: typed events as they happen, and the outcome at the end.

The engine calls an EventSink with each event; the live display, the batch progress bar and
the benchmarks are sinks. Events are past-tense (something happened) or `…Delta` (a partial).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panel.lintformat import LintReport
from panel.runformat import CachePlan, DrawId, PairId, PairResult, RunManifest


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_dir: Path
    model: str
    synthetic: bool
    pairs: list[DrawId]  # the draws to ask: one per pair without samples or a jury
    reused: int
    plan: CachePlan | None  # a jury's: None, and each model's plan in `plans`
    notes: list[str]
    plans: dict[str, CachePlan | None] = field(default_factory=dict)  # a jury: model -> plan


@dataclass(frozen=True)
class ReviewStarted:
    tool: str
    persona: str
    attempt: int
    sample: int = 0
    model: str = ""


@dataclass(frozen=True)
class VerdictDelta:
    tool: str
    persona: str
    snapshot: dict[str, Any]
    sample: int = 0
    model: str = ""


@dataclass(frozen=True)
class ReviewRetrying:
    tool: str
    persona: str
    error_class: str
    message: str
    sample: int = 0
    model: str = ""


@dataclass(frozen=True)
class ReviewFinished:
    result: PairResult


Event = RunStarted | ReviewStarted | VerdictDelta | ReviewRetrying | ReviewFinished
EventSink = Callable[[Event], None]


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    manifest: RunManifest
    results: list[PairResult]  # one per draw (per pair without samples or a jury)
    pending: list[PairId]  # pairs with a draw still pending
    reused: int
    requested: int
    max_in_flight: int
    lint: LintReport | None = None  # the run's house-rule findings (runs/<id>/lint.json)
    pending_draws: list[DrawId] = field(default_factory=list)  # each draw still pending
