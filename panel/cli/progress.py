"""A batch's progress bar on stderr: pairs done, ETA, dollars spent and the cache hit rate.

Fed by the engine's events. Without a terminal (CI, pipes) it prints a line every 10% instead
of redrawing, so logs stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from panel.run.events import Event, ReviewFinished, ReviewRetrying, RunStarted


@dataclass
class Tally:
    """Running totals of the finished pairs."""

    total: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0
    refused: int = 0
    reused: int = 0
    retries: int = 0
    usd: float = 0.0
    read_tokens: int = 0
    input_tokens: int = 0

    @property
    def hit_rate(self) -> float | None:
        return self.read_tokens / self.input_tokens if self.input_tokens else None

    def line(self) -> str:
        rate = f"{self.hit_rate:.0%}" if self.hit_rate is not None else "–"
        return (
            f"{self.done}/{self.total} · ok {self.ok} · failed {self.failed} · "
            f"reused {self.reused} · ${self.usd:.4f} · cache hits {rate}"
        )


@dataclass
class BatchProgress:
    """An EventSink: `with BatchProgress(console) as progress: run_batch(..., progress)`."""

    console: Console
    tally: Tally = field(default_factory=Tally)
    _progress: Progress | None = None
    _task: TaskID | None = None
    _next_report: float = 0.1

    def __enter__(self) -> BatchProgress:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("batch", total=None, status="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.__exit__(exc_type, exc, tb)
        elif self.tally.total:
            self.console.print(f"batch: {self.tally.line()}", highlight=False)

    def __call__(self, event: Event) -> None:
        t = self.tally
        if isinstance(event, RunStarted):
            # Reused pairs were reported (ReviewFinished) before the run started.
            t.total = t.done + len(event.pairs)
        elif isinstance(event, ReviewRetrying):
            t.retries += 1
        elif isinstance(event, ReviewFinished):
            r = event.result
            t.done += 1
            t.total = max(t.total, t.done)
            if r.status == "ok":
                t.ok += 1
            elif r.status == "refused":
                t.refused += 1
            else:
                t.failed += 1
            if r.reused:
                t.reused += 1
            else:
                t.usd += r.cost_usd or 0.0
                u = r.usage
                t.read_tokens += u.cache_read_tokens
                t.input_tokens += u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
        else:
            return
        self._refresh()

    def _refresh(self) -> None:
        t = self.tally
        if self._progress is not None and self._task is not None:
            status = f"ok {t.ok} · failed {t.failed} · reused {t.reused} · ${t.usd:.4f} · cache "
            status += f"{t.hit_rate:.0%}" if t.hit_rate is not None else "–"
            self._progress.update(
                self._task, total=t.total or None, completed=t.done, status=status
            )
        elif t.total and t.done >= self._next_report * t.total and t.done < t.total:
            self.console.print(f"batch: {t.line()}", highlight=False)
            while self._next_report * t.total <= t.done:
                self._next_report += 0.1


__all__ = ["BatchProgress", "Tally"]
