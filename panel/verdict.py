"""The verdict: one pydantic model, one tool definition derived from it, one validator.

The tool is byte-identical for every persona and tool in a run, so it sits first in the
cached prefix. Persona specifics live in the prompt and in the answers (rubric answers are a
list keyed by question id), never in a per-persona schema.
"""

from __future__ import annotations

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
    schema = Verdict.model_json_schema()
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
    problems: list[str] = []
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


__all__ = [
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
