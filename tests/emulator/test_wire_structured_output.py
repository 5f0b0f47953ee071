"""Structured outputs through the official SDKs: JSON valid for the schema, streamed as text."""

from __future__ import annotations

import json
from typing import Any, Literal

import anthropic
import openai
from pydantic import BaseModel, ConfigDict


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str
    ship: bool
    score: int
    tags: list[str]
    tier: Literal["free", "team", "enterprise"]


def _schema() -> dict[str, Any]:
    schema = Review.model_json_schema()
    schema["additionalProperties"] = False
    return schema


MESSAGES = [{"role": "user", "content": "Review the tool Ruff as JSON."}]


def test_anthropic_output_config_format_streams_schema_valid_json(
    anthropic_client: anthropic.Anthropic,
) -> None:
    deltas: list[str] = []
    with anthropic_client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=1024,
        messages=MESSAGES,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": _schema()}},
    ) as stream:
        for ev in stream:
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                deltas.append(ev.delta.text)
        final = stream.get_final_message()
    assert len(deltas) > 1  # streamed, not one blob
    text = "".join(deltas)
    assert [b.type for b in final.content if b.type != "thinking"] == ["text"]
    Review.model_validate_json(text)


def test_openai_response_format_json_schema_streams_schema_valid_json(
    openai_client: openai.OpenAI,
) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-5.6-luna",
        messages=MESSAGES,  # type: ignore[arg-type]
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "review", "schema": _schema(), "strict": True},
        },
        stream=True,
    )
    parts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(parts) > 1
    Review.model_validate_json("".join(parts))


def test_openai_parse_helper_gets_the_model_back(openai_client: openai.OpenAI) -> None:
    done = openai_client.chat.completions.parse(
        model="gpt-5.6-luna",
        messages=MESSAGES,  # type: ignore[arg-type]
        response_format=Review,
    )
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Review)


def test_json_object_mode_answers_a_json_object(openai_client: openai.OpenAI) -> None:
    done = openai_client.chat.completions.create(
        model="gpt-5.6-luna",
        messages=MESSAGES,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(done.choices[0].message.content or ""), dict)
