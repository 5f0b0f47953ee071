"""The on-disk formats of a run folder, versioned; schemas/ holds JSON Schemas made from these.

runs/<run-id>/run.json        RunManifest   (rewritten atomically as the run progresses)
runs/<run-id>/results.jsonl   PairResult    (append-only; exactly one terminal line per pair)
runs/<run-id>/attempts.jsonl  Attempt       (append-only; one line per upstream attempt)
runs/<run-id>/records/*.json  comparison records (panel.pages.records)
runs/<run-id>/inputs/         the exact tool files, personas and templates sent (store.runinputs)
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from panel.errors import ErrorClass
from panel.lintformat import LintFinding

FORMAT_VERSION = 1

Status = Literal["ok", "failed", "refused"]
# stopped: interrupted (Ctrl-C, SIGTERM); paused: stopped launching (budget, a long 429).
RunStatus = Literal["running", "complete", "paused", "stopped", "failed"]
Ttl = Literal["5m", "1h"]  # a prompt-cache entry's lifetime (api-facts.md)
PairId = tuple[str, str]  # (tool slug, persona id)


class DrawId(NamedTuple):
    """One draw: a (tool, persona) pair asked of one model, one sample (results.jsonl's key).

    A run without samples or a jury has one draw per pair: (tool, persona, its model, 0).
    """

    tool_slug: str
    persona: str
    model: str  # "provider:model"
    sample: int = 0

    @property
    def pair(self) -> PairId:
        return (self.tool_slug, self.persona)


# The header that tells a provider which sample of a pair a request is. Samples share every
# byte of their body (so the followers read the whole prompt from the cache); the header is not
# part of any cache prefix and real APIs ignore it. Sent only for samples after the first.
SAMPLE_HEADER = "x-panel-sample"


# Every response of panel's emulator carries this header; a provider that sees it marks what it
# writes synthetic, whichever provider and base URL reached the emulator. Vocabulary, because
# both sides need it and the emulator imports no product stage.
EMULATOR_HEADER = "x-panel-emulator"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Usage(_Frozen):
    """Input tokens by kind. Total input = input + cache_read + cache_write."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    known: bool = True  # False when the provider's final event carried no usage (F20)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            known=self.known and other.known,
        )


class PairResult(_Frozen):
    """The terminal result of one draw — a (tool, persona) pair asked of one model, one sample
    (`DrawId`): one line of results.jsonl. Runs without samples or a jury have one per pair."""

    format: int = FORMAT_VERSION
    tool: str  # the tool's display name
    tool_slug: str  # unique, path-safe id of the tool within the run
    persona: str  # persona id
    status: Status
    ship: bool | None = None
    confidence: float | None = None
    headline: str | None = None
    quote: str | None = None
    rubric: dict[str, str] = Field(default_factory=dict)  # question id -> answer
    strengths: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    error_class: ErrorClass | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    attempts: int = 0
    pair_key: str  # digest of everything that determines this result (the result-cache key)
    reused: bool = False  # taken from the result cache, not requested in this run
    synthetic: bool  # written by the emulator's stub model
    model: str
    flags: list[str] = Field(default_factory=list)  # post-checks, e.g. "injection_suspected"
    finished_at: str
    # The house-rule findings on this verdict (panel.lint; docs/lint.md). Lines written before
    # the lint existed read as [].
    lint: list[LintFinding] = Field(default_factory=list)
    sample: int = 0  # which of the pair's samples (--samples K: 0..K-1); 0 without sampling

    @property
    def draw(self) -> DrawId:
        return DrawId(self.tool_slug, self.persona, self.model, self.sample)


class Attempt(_Frozen):
    """One upstream attempt: one line of attempts.jsonl."""

    format: int = FORMAT_VERSION
    tool_slug: str
    persona: str
    pair_key: str
    request_digest: str
    attempt: int
    started_at: str
    ended_at: str
    outcome: Literal["ok", "error"]
    error_class: ErrorClass | None = None
    billed: bool
    usage: Usage | None = None
    request_id: str | None = None
    retry_after: float | None = None
    sample: int = 0
    model: str | None = None  # set in a jury run (each attempt priced at its model's rates)


class InputDigest(_Frozen):
    path: str
    digest: str


class Inputs(_Frozen):
    """Digests of every input, so a diff can say why a verdict changed.

    The run folder keeps a copy of each file these digests name (runs/<run-id>/inputs/:
    tools/<slug>.yaml, personas/<id>.md, prompts/<name>); every copied file's sha256 equals
    its digest here. Runs made before copies were kept have no inputs/ folder.
    """

    tools: dict[str, InputDigest]  # tool slug -> file
    personas: dict[str, InputDigest]  # persona id -> file
    templates: dict[str, str]  # template name -> digest
    verdict_schema: str
    settings: str  # digest of the model settings that reach the request


class Cost(_Frozen):
    usd: float
    floor_usd: float
    no_cache_usd: float
    known: bool = True  # False when a price or some usage was missing
    batch_discount: bool = False


class CacheSegment(_Frozen):
    # "tools+house", "persona:builder", … and with samples "tool-blocks:builder×5": the tool
    # blocks of builder's pairs summed, each shared by that pair's 5 samples.
    name: str
    tokens: int
    shared_by: int  # requests in this run whose prefix contains the segment (each block's)
    cacheable: bool  # at or above the model's minimum cacheable length


class CachePlan(_Frozen):
    order: list[str]  # e.g. ["tools", "house", "persona", "tool"]
    breakpoints: list[str]
    ttl: Ttl
    min_cache_tokens: int
    segments: list[CacheSegment]
    warnings: list[str] = Field(default_factory=list)


class CacheStats(_Frozen):
    requests: int
    requests_reading_cache: int
    read_tokens: int
    write_tokens: int
    uncached_tokens: int


class MemberReport(_Frozen):
    """One model of a jury: its own cost, cache plan and cache figures (each has its cache)."""

    provider: str
    synthetic: bool
    settings: str  # digest of the settings that reach its requests (its pair keys use it)
    usage: Usage
    cost: Cost
    cache_plan: CachePlan | None = None
    cache_stats: CacheStats | None = None


class RunManifest(_Frozen):
    format: int = FORMAT_VERSION
    run_id: str
    created_at: str
    updated_at: str
    status: RunStatus
    model: str  # "provider:model"
    provider: str
    synthetic: bool
    settings: dict[str, str | int | float | bool | None]
    inputs: Inputs
    pairs_total: int
    usage: Usage
    cost: Cost
    cache_plan: CachePlan | None = None
    cache_stats: CacheStats | None = None
    notes: list[str] = Field(default_factory=list)
    samples: int = 1  # draws per (tool, persona, model): --samples K
    # --jury: every persona on every one of these models ("provider:model"); empty: `model`.
    jury: list[str] = Field(default_factory=list)
    members: dict[str, MemberReport] = Field(default_factory=dict)  # jury model -> its report

    @property
    def models(self) -> list[str]:
        """The models whose draws this run holds."""
        return list(self.jury) or [self.model]

    @property
    def draws_total(self) -> int:
        """Terminal lines a complete run holds: pairs × models × samples."""
        return self.pairs_total * len(self.models) * self.samples
