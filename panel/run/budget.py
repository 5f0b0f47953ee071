"""A budget is the run's, across resumes: what a resumed run has already spent counts.

The manifest's cost is written when an invocation ends; after a kill -9 it is stale, but the
attempts ledger (one line per billed attempt, with its usage) is not. So the spend carried
into a resume is the larger of the two.
"""

from __future__ import annotations

from collections.abc import Callable

from panel.runformat import Usage
from panel.store.runs import RunStore


def spent_so_far(
    store: RunStore, cost_of: Callable[[Usage], float | None], *, model: str | None = None
) -> float:
    """Dollars the run in `store` has spent in earlier invocations; with `model` (a jury's,
    each priced by its own table row), only that model's attempts, from the ledger alone."""
    ledger = sum(
        cost_of(a.usage) or 0.0
        for a in store.iter_attempts()
        if a.billed and a.usage is not None and (model is None or a.model == model)
    )
    return ledger if model is not None else max(store.manifest().cost.usd, ledger)


__all__ = ["spent_so_far"]
