"""The model table: cache minimums, tool-choice rules, prices and latency, from data/models.json.

One table serves the emulator (what it emulates) and panel's cost accounting (what a run cost).
Prices live in the data file with their date, never in code.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

ProviderKind = Literal["anthropic", "openai"]
# The wire API a request goes over: Anthropic Messages, OpenAI Chat Completions or Responses.
Wire = Literal["messages", "chat_completions", "responses"]


class Prices(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input: float
    cache_write_5m: float
    cache_write_1h: float | None
    cache_read: float
    output: float


class Latency(BaseModel):
    """The emulator's latency model for one model (see docs/emulator.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ttft_ms: float
    ms_per_1k_uncached: float
    output_tps: float


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    provider: ProviderKind
    min_cache_tokens: int
    min_cache_tokens_confirmed: bool = True
    forced_tool_choice: bool
    thinking_default: bool = False  # thinks unless the request says `thinking: disabled`
    thinking_always: bool = False  # cannot be turned off
    cache_accounting: Literal["exact", "rounded128"] = "exact"
    prices: Prices | None
    price_note: str | None = None
    latency: Latency
    # The wires this model takes tool calls on, panel's default first; empty means the
    # provider's classic one (Messages for Anthropic, Chat Completions for OpenAI).
    wires: tuple[Wire, ...] = ()

    @property
    def default_wire(self) -> Wire:
        if self.wires:
            return self.wires[0]
        return "messages" if self.provider == "anthropic" else "chat_completions"

    def takes(self, wire: Wire) -> bool:
        """Whether this model takes tool calls over `wire`."""
        return wire in self.wires if self.wires else wire == self.default_wire


class ModelTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int
    prices_as_of: str
    prices_source: str
    notes: str
    models: list[ModelInfo]

    def get(self, model_id: str) -> ModelInfo | None:
        """Look a model up by id; provider-prefixed ids (`anthropic/claude-…`) match too."""
        bare = model_id.rsplit("/", 1)[-1]
        for m in self.models:
            if m.id in (model_id, bare):
                return m
        return None


@lru_cache(maxsize=1)
def load_model_table() -> ModelTable:
    text = resources.files("panel").joinpath("data/models.json").read_text(encoding="utf-8")
    return ModelTable.model_validate(json.loads(text))


def model_info(model_id: str) -> ModelInfo | None:
    return load_model_table().get(model_id)
