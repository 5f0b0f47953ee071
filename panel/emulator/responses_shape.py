"""The shape of a Responses API body, checked before anything reads it (as requestshape.py does
for the other two wires, with its helpers): unknown top-level fields are the real API's
`Unknown parameter: 'X'.` (`code: unknown_parameter`), wrong types `Invalid type for 'P'`,
and every function tool's and `text.format`'s JSON Schema is checked keyword by keyword.
Nested objects keep unknown fields, as the real API does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from panel.emulator.exchange import BadRequest
from panel.emulator.requestshape import (
    Number,
    _at,
    _Closed,
    _first,
    _kind,
    _Open,
    _openai_param,
    schema_problem,
)


class _Breakpoint(_Open):
    mode: Literal["explicit"]


class _Part(_Open):
    type: str
    text: str | None = None
    prompt_cache_breakpoint: _Breakpoint | None = None


class _Item(_Open):
    type: str | None = None
    role: str | None = None
    content: str | list[_Part] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[Any] | None = None


class _Tool(_Open):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ToolChoice(_Open):
    type: str
    name: str | None = None


class _Format(_Open):
    type: str
    name: str | None = None
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class _Text(_Open):
    format: _Format | None = None
    verbosity: str | None = None


class _CacheOptions(_Open):
    mode: Literal["implicit", "explicit"] | None = None
    ttl: str | None = None


class _StreamOptions(_Open):
    include_obfuscation: bool | None = None


class ResponsesRequest(_Closed):
    model: str
    input: str | list[_Item] | None = None
    instructions: str | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | _ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    store: bool | None = None
    text: _Text | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: _CacheOptions | None = None
    prompt_cache_retention: str | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    top_logprobs: int | None = None
    truncation: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    background: bool | None = None
    include: list[str] | None = None
    reasoning: Any = None
    conversation: Any = None
    context_management: Any = None
    moderation: Any = None
    prompt: Any = None


def check_responses(body: dict[str, Any]) -> ResponsesRequest:
    """The parsed body, or BadRequest (400) in OpenAI's shape with the Responses API's words."""
    try:
        request = ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        loc, kind, _ = _first(exc)
        param = _openai_param(loc)
        if kind == "extra_forbidden":
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Unknown parameter: '{param}'.",
                param=param,
                code="unknown_parameter",
            ) from None
        if kind == "missing":
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Missing required parameter: '{param}'.",
                param=param,
                code="missing_required_parameter",
            ) from None
        if kind == "literal_error":
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Invalid value: {_at(body, loc)!r}. Supported values are given in the API "
                f"reference for '{param}'.",
                param=param,
                code="invalid_value",
            ) from None
        raise BadRequest(
            400,
            "invalid_request_error",
            f"Invalid type for '{param}': got {_kind(_at(body, loc))} instead.",
            param=param,
            code="invalid_type",
        ) from None
    for i, tool in enumerate(request.tools or []):
        if tool.parameters is not None and (problem := schema_problem(tool.parameters)):
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Invalid schema for function '{tool.name}': {problem}",
                param=f"tools[{i}].parameters",
                code="invalid_function_parameters",
            )
    fmt = request.text.format if request.text else None
    schema = fmt.json_schema if fmt is not None else None
    if schema is not None and (problem := schema_problem(schema)):
        raise BadRequest(
            400,
            "invalid_request_error",
            f"Invalid schema for response_format '{fmt.name if fmt else ''}': {problem}",
            param="text.format.schema",
            code="invalid_json_schema",
        )
    return request
