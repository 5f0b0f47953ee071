"""The verdict: one pydantic model, one tool definition derived from it, one validator.

The tool is byte-identical for every persona and tool in a run, so it sits first in the
cached prefix. Persona specifics live in the prompt and in the answers (rubric answers are a
list keyed by question id), never in a per-persona schema.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from panel.digests import json_digest

TOOL_NAME = "record_verdict"
TOOL_DESCRIPTION = (
    "Record your verdict on the tool under review. Call this exactly once. Every field is "
    "required; answer every rubric question of your persona by its question id."
)
QUOTE_MIN_WORDS = 60
QUOTE_MAX_WORDS = 200
# Size caps on every model-written field (characters; list lengths). Far above an honest
# verdict, far below what a runaway or hostile upstream can send: over them is schema_invalid.
MAX_CHARS = {"headline": 1000, "quote": 8000, "answer": 4000, "question_id": 100, "item": 4000}
MAX_ITEMS = {"answers": 50, "strengths": 10, "risks": 10}


class RubricAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question_id: str = Field(description="The id of the rubric question, exactly as given.")
    answer: str = Field(description="Your answer in one to three sentences, specific to this tool.")


class Verdict(BaseModel):
    """What one persona says about one tool. Field order is streaming order: `ship` first."""

    model_config = ConfigDict(extra="forbid")
    ship: bool = Field(description="true if you would ship with this tool, false if not.")
    confidence: float = Field(description="How sure you are of the ship decision, 0.0 to 1.0.")
    headline: str = Field(description="One line, under 15 words, that states your verdict.")
    quote: str = Field(
        description=(
            f"Your scorecard paragraph, {QUOTE_MIN_WORDS}-{QUOTE_MAX_WORDS} words, in your own "
            "voice, covering your rubric."
        )
    )
    answers: list[RubricAnswer] = Field(description="One answer per rubric question.")
    strengths: list[str] = Field(description="Up to three concrete strengths.")
    risks: list[str] = Field(description="Up to three concrete risks.")


def verdict_tool_schema() -> dict[str, Any]:
    """The JSON Schema of the verdict, in the strict subset (no min/max, no defaults)."""
    return copy.deepcopy(_verdict_tool_schema())  # a fresh dict: callers may edit theirs


@functools.cache
def _verdict_tool_schema() -> dict[str, Any]:
    schema = Verdict.model_json_schema()  # pydantic builds it afresh at each call
    _strip_titles(schema)
    schema.pop("description", None)  # the class docstring is for developers, not the model
    return schema


def _strip_titles(node: Any) -> None:
    # Titles add tokens to every request and say nothing the descriptions don't.
    if isinstance(node, dict):
        node.pop("title", None)
        for value in node.values():
            _strip_titles(value)
    elif isinstance(node, list):
        for value in node:
            _strip_titles(value)


def schema_digest() -> str:
    return json_digest(verdict_tool_schema())


class VerdictProblem(ValueError):
    """A verdict that parsed but breaks a rule the schema cannot express (bounds, rubric)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate_verdict(data: Any, rubric_ids: Sequence[str]) -> Verdict:
    """Validate tool input against the model and the persona's rubric.

    Raises pydantic.ValidationError for a schema violation and VerdictProblem for the rules
    strict mode cannot carry (confidence range, quote length, every rubric id answered).
    """
    verdict = Verdict.model_validate(data)
    problems = _size_problems(verdict)
    if problems:
        raise VerdictProblem(problems)  # before the word counts: a 5 MB field is not split
    if not 0.0 <= verdict.confidence <= 1.0:
        problems.append(f"confidence must be between 0 and 1, got {verdict.confidence}")
    words = len(verdict.quote.split())
    if not QUOTE_MIN_WORDS <= words <= QUOTE_MAX_WORDS:
        problems.append(f"quote must be {QUOTE_MIN_WORDS}-{QUOTE_MAX_WORDS} words, got {words}")
    if not verdict.headline.strip():
        problems.append("headline is empty")
    answered = {a.question_id for a in verdict.answers if a.answer.strip()}
    missing = [q for q in rubric_ids if q not in answered]
    if missing:
        problems.append("missing rubric answers for: " + ", ".join(missing))
    if problems:
        raise VerdictProblem(problems)
    return verdict


def _size_problems(verdict: Verdict) -> list[str]:
    problems: list[str] = []

    def cap(field: str, value: str, limit: str) -> None:
        if len(value) > MAX_CHARS[limit]:
            problems.append(f"{field} too long: {len(value)} characters (max {MAX_CHARS[limit]})")

    cap("headline", verdict.headline, "headline")
    cap("quote", verdict.quote, "quote")
    for name in MAX_ITEMS:
        items = getattr(verdict, name)
        if len(items) > MAX_ITEMS[name]:
            problems.append(f"{name}: too many items: {len(items)} (max {MAX_ITEMS[name]})")
    for i, answer in enumerate(verdict.answers[: MAX_ITEMS["answers"]]):
        cap(f"answers[{i}].question_id", answer.question_id, "question_id")
        cap(f"answers[{i}].answer", answer.answer, "answer")
    for name in ("strengths", "risks"):
        for i, item in enumerate(getattr(verdict, name)[: MAX_ITEMS[name]]):
            cap(f"{name}[{i}]", item, "item")
    return problems


__all__ = [
    "MAX_CHARS",
    "MAX_ITEMS",
    "QUOTE_MAX_WORDS",
    "QUOTE_MIN_WORDS",
    "TOOL_DESCRIPTION",
    "TOOL_NAME",
    "RubricAnswer",
    "ValidationError",
    "Verdict",
    "VerdictProblem",
    "schema_digest",
    "validate_verdict",
    "verdict_tool_schema",
]
