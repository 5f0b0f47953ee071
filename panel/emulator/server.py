"""The emulator's Starlette app: the three wire APIs, optional batches, and introspection."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from panel.emulator.anthropic_api import create_message
from panel.emulator.exchange import load_json
from panel.emulator.faults import FaultSpecError
from panel.emulator.openai_api import chat_completions
from panel.emulator.responses_api import create_response
from panel.emulator.sse import anthropic_error, install_reset_filter, openai_error, random_id
from panel.emulator.state import EmulatorConfig, EmulatorState
from panel.runformat import EMULATOR_HEADER


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, "config": _state(request).config.describe()})


async def stats(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse(state.stats.as_json())


async def requests_log(request: Request) -> Response:
    return JSONResponse(_state(request).requests())


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"ok": True})


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = load_json(await request.body() or b"{}")
    except ValueError as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


async def configure(request: Request) -> Response:
    state = _state(request)
    try:
        state.configure(state.config.updated(await _json_body(request)))
    except (ValueError, TypeError, KeyError, FaultSpecError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True, "config": state.config.describe()})


async def clock(request: Request) -> Response:
    state = _state(request)
    try:
        value = (await _json_body(request)).get("advance", 0)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError("advance must be a number of seconds")
        state.advance_clock(float(value))
    except (ValueError, TypeError, OverflowError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True, "clock": state.clock()})


async def not_found(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the provider's error shape, not Starlette's text."""
    status = getattr(exc, "status_code", 404)
    rid = random_id("req_")
    message = f"{request.method} {request.url.path} is not served by the emulator"
    if any(p in request.url.path for p in ("/chat/", "/files", "/responses")):
        return openai_error(status, "invalid_request_error", message, rid)
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    return anthropic_error(status, kind, message, rid)


def _batch_routes(state: EmulatorState) -> list[BaseRoute]:
    # Batches are optional: mounted when panel.emulator.batches provides batch_routes(state).
    try:
        module = import_module("panel.emulator.batches")
    except ModuleNotFoundError as exc:
        if exc.name == "panel.emulator.batches":
            return []
        raise
    factory = getattr(module, "batch_routes", None)
    return list(factory(state)) if factory is not None else []


class _Identify:
    """ASGI middleware: every response says it came from panel's emulator (EMULATOR_HEADER)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def identified(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((EMULATOR_HEADER.encode(), b"1"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, identified)


def create_app(
    config: EmulatorConfig | None = None, state: EmulatorState | None = None
) -> Starlette:
    """Build the ASGI app; pass `state` to share it with the caller (the runner does)."""
    state = state or EmulatorState(config or EmulatorConfig())
    install_reset_filter()
    routes: list[BaseRoute] = [
        Route("/v1/messages", create_message, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        *_batch_routes(state),
        Route("/emulator/health", health, methods=["GET"]),
        Route("/emulator/stats", stats, methods=["GET"]),
        Route("/emulator/requests", requests_log, methods=["GET"]),
        Route("/emulator/reset", reset, methods=["POST"]),
        Route("/emulator/config", configure, methods=["POST"]),
        Route("/emulator/clock", clock, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found},
        middleware=[Middleware(_Identify)],
    )
    app.state.emulator = state
    return app
