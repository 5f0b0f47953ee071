"""Wire helpers: SSE framing, error bodies, ids, and the deliberate connection reset."""

from __future__ import annotations

import json
import logging
import secrets
from json.encoder import encode_basestring
from typing import Any

from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789"


def random_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def derived_id(prefix: str, digest: str, n: int = 24) -> str:
    """A stable id from a hex digest, in the providers' base58-looking style."""
    value = int(digest[:40], 16)
    out = []
    for _ in range(n):
        value, r = divmod(value, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return prefix + "".join(out)


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def quoted(text: str) -> str:
    """`dumps(text)` for a string (the same characters), without building an encoder."""
    return encode_basestring(text)


def event(name: str, data: dict[str, Any]) -> bytes:
    """One Anthropic-style SSE event: `event:` line, one `data:` line, blank line."""
    return f"event: {name}\ndata: {dumps(data)}\n\n".encode()


class ClosingStreamingResponse(StreamingResponse):
    """A streamed body whose generator is closed however the response ends.

    Starlette reads the body with `async for` and, when the client goes away while a chunk is
    being sent, stops there: the generator stays suspended, and its `finally` (which records
    the request's end) would run whenever the garbage collector finalised it, in whichever
    thread, or never once this loop had closed.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def data_only(payload: str) -> bytes:
    """One OpenAI-style SSE event: only a `data:` line."""
    return f"data: {payload}\n\n".encode()


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def anthropic_error_body(kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def anthropic_error(
    status: int,
    kind: str,
    message: str,
    request_id: str,
    *,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    body = anthropic_error_body(kind, message, request_id)
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(
        body, status_code=status, headers={**(headers or {}), "request-id": request_id}
    )


def openai_error(
    status: int,
    kind: str,
    message: str,
    request_id: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(
        body, status_code=status, headers={**(headers or {}), "x-request-id": request_id}
    )


class ConnectionReset(Exception):
    """Raised inside a streaming body to make the server drop the connection mid-response."""


def _is_reset(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ConnectionReset):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(_is_reset(e) for e in exc.exceptions)
        exc = exc.__cause__ or exc.__context__
    return False


class QuietResets(logging.Filter):
    """Drops the server's traceback for deliberate resets; real errors still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_reset(record.exc_info[1]))


def install_reset_filter() -> None:
    for name in ("uvicorn.error", "uvicorn", "starlette"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietResets) for f in logger.filters):
            logger.addFilter(QuietResets())
