"""The stub model's seeded variability: samples that can disagree, models that can dissent.

A real model asked the same question twice can answer differently, and two models differ in
taste; the emulator models both, deterministically, so stability sampling and juries can be
seen and tested offline. Every draw is a pure function of (seed, model, persona, tool, sample):

- **The reference call** (`stubmodel.ship_decision`): ship about 3 times in 4, from (seed,
  persona, tool), as always.
- **A model's taste.** A model's first answer differs from the reference call with the model's
  *dissent probability*, drawn from (seed, model, persona, tool). `claude-sonnet-5`, the
  emulator's default model, is the reference (0): a run without `--model` streams exactly
  what it streamed before this existed. Other models: `0.10 + 0.20 × u(model)`, a fixed
  number per model id (gpt-5.6-luna 0.13, claude-haiku-4-5 0.17, gpt-6-astra 0.23).
- **Samples.** Sample 0 is the model's first answer (what a run without samples gets, so its
  result-cache key is shared). Sample k > 0 flips that answer with the persona's *flip
  probability*, independently per sample, drawn from (seed, model, persona, tool, k). Default
  per persona id: `0.05 + 0.30 × u(persona)` (builder 0.35, skeptic 0.25, futurist 0.17,
  business 0.16; every other persona gets its own fixed number).
- **Overrides** (`FlipRates.parse`): `skeptic=0.4,*=0.1,model:gpt-5.6-luna=0.3` sets a
  persona's flip probability, every other persona's (`*`), or a model's dissent probability.
  From `panel run --flips`, `panel emulator --flips`, config `flips`, or the request header
  `x-emulator-flips` (which wins).

The sample index comes from the request header `x-panel-sample` (`runformat.SAMPLE_HEADER`),
since samples share every byte of their body. The prose is seeded by the request digest and,
for k > 0, the sample index, so two samples that differ in vote differ in prose too.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

REFERENCE_MODEL = "claude-sonnet-5"
FLIPS_HEADER = "x-emulator-flips"
_NAME = re.compile(r"^(\*|model:[A-Za-z0-9._/:-]{1,100}|[A-Za-z0-9_-]{1,64})$")


class FlipSpecError(ValueError):
    """A flips spec that does not parse (the emulator answers 400, panel one error line)."""


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big")).random()


def default_flip_rate(persona: str | None) -> float:
    """A persona's probability that a later sample flips its first answer."""
    return round(0.05 + 0.30 * _unit("flip-rate", persona or ""), 2)


def default_dissent_rate(model: str) -> float:
    """A model's probability that its first answer differs from the reference call."""
    bare = model.rsplit("/", 1)[-1]
    if bare == REFERENCE_MODEL:
        return 0.0
    return round(0.10 + 0.20 * _unit("dissent-rate", bare), 2)


@dataclass(frozen=True)
class FlipRates:
    """Overrides of the default probabilities (empty: the defaults)."""

    personas: dict[str, float] = field(default_factory=dict)  # persona id or "*"
    models: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | None) -> FlipRates:
        """`skeptic=0.4,*=0.1,model:gpt-5.6-luna=0.3` → FlipRates (FlipSpecError if bad)."""
        personas: dict[str, float] = {}
        models: dict[str, float] = {}
        for item in (spec or "").split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.rpartition("=")
            name = name.strip()
            try:
                rate = float(value)
            except ValueError:
                rate = -1.0
            if not sep or not _NAME.fullmatch(name) or not 0.0 <= rate <= 1.0:
                raise FlipSpecError(
                    f"bad flips entry {item!r}: expected PERSONA=P, *=P or model:MODEL=P "
                    "with P between 0 and 1"
                )
            if name.startswith("model:"):
                models[name.removeprefix("model:")] = rate
            else:
                personas[name] = rate
        return cls(personas, models)

    def flip_rate(self, persona: str | None) -> float:
        if persona is not None and persona in self.personas:
            return self.personas[persona]
        return self.personas.get("*", default_flip_rate(persona))

    def dissent_rate(self, model: str) -> float:
        bare = model.rsplit("/", 1)[-1]
        if model in self.models or bare in self.models:
            return self.models.get(model, self.models.get(bare, 0.0))
        return default_dissent_rate(model)


@dataclass(frozen=True)
class Draw:
    """Which draw a request is: the model answering and the sample index (0: the first)."""

    model: str = REFERENCE_MODEL
    sample: int = 0
    rates: FlipRates = field(default_factory=FlipRates)


def parse_sample(value: str | None) -> int:
    """The `x-panel-sample` header: a non-negative integer (absent: 0)."""
    if value is None or not value.strip():
        return 0
    text = value.strip()
    if not text.isdigit() or len(text) > 6:
        raise ValueError("x-panel-sample must be a non-negative integer")
    return int(text)


def drawn_ship(
    reference: bool, draw: Draw, seed: int, persona: str | None, tool: str | None
) -> bool:
    """The ship call of this draw: the reference call, the model's taste, then the sample."""
    first = reference
    if _unit("dissent", seed, draw.model, persona, tool) < draw.rates.dissent_rate(draw.model):
        first = not first
    if draw.sample <= 0:
        return first
    flip = _unit("sample-flip", seed, draw.model, persona, tool, draw.sample)
    return (not first) if flip < draw.rates.flip_rate(persona) else first


__all__ = [
    "FLIPS_HEADER",
    "REFERENCE_MODEL",
    "Draw",
    "FlipRates",
    "FlipSpecError",
    "default_dissent_rate",
    "default_flip_rate",
    "drawn_ship",
    "parse_sample",
]
