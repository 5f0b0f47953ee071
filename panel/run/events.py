"""What a run tells its caller: typed events as they happen, and the outcome at the end.

The engine calls an EventSink with each event; the live display, the batch progress bar and
the benchmarks are sinks. Events are past-tense (something happened) or `…Delta` (a partial).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panel.lintformat import LintReport
from panel.runformat import CachePlan, PairId, PairResult, RunManifest


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_dir: Path
    model: str
    synthetic: bool
    pairs: list[PairId]
    reused: int
    plan: CachePlan | None
    notes: list[str]


@dataclass(frozen=True)
class ReviewStarted:
    tool: str
    persona: str
    attempt: int


@dataclass(frozen=True)
class VerdictDelta:
    tool: str
    persona: str
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class ReviewRetrying:
    tool: str
    persona: str
    error_class: str
    message: str


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
    results: list[PairResult]
    pending: list[PairId]
    reused: int
    requested: int
    max_in_flight: int
    lint: LintReport | None = None  # the run's house-rule findings (runs/<id>/lint.json)
