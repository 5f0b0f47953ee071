"""The provider contract: what the engine hands a provider, and the events it streams back."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from panel.modeltable import ModelInfo
from panel.runformat import EMULATOR_HEADER, Ttl, Usage

Breakpoint = Literal["house", "persona", "tool"]


@dataclass(frozen=True)
class PromptParts:
    """The rendered prompt, in cache order: house (shared by all), persona, tool (varies)."""

    house: str
    persona: str
    tool: str


@dataclass(frozen=True)
class Reask:
    """A bounded follow-up turn: the model's last answer and what was wrong with it."""

    kind: Literal["invalid_verdict", "no_tool_call"]
    message: str  # the validation error, or the reminder to call the tool
    previous_input: dict[str, Any] | None = None  # the tool input it gave (invalid_verdict)
    previous_text: str = ""  # the text it gave instead of a call (no_tool_call)
    call_id: str | None = None


@dataclass(frozen=True)
class VerdictRequest:
    tool_slug: str
    persona_id: str
    parts: PromptParts
    tool_schema: dict[str, Any]
    max_tokens: int = 2048
    cache_ttl: Ttl = "5m"
    extra_headers: dict[str, str] = field(default_factory=dict)
    reask: Reask | None = None
    thinking: bool = False  # False: turn thinking off where the model allows it
    # Which prefixes get a cache breakpoint: only those another request of the run will read,
    # since a write costs 1.25x and pays off only when read. "tool" (the whole prompt) only when
    # the pair is sampled more than once: its samples share every byte.
    breakpoints: frozenset[Breakpoint] = frozenset({"house", "persona"})
    sample: int = 0  # which sample of the pair (--samples); the engine also sends SAMPLE_HEADER


def from_emulator(headers: Any) -> bool:
    """Whether a response's headers say panel's emulator wrote it."""
    try:
        return bool(headers.get(EMULATOR_HEADER))
    except AttributeError:
        return False


@dataclass(frozen=True)
class StreamStarted:
    """The response has begun: from here on its cache writes are readable by others."""

    request_id: str | None


@dataclass(frozen=True)
class ArgsDelta:
    """The tool arguments parsed so far (partial strings included)."""

    snapshot: dict[str, Any]


@dataclass(frozen=True)
class StreamCompleted:
    tool_input: dict[str, Any]
    usage: Usage
    stop_reason: str
    request_id: str | None
    call_id: str | None = None


StreamEvent = StreamStarted | ArgsDelta | StreamCompleted


class Provider(Protocol):
    name: str  # "anthropic", "openai", "openrouter", "compatible", "emulator"
    model: str
    info: ModelInfo | None
    synthetic: bool

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        """The exact request body this provider sends (for digests and the batch APIs)."""
        ...

    def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream one verdict. Raises panel.errors.UpstreamError, already classified.

        An async generator: the caller closes it (`contextlib.aclosing`) when it stops early,
        so the provider closes its HTTP stream then, not whenever the garbage collector runs.
        """
        ...

    async def aclose(self) -> None: ...
