"""The one error classifier: SDK exceptions, raw httpx/httpx2 exceptions and stream contents
all map to an UpstreamError with a class from panel.errors.ErrorClass.

Exceptions are not uniform (api-facts.md): mid-stream resets surface as raw transport errors,
mid-stream overloads as APIStatusError with status 200. Everything is classified here so the
retry policy (panel.run.retry) decides on classes, never on exception types. The SDK exception's
request is never kept: its headers hold the API key.
"""

from __future__ import annotations

import json
import math
import sys
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from panel.errors import ErrorClass, UpstreamError

if TYPE_CHECKING:
    import anthropic
    import openai

# Classes the retry policy may retry. Everything else is terminal for the pair or the run.
RETRYABLE = frozenset(
    {
        ErrorClass.RATE_LIMITED,
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER_ERROR,
        ErrorClass.CONNECTION,
        ErrorClass.TIMEOUT,
        ErrorClass.STALLED,
        ErrorClass.TRUNCATED_EOF,
    }
)
# Classes that stop the whole run: nothing else will succeed either.
RUN_FATAL = frozenset({ErrorClass.AUTH, ErrorClass.SPEND_CAP})


def _types(modules: tuple[str, ...], attr: str) -> tuple[type[BaseException], ...]:
    """`attr` of each SDK or transport module that is already imported.

    The SDKs are imported lazily, when a provider opens its client: an exception can only be an
    SDK's if that SDK is loaded, so the classifier never imports one itself (panel's start-up
    cost stays out of commands that never talk to a provider). Plain httpx is optional: some
    compatible clients still raise its exceptions.
    """
    return tuple(getattr(sys.modules[m], attr) for m in modules if m in sys.modules)


_SDKS = ("anthropic", "openai")
_TRANSPORTS = ("httpx2", "httpx")


def classify_exception(exc: BaseException, *, provider: str) -> UpstreamError:
    """Map any exception raised while calling a provider to an UpstreamError."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc.__cause__, UpstreamError):  # panel's own check, wrapped by an SDK's read
        return exc.__cause__
    if isinstance(exc, _types(_SDKS, "APIStatusError")):
        return _classify_status(exc, provider=provider)  # type: ignore[arg-type]
    if isinstance(exc, _types(_SDKS, "APITimeoutError") + _types(_TRANSPORTS, "TimeoutException")):
        return UpstreamError(ErrorClass.TIMEOUT, f"{provider}: request timed out")
    if isinstance(exc, _types(_SDKS, "APIConnectionError") + _types(_TRANSPORTS, "TransportError")):
        cause = exc.__cause__ or exc
        return UpstreamError(
            ErrorClass.CONNECTION, f"{provider}: connection failed ({type(cause).__name__})"
        )
    if isinstance(exc, TimeoutError):
        return UpstreamError(ErrorClass.STALLED, f"{provider}: stream stalled")
    return UpstreamError(
        ErrorClass.PROTOCOL, f"{provider}: unexpected {type(exc).__name__}: {_short(str(exc))}"
    )


def _classify_status(
    exc: anthropic.APIStatusError | openai.APIStatusError, *, provider: str
) -> UpstreamError:
    status = exc.status_code
    headers = exc.response.headers
    body = exc.body
    err_type, message, details = _error_fields(body)
    request_id = headers.get("request-id") or headers.get("x-request-id")
    retry_after = parse_retry_after(headers)
    text = message or _body_text(exc)
    where = f"{provider} {status}"
    if status == 200:
        # An `event: error` inside a 200 stream: the SDK raises a plain APIStatusError.
        return classify_error_event(body, text, provider=provider, request_id=request_id)
    if status == 429:
        code = (details or {}).get("error_code") if isinstance(details, dict) else None
        if (
            code == "enforced_spend_limit_reached"
            or err_type == "insufficient_quota"
            or (isinstance(body, dict) and _openai_code(body) == "insufficient_quota")
        ):
            return UpstreamError(
                ErrorClass.SPEND_CAP,
                f"{where}: spend limit reached: {text}",
                status=status,
                request_id=request_id,
            )
        return UpstreamError(
            ErrorClass.RATE_LIMITED,
            f"{where}: {text}",
            status=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status in (401, 403):
        return UpstreamError(
            ErrorClass.AUTH, f"{where}: {text}", status=status, request_id=request_id
        )
    if status == 402:
        return UpstreamError(
            ErrorClass.SPEND_CAP, f"{where}: {text}", status=status, request_id=request_id
        )
    if status == 413 or "prompt is too long" in text.lower() or "context length" in text.lower():
        return UpstreamError(
            ErrorClass.CONTEXT_TOO_LONG, f"{where}: {text}", status=status, request_id=request_id
        )
    if status == 529 or err_type == "overloaded_error":
        return UpstreamError(
            ErrorClass.OVERLOADED,
            f"{where}: {text}",
            status=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status in (408, 409) or status >= 500:
        return UpstreamError(
            ErrorClass.SERVER_ERROR,
            f"{where}: {text}",
            status=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    return UpstreamError(
        ErrorClass.INVALID_REQUEST, f"{where}: {text}", status=status, request_id=request_id
    )


def classify_error_event(
    body: object, text: str, *, provider: str, request_id: str | None
) -> UpstreamError:
    """An Anthropic-wire `event: error` inside a 200 stream (`overloaded_error` mid-stream)."""
    err_type, message, _ = _error_fields(body)
    klass = ErrorClass.OVERLOADED if err_type == "overloaded_error" else ErrorClass.SERVER_ERROR
    return UpstreamError(
        klass,
        f"{provider} 200 mid-stream {err_type}: {message or text}",
        status=200,
        request_id=request_id,
    )


def classify_stream_error(
    body: object, message: str, *, provider: str, finish_reason: str | None, raw_args: str = ""
) -> UpstreamError:
    """An error object inside a 200 OpenAI-wire stream (`data: {"error": …}`, `event: error`).

    Servers put what happened in `type`, `code` (a string, or an HTTP status as a number) and
    the message, so all three are read: "Token limit reached" after `finish_reason: length` is
    a truncation (one retry with more room), a tool call the server failed to validate is
    invalid JSON, and only what is left is a server error.
    """
    err = body.get("error", body) if isinstance(body, dict) else {}
    err = err if isinstance(err, dict) else {}
    words = " ".join(
        str(v) for v in (err.get("type"), err.get("code"), message) if v is not None
    ).lower()
    status = err.get("status_code") or err.get("code")
    status = status if isinstance(status, int) else None
    where = f"{provider}: error inside the stream"
    if finish_reason == "length" or "token limit" in words or "max_tokens" in words:
        return UpstreamError(
            ErrorClass.TRUNCATED_MAX_TOKENS,
            f"{where}: {message} (the output limit was reached)",
            billed=True,
            raw_text=raw_args,
        )
    if "tool_use_failed" in words or "failed_generation" in err:
        gen = err.get("failed_generation")
        return UpstreamError(
            ErrorClass.INVALID_JSON,
            f"{where}: {message}",
            raw_text=gen if isinstance(gen, str) else raw_args or None,
        )
    if "context length" in words or "context_length" in words or "too long" in words:
        return UpstreamError(ErrorClass.CONTEXT_TOO_LONG, f"{where}: {message}")
    if status == 429 or "rate_limit" in words or "rate limit" in words:
        return UpstreamError(ErrorClass.RATE_LIMITED, f"{where}: {message}")
    if status in (503, 529) or "overload" in words:
        return UpstreamError(ErrorClass.OVERLOADED, f"{where}: {message}")
    return UpstreamError(ErrorClass.SERVER_ERROR, f"{where}: {message}", status=status)


def _error_fields(body: object) -> tuple[str | None, str | None, Any]:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return (
                _str_or_none(err.get("type")),
                _str_or_none(err.get("message")),
                err.get("details"),
            )
    return None, None, None


def _openai_code(body: dict[str, Any]) -> str | None:
    err = body.get("error", body)
    return _str_or_none(err.get("code")) if isinstance(err, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _body_text(exc: anthropic.APIStatusError | openai.APIStatusError) -> str:
    """A readable line from a body that may be HTML (F07) or JSON."""
    try:
        raw = exc.response.text
    except Exception:  # a streamed body already consumed
        raw = str(exc.body or "")
    if "<" in raw and ">" in raw:
        import re

        title = re.search(r"<title>(.*?)</title>", raw, re.I | re.S)
        raw = title.group(1) if title else re.sub(r"<[^>]+>", " ", raw)
    return _short(" ".join(raw.split())) or "no error message"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(text: str, scale: float = 1.0) -> float | None:
    """A header's number of seconds; None for what is not a finite number (NaN, inf, 1e400)."""
    try:
        value = float(text) / scale
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait, from retry-after-ms, retry-after (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms and (seconds := _seconds(ms, 1000)) is not None:
        return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    if (seconds := _seconds(value)) is not None:
        return seconds
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def truncated(stop_reason: str | None, raw_args: str) -> UpstreamError:
    """A stream that ended without a complete tool call is never a verdict (F12, F14)."""
    if stop_reason in ("max_tokens", "length"):
        return UpstreamError(
            ErrorClass.TRUNCATED_MAX_TOKENS,
            "the output limit was reached inside the tool call",
            billed=True,
            raw_text=raw_args,
        )
    return UpstreamError(
        ErrorClass.TRUNCATED_EOF,
        "the stream ended before its final event",
        billed=True,
        raw_text=raw_args,
    )


def parse_tool_json(raw: str) -> dict[str, Any]:
    """Parse complete tool arguments; invalid JSON is its own class (F15)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise UpstreamError(
            ErrorClass.INVALID_JSON,
            # The raw text is kept in the message, size-capped (F15).
            f"tool arguments are not valid JSON ({exc.msg} at char {exc.pos}); "
            f"they began: {_short(raw, 200)!r}",
            billed=True,
            raw_text=raw,
        ) from None
    if not isinstance(value, dict):
        raise UpstreamError(
            ErrorClass.INVALID_JSON,
            "tool arguments are not a JSON object",
            billed=True,
            raw_text=raw,
        )
    return value


def classify_response_error(
    code: str | None, message: str, *, provider: str, request_id: str | None = None
) -> UpstreamError:
    """An error the Responses API reports by code inside a 200 stream (an `error` event, or
    `response.failed`'s `response.error`). The codes only it sends decide first (a spend cap,
    a policy refusal, an invalid request: none worth a retry); the rest is read as any other
    stream error (`classify_stream_error`: rate limit, overload, context, else server error)."""
    c = (code or "").lower()
    text = f"{provider}: error inside the stream ({code or 'no code'}): {_short(message)}"
    klass: ErrorClass | None = None
    if c == "insufficient_quota":
        klass = ErrorClass.SPEND_CAP
    elif "policy" in c or c == "content_filter":
        klass = ErrorClass.REFUSED
    elif c.startswith(("invalid_", "unsupported_", "image_", "empty_", "failed_to_download")):
        klass = ErrorClass.INVALID_REQUEST
    elif c == "slow_down":
        klass = ErrorClass.OVERLOADED
    if klass is not None:
        err = UpstreamError(klass, text, status=200, request_id=request_id)
    else:
        err = classify_stream_error({"code": code}, message, provider=provider, finish_reason=None)
    err.request_id = err.request_id or request_id
    err.billed = True
    return err
