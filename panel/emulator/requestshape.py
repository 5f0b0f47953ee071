"""The shape of a request body, checked before anything reads it, as the real APIs check it.

Both wires answer a malformed or type-confused body with a 400 in their own error shape, never
a 500: the body is validated against a model of what the API accepts (unknown top-level
fields are rejected, as the real APIs reject them; nested objects keep unknown fields, as the
real ones do for forward compatibility), and every tool's JSON Schema is checked keyword by
keyword, with a depth and size bound, before the stub model walks it.

Anthropic reports `loc: message` (pydantic-style, e.g. `foo: Extra inputs are not permitted`);
OpenAI reports `Unrecognized request argument supplied: foo` and `Invalid type for 'param': …`
with `param` and `code`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from panel.emulator.exchange import BadRequest

MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_NODES = 5_000


class _Open(BaseModel):
    """A nested object: typed where the emulator reads it, other fields kept (as the API does)."""

    model_config = ConfigDict(extra="allow", strict=True)


class _Closed(BaseModel):
    """A request's top level: unknown fields are a 400, as on the real APIs."""

    model_config = ConfigDict(extra="forbid", strict=True)


Number = float | int

# -- Anthropic Messages ---------------------------------------------------------------------


class _CacheControl(_Open):
    type: str
    ttl: str | None = None


class _Block(_Open):
    type: str
    text: str | None = None
    cache_control: _CacheControl | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[_Block] | None = None
    is_error: bool | None = None


class _Message(_Open):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class _Tool(_Open):
    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None
    eager_input_streaming: bool | None = None
    cache_control: _CacheControl | None = None


class _ToolChoice(_Open):
    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class _Thinking(_Open):
    type: str
    budget_tokens: int | None = None


class _Format(_Open):
    type: str
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None


class _OutputConfig(_Open):
    format: _Format | None = None
    effort: str | None = None


class AnthropicRequest(_Closed):
    model: str
    max_tokens: int
    messages: list[_Message]
    system: str | list[_Block] | None = None
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None
    thinking: _Thinking | None = None
    stream: bool | None = None
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    top_k: int | None = None
    service_tier: str | None = None
    cache_control: _CacheControl | None = None
    output_config: _OutputConfig | None = None
    container: Any = None
    context_management: Any = None
    diagnostics: Any = None
    inference_geo: Any = None
    mcp_servers: Any = None
    speed: Any = None
    user_profile_id: Any = None
    workspace_id: Any = None


# -- OpenAI Chat Completions ----------------------------------------------------------------


class _Part(_Open):
    type: str
    text: str | None = None
    cache_control: _CacheControl | None = None


class _CallFunction(_Open):
    name: str
    arguments: str


class _Call(_Open):
    id: str
    type: str
    function: _CallFunction


class _ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[_Call] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class _Function(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ChatTool(_Open):
    type: str
    function: _Function


class _NamedFunction(_Open):
    name: str


class _ChatToolChoice(_Open):
    type: str
    function: _NamedFunction | None = None


class _StreamOptions(_Open):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class _JsonSchema(_Open):
    name: str
    description: str | None = None
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class _ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class OpenAIRequest(_Closed):
    model: str
    messages: list[_ChatMessage]
    tools: list[_ChatTool] | None = None
    tool_choice: str | _ChatToolChoice | None = None
    parallel_tool_calls: bool | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    prompt_cache_key: str | None = None
    response_format: _ResponseFormat | None = None
    temperature: Number | None = None
    top_p: Number | None = None
    n: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    store: bool | None = None
    audio: Any = None
    frequency_penalty: Number | None = None
    function_call: Any = None
    functions: Any = None
    logit_bias: dict[str, Number] | None = None
    logprobs: bool | None = None
    modalities: Any = None
    moderation: Any = None
    prediction: Any = None
    presence_penalty: Number | None = None
    prompt_cache_options: Any = None
    prompt_cache_retention: str | None = None
    reasoning_effort: str | None = None
    safety_identifier: str | None = None
    top_logprobs: int | None = None
    verbosity: str | None = None
    web_search_options: Any = None


# -- the checks -----------------------------------------------------------------------------

_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "literal"}
_JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("not", "if", "then", "else", "contains", "propertyNames")
_COUNTS = (
    "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties",
    "minContains", "maxContains",
)  # fmt: skip
_NUMBERS = ("minimum", "maximum", "multipleOf")
_STRINGS = ("description", "title", "format", "pattern", "$ref", "$schema", "$id", "$comment")


def _loc(parts: tuple[int | str, ...]) -> list[int | str]:
    """The error's location without pydantic's union tags (`str`, `list[_Block]`, …)."""
    out: list[int | str] = []
    for p in parts:
        if isinstance(p, str) and (
            p.lower() in _TYPE_TAGS or "[" in p or p.startswith("_") or p[:1].isupper()
        ):
            continue
        out.append(p)
    return out


def _first(exc: ValidationError) -> tuple[list[int | str], str, str]:
    errors = exc.errors(include_url=False)
    extra = next((e for e in errors if e["type"] == "extra_forbidden"), None)
    err = extra or errors[0]
    return _loc(tuple(err["loc"])), str(err["type"]), str(err["msg"])


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _at(body: Any, loc: list[int | str]) -> object:
    node = body
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def check_anthropic(body: dict[str, Any]) -> None:
    """BadRequest (400, invalid_request_error) unless the body has the Messages API's shape."""
    try:
        request = AnthropicRequest.model_validate(body)
    except ValidationError as exc:
        loc, _, msg = _first(exc)
        where = ".".join(str(p) for p in loc) or "body"
        raise BadRequest(400, "invalid_request_error", f"{where}: {msg}") from None
    for i, tool in enumerate(request.tools or []):
        if tool.input_schema is not None:
            problem = schema_problem(tool.input_schema)
            if problem:
                raise BadRequest(
                    400, "invalid_request_error", f"tools.{i}.custom.input_schema: {problem}"
                )
    fmt = request.output_config.format if request.output_config else None
    if fmt is not None and fmt.json_schema is not None:
        problem = schema_problem(fmt.json_schema)
        if problem:
            raise BadRequest(
                400, "invalid_request_error", f"output_config.format.schema: {problem}"
            )


def _openai_param(loc: list[int | str]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def check_openai(body: dict[str, Any]) -> None:
    """BadRequest (400) in OpenAI's shape unless the body has Chat Completions' shape."""
    try:
        request = OpenAIRequest.model_validate(body)
    except ValidationError as exc:
        loc, kind, _ = _first(exc)
        param = _openai_param(loc)
        if kind == "extra_forbidden":
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Unrecognized request argument supplied: {param}",
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
        if tool.function.parameters is not None:
            problem = schema_problem(tool.function.parameters)
            if problem:
                param = f"tools[{i}].function.parameters"
                raise BadRequest(
                    400,
                    "invalid_request_error",
                    f"Invalid schema for function '{tool.function.name}': {problem}",
                    param=param,
                    code="invalid_function_parameters",
                )
    fmt = request.response_format
    if fmt is not None and fmt.json_schema is not None and fmt.json_schema.json_schema is not None:
        problem = schema_problem(fmt.json_schema.json_schema)
        if problem:
            raise BadRequest(
                400,
                "invalid_request_error",
                f"Invalid schema for response_format '{fmt.json_schema.name}': {problem}",
                param="response_format",
                code="invalid_json_schema",
            )


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why a tool's JSON Schema is not one (None when every keyword has its JSON type)."""
    seen = [0]
    return _schema_node(schema, schema, "", 0, seen)


def _number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _schema_node(
    node: object, root: dict[str, Any], path: str, depth: int, seen: list[int]
) -> str | None:
    where = path or "schema"
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return f"{where}: a schema must be an object or a boolean, got {_kind(node)}"
    seen[0] += 1
    if depth > MAX_SCHEMA_DEPTH:
        return f"{where}: the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep"
    if seen[0] > MAX_SCHEMA_NODES:
        return f"the schema has more than {MAX_SCHEMA_NODES} subschemas"
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds):
            return f"{where}.type: must be one of {sorted(_JSON_TYPES)} or a list of them"
    for key in _STRINGS:
        if key in node and not isinstance(node[key], str):
            return f"{where}.{key}: must be a string, got {_kind(node[key])}"
    for key in _COUNTS:
        if key in node:
            value = node[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"{where}.{key}: must be a non-negative integer"
    for key in _NUMBERS:
        if key in node and not _number(node[key]):
            return f"{where}.{key}: must be a number"
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not (_number(node[key]) or isinstance(node[key], bool)):
            return f"{where}.{key}: must be a number"
    if "required" in node and not (
        isinstance(node["required"], list) and all(isinstance(r, str) for r in node["required"])
    ):
        return f"{where}.required: must be an array of strings"
    if "enum" in node and not (isinstance(node["enum"], list) and node["enum"]):
        return f"{where}.enum: must be a non-empty array"
    if "$ref" in node and not _resolves(root, node["$ref"]):
        return f"{where}.$ref: {node['$ref']!r} does not resolve inside the schema"
    for key in _SCHEMA_MAPS:
        if key in node:
            value = node[key]
            if not isinstance(value, dict):
                return f"{where}.{key}: must be an object of schemas"
            for name, sub in value.items():
                if problem := _schema_node(sub, root, f"{where}.{key}.{name}", depth + 1, seen):
                    return problem
    for key in _SCHEMA_LISTS:
        if key in node:
            value = node[key]
            if not isinstance(value, list) or not value:
                return f"{where}.{key}: must be a non-empty array of schemas"
            for i, sub in enumerate(value):
                if problem := _schema_node(sub, root, f"{where}.{key}[{i}]", depth + 1, seen):
                    return problem
    for key in (*_SCHEMA_ONE, "items", "additionalProperties", "additionalItems"):
        if key in node:
            sub = node[key]
            if key == "items" and isinstance(sub, list):  # draft-4 tuple form
                for i, part in enumerate(sub):
                    if problem := _schema_node(part, root, f"{where}.items[{i}]", depth + 1, seen):
                        return problem
                continue
            if problem := _schema_node(sub, root, f"{where}.{key}", depth + 1, seen):
                return problem
    return None


def _resolves(root: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#"):
        return False
    node: Any = root
    for part in ref[1:].strip("/").split("/"):
        if not part:
            continue
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return isinstance(node, dict | bool)


__all__ = ["AnthropicRequest", "OpenAIRequest", "check_anthropic", "check_openai", "schema_problem"]
