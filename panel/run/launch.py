"""How a run's pairs are sent: the seam between the engine and its launch strategies.

The engine decides *what* to ask (result-cache reuse, the cache plan, the pairs still to do)
and records every attempt and result; a launch strategy decides *how* the pairs reach the
provider. The default streams them through the cache-aware scheduler
(`RunView.stream`); `panel.batch.via_api.BatchApiLaunch` warms each persona's prefix with one
streamed request and sends the rest through the providers' batch services. A strategy sees
the run only through `RunView`, never the engine's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from panel.errors import UpstreamError
    from panel.providers.base import Provider, StreamCompleted, VerdictRequest
    from panel.run.attempts import PairState
    from panel.run.engine import RunOptions
    from panel.run.events import Event
    from panel.runformat import CachePlan, DrawId, PairResult, Usage
    from panel.store.resultcache import ResultCache
    from panel.store.runs import RunStore
    from panel.verdict import Verdict


class RunView(Protocol):
    """What a launch strategy may read and call on the run it launches."""

    provider: Provider
    model: str  # "provider:model": the draws' model
    store: RunStore
    options: RunOptions
    stop_reason: str | None  # set it to stop launching; the run ends "paused" with pairs pending
    fatal: UpstreamError | None  # an auth or spend-cap error that stopped the run
    spent: float  # dollars so far, this invocation
    requested: int  # pairs sent upstream at least once
    batch_pricing: bool  # while True, attempts are billed at the batch discount

    def emit(self, event: Event) -> None: ...

    def request(self, pair: DrawId) -> VerdictRequest:
        """The draw's first request, exactly as the streaming path would send it."""
        ...

    def validate(self, pair: DrawId, completed: StreamCompleted, state: PairState) -> Verdict:
        """Validate a completed tool call; raises UpstreamError (schema_invalid) with a re-ask."""
        ...

    def record_attempt(
        self,
        pair: DrawId,
        state: PairState,
        request: VerdictRequest,
        request_digest: str,
        started_at: str,
        usage: Usage | None,
        error: UpstreamError | None,
    ) -> None: ...

    def finish_pair(
        self,
        pair: DrawId,
        state: PairState,
        cache: ResultCache | None,
        error: UpstreamError | None = None,
    ) -> PairResult: ...

    async def stream(
        self, pairs: list[DrawId], plan: CachePlan | None, cache: ResultCache | None
    ) -> list[DrawId]:
        """Stream `pairs` through the cache-aware scheduler; return those left pending."""
        ...


class LaunchStrategy(Protocol):
    async def launch(
        self,
        run: RunView,
        todo: list[DrawId],
        plan: CachePlan | None,
        cache: ResultCache | None,
    ) -> Sequence[DrawId]:
        """Send `todo` to a terminal result each; return the pairs left pending."""
        ...
