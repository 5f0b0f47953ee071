"""`instructor:PROVIDER/MODEL`: the long tail of providers, through instructor.

Panel's native providers (anthropic, openai and compatibles) stream the tool call themselves.
For every other provider instructor knows (`instructor.from_provider`: gemini, mistral, groq,
bedrock, …) this adapter asks instructor for a validated Verdict, non-streaming: it yields
StreamStarted once the response is complete, then one ArgsDelta and StreamCompleted.
Instructor does the schema re-ask (max_retries=1); the engine still checks the rubric.

Where instructor gets in the way (measured in tests/providers/test_instructor_decision.py):
- `from_provider("anthropic/…")` forwards `base_url` into every `messages.create` call (a
  TypeError) and leaves the SDK's own retries on, so Anthropic gets a client built here and
  `instructor.from_anthropic`, with max_retries=0 (panel.run.retry is the one retry owner);
- instructor forces the tool by default; on Anthropic an explicit `tool_choice` is kept, so
  models that reject forcing get `auto`. On the OpenAI wire instructor overwrites
  `tool_choice` with a forced one, so such models are refused here with a pointer to the
  native provider instead of a guaranteed 400.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anthropic
import httpx2
import instructor
import pydantic
from instructor import Mode
from instructor.core import (
    ConfigurationError,
    IncompleteOutputException,
    InstructorRetryException,
)
from instructor.core import ValidationError as InstructorValidationError
from instructor.v2.providers.anthropic.schema import generate_anthropic_schema
from instructor.v2.providers.openai.schema import generate_openai_schema

from panel.errors import ConfigError, ErrorClass, UpstreamError
from panel.modeltable import ModelInfo, model_info
from panel.providers.anthropic import system_blocks, tool_policy
from panel.providers.base import (
    ArgsDelta,
    Reask,
    StreamCompleted,
    StreamEvent,
    StreamStarted,
    VerdictRequest,
    from_emulator,
)
from panel.providers.classify import classify_exception
from panel.providers.openai import usage_of as openai_usage
from panel.providers.streaming import StreamLimits, cap_wire_bytes
from panel.runformat import Usage
from panel.verdict import TOOL_DESCRIPTION, TOOL_NAME, Verdict

VALIDATION_REASKS = 1
# from_provider builders that take base_url at construction (the rest pass it on to create()).
BASE_URL_PROVIDERS = frozenset({"openai", "openrouter", "ollama", "deepseek", "databricks"})
# Providers whose instructor TOOLS mode speaks the OpenAI wire (tool_choice is overwritten).
# The planner (panel.run.planning) reads `wire` to cut the body into cache blocks.
OPENAI_WIRE = BASE_URL_PROVIDERS | frozenset({"together", "anyscale", "azure_openai", "xai"})
KEY_VARS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}

# Instructor names its tool after the response model and describes it with the docstring:
# give it panel's name and description, so the prompt's "call record_verdict" still holds.
ToolVerdict: type[Verdict] = pydantic.create_model(
    TOOL_NAME, __base__=Verdict, __doc__=TOOL_DESCRIPTION
)

# Instructor logs every failed attempt at WARNING/ERROR; panel reports failures itself, and
# Python's last-resort handler would otherwise print them over the live display.
logging.getLogger("instructor").addHandler(logging.NullHandler())


def split_model(spec_model: str) -> tuple[str, str]:
    """`anthropic/claude-sonnet-5` → ("anthropic", "claude-sonnet-5"); ConfigError if malformed."""
    provider, sep, model = spec_model.partition("/")
    if not sep or not provider or not model:
        raise ConfigError(
            f"instructor:{spec_model}: expected instructor:PROVIDER/MODEL "
            "(e.g. instructor:anthropic/claude-sonnet-5, instructor:gemini/gemini-2.5-flash)"
        )
    return provider, model


class InstructorProvider:
    """A Provider backed by instructor's AsyncInstructor (non-streaming, validated)."""

    def __init__(
        self,
        spec_model: str,
        *,
        env: Mapping[str, str] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        default_headers: dict[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        limits: StreamLimits | None = None,
    ) -> None:
        self.upstream, self.model = split_model(spec_model)
        self.name = "instructor"
        # Not streamed: no first byte or idle gap to watch, so the attempt's total deadline
        # bounds the call, and the body cap its size (docs/reliability.md, "Deadlines").
        self.limits = limits or StreamLimits()
        timeout = httpx2.Timeout(self.limits.total + 5.0, connect=self.limits.connect)
        self.info: ModelInfo | None = model_info(self.model)
        self.synthetic = False
        env = os.environ if env is None else env
        key = api_key or (env.get(KEY_VARS[self.upstream]) if self.upstream in KEY_VARS else None)
        self.wire = (
            "anthropic"
            if self.upstream == "anthropic"
            else "openai"
            if self.upstream in OPENAI_WIRE
            else "other"
        )
        self._tool_choice = self._choose_tool_choice()
        self._tools: list[dict[str, Any]] | None = None
        if self.wire == "anthropic":
            self._tools = [generate_anthropic_schema(ToolVerdict)]
        elif self.wire == "openai":
            self._tools = [{"type": "function", "function": generate_openai_schema(ToolVerdict)}]
        if self.upstream == "anthropic":
            if not key:
                raise ConfigError(
                    "ANTHROPIC_API_KEY is not set: set it to use instructor:anthropic/…, or pass "
                    "--model emulator:claude-sonnet-5 to use the built-in emulator"
                )
            self._sdk: Any = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=base_url or env.get("ANTHROPIC_BASE_URL"),
                max_retries=0,
                timeout=timeout,
                default_headers=default_headers,
                http_client=http_client,
            )
            self._client = instructor.from_anthropic(self._sdk, mode=Mode.TOOLS)
            self._watch_for_emulator()
            return
        kwargs: dict[str, Any] = {}
        if key:
            kwargs["api_key"] = key
        if base_url:
            if self.upstream not in BASE_URL_PROVIDERS:
                raise ConfigError(
                    f"instructor:{spec_model}: instructor does not take a base URL for "
                    f"{self.upstream!r}; use the provider's own environment variables"
                )
            kwargs["base_url"] = base_url
        if self.upstream == "openai":
            kwargs["max_retries"] = 0  # the SDK's retries; panel.run.retry owns retrying
            kwargs["timeout"] = timeout
            if default_headers:
                kwargs["default_headers"] = default_headers
        try:
            self._client = instructor.from_provider(
                f"{self.upstream}/{self.model}", async_client=True, **kwargs
            )
        except ConfigurationError as exc:
            raise ConfigError(f"instructor:{spec_model}: {exc}") from None
        self._sdk = self._client.client
        self._watch_for_emulator()

    def _watch_for_emulator(self) -> None:
        """Label what panel's emulator wrote synthetic, as the native providers do.

        instructor hands back parsed objects without their headers, so the check sits on the
        SDK's own HTTP client (anthropic, openai and the compatibles built on it) as a hook.
        """
        http = getattr(self._sdk, "_client", None)
        if isinstance(http, httpx2.AsyncClient):
            http.event_hooks = {
                **http.event_hooks,
                "response": [*http.event_hooks.get("response", []), self._saw_response],
            }

    async def _saw_response(self, response: httpx2.Response) -> None:
        self.synthetic = self.synthetic or from_emulator(response.headers)
        request_id = response.headers.get("request-id") or response.headers.get("x-request-id")
        cap_wire_bytes(response, self.limits, f"{self.name}:{self.upstream}", request_id)

    def _choose_tool_choice(self) -> Any:
        """What instructor will send; `auto` where forcing is rejected (or unknown: Anthropic)."""
        if self.wire == "openai":
            if self.info is not None and not self.info.forced_tool_choice:
                raise ConfigError(
                    f"instructor forces the tool on the OpenAI wire and {self.model} rejects "
                    f"forced tool choice: use {self.upstream}:{self.model} (panel's own provider)"
                )
            return {"type": "function", "function": {"name": TOOL_NAME}}
        return None

    def build_params(self, request: VerdictRequest) -> dict[str, Any]:
        """The request body as instructor will send it (tools and tool_choice where known)."""
        params: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens}
        messages: list[dict[str, Any]] = []
        if self.wire == "anthropic":
            forced, thinking = tool_policy(self.info, want_thinking=request.thinking)
            params["tool_choice"] = (
                {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True}
                if forced
                else {"type": "auto"}
            )
            if thinking is not None:
                params["thinking"] = thinking
            params["system"] = system_blocks(request)
        else:
            messages.append({"role": "system", "content": request.parts.house})
            messages.append({"role": "system", "content": request.parts.persona})
        messages.append({"role": "user", "content": request.parts.tool})
        messages.extend(_reask_turns(request.reask))
        params["messages"] = messages
        if self._tools is not None:
            params["tools"] = self._tools
        if self._tool_choice is not None:
            params["tool_choice"] = self._tool_choice
        return params

    async def stream_verdict(self, request: VerdictRequest) -> AsyncGenerator[StreamEvent, None]:
        params = self.build_params(request)
        params.pop("tools", None)  # instructor derives them from the response model
        if self.wire != "anthropic":
            params.pop("tool_choice", None)  # instructor sets it (and would overwrite it)
        if request.extra_headers:
            params["extra_headers"] = dict(request.extra_headers)
        try:
            verdict, raw = await asyncio.wait_for(
                self._client.create_with_completion(
                    response_model=ToolVerdict, max_retries=VALIDATION_REASKS, **params
                ),
                self.limits.total,
            )
        except TimeoutError:
            raise UpstreamError(
                ErrorClass.TIMEOUT,
                f"{self.name}:{self.upstream}: no whole response within "
                f"{self.limits.total:g}s (the total deadline)",
            ) from None
        except Exception as exc:
            raise self._classify(exc) from None
        request_id = getattr(raw, "_request_id", None)
        tool_input = verdict.model_dump(mode="json")
        yield StreamStarted(request_id)
        yield ArgsDelta(tool_input)
        yield StreamCompleted(
            tool_input=tool_input,
            usage=usage_of(getattr(raw, "usage", None)),
            stop_reason=str(
                getattr(raw, "stop_reason", None) or _first_finish_reason(raw) or "tool_use"
            ),
            request_id=request_id,
            call_id=None,
        )

    def _classify(self, exc: Exception) -> UpstreamError:
        """Unwrap instructor's wrappers and classify the SDK error (or the validation failure)."""
        usage: Usage | None = None
        cause: BaseException = exc
        if isinstance(exc, InstructorRetryException):
            total = getattr(exc, "total_usage", None)
            usage = usage_of(total) if total else None
            cause = exc.__cause__ or exc
        where = f"{self.name}:{self.upstream}"
        if isinstance(cause, IncompleteOutputException):
            return UpstreamError(
                ErrorClass.TRUNCATED_MAX_TOKENS,
                f"{where}: the verdict was cut off at max_tokens",
                billed=True,
                usage=_usage_dict(usage),
            )
        if isinstance(cause, pydantic.ValidationError | InstructorValidationError):
            return UpstreamError(
                ErrorClass.SCHEMA_INVALID,
                f"{where}: the verdict broke the schema after {VALIDATION_REASKS} re-ask: "
                f"{_first_line(str(cause))}",
                billed=True,
                usage=_usage_dict(usage),
            )
        if isinstance(cause, InstructorRetryException | IncompleteOutputException):
            cause = cause.__cause__ or cause
        return classify_exception(cause, provider=where)

    async def aclose(self) -> None:
        close = getattr(self._sdk, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result


def usage_of(raw: Any) -> Usage:
    """Anthropic `Usage` or OpenAI `CompletionUsage` (instructor sums them over re-asks)."""
    if raw is None:
        return Usage(known=False)
    if hasattr(raw, "input_tokens"):
        return Usage(
            input_tokens=int(getattr(raw, "input_tokens", 0) or 0),
            output_tokens=int(getattr(raw, "output_tokens", 0) or 0),
            cache_read_tokens=int(getattr(raw, "cache_read_input_tokens", 0) or 0),
            cache_write_tokens=int(getattr(raw, "cache_creation_input_tokens", 0) or 0),
        )
    if hasattr(raw, "prompt_tokens"):
        return openai_usage(raw)
    return Usage(known=False)


def _usage_dict(usage: Usage | None) -> dict[str, int] | None:
    return usage.model_dump(exclude={"known"}) if usage is not None and usage.known else None


def _first_finish_reason(raw: Any) -> str | None:
    choices = getattr(raw, "choices", None)
    if choices:
        reason = getattr(choices[0], "finish_reason", None)
        return str(reason) if reason else None
    return None


def _first_line(text: str) -> str:
    return " ".join(text.split("\n")[:3])[:300]


def _reask_turns(reask: Reask | None) -> list[dict[str, Any]]:
    # Plain text turns: instructor translates them for every provider it supports.
    if reask is None:
        return []
    if reask.kind == "invalid_verdict":
        previous = json.dumps(reask.previous_input or {}, ensure_ascii=False)
    else:
        previous = reask.previous_text or "…"
    return [
        {"role": "assistant", "content": previous},
        {"role": "user", "content": reask.message},
    ]
