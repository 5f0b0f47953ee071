"""One request's shared plumbing for both wire formats: key, body, attempt, fault, record."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from panel.emulator.faults import UNBILLED, Fault, FaultSpecError, choose_fault
from panel.emulator.sse import random_id
from panel.emulator.state import (
    BEHAVIOURS,
    Behaviour,
    EmulatorState,
    Stats,
    api_key_namespace,
    public_headers,
)
from panel.emulator.variability import FLIPS_HEADER, Draw, FlipRates, FlipSpecError, parse_sample
from panel.runformat import SAMPLE_HEADER
from panel.tokens import canonical_json

Api = Literal["anthropic", "openai"]


class BadRequest(Exception):
    """A request the emulator answers with an error status."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: the real APIs reject a body that carries them."""
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def load_json(raw: bytes | str) -> Any:
    """Parse a request body as the real APIs do; ValueError names what is wrong with it.

    Beyond `json.loads`: NaN, Infinity and numbers too big for a double (1e999) are refused, a
    nesting too deep for the parser is an error, not a RecursionError, and so is a lone
    surrogate (`\\ud800`) that no UTF-8 text can hold.
    """
    return load_canonical_json(raw)[0]


def load_canonical_json(raw: bytes | str) -> tuple[Any, bytes]:
    """`load_json`, and the value's canonical JSON bytes (what the request digest hashes)."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
        canonical = canonical_json(value).encode()
    except UnicodeEncodeError as exc:
        raise ValueError(exc.reason) from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return value, canonical  # JSONDecodeError and UnicodeDecodeError are ValueErrors already


def api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    return None


@dataclass
class Exchange:
    """What every handler needs to know about the request in front of it."""

    state: EmulatorState
    api: Api
    path: str
    headers: dict[str, str]
    request_id: str
    started: float = field(default_factory=time.time)
    arrived: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    key: str = ""
    namespace: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    body_json: str = ""
    digest: str = ""
    attempt: int = 0
    fault: Fault | None = None
    behaviour: Behaviour = "normal"
    sample: int = 0  # which sample of a pair (x-panel-sample): samples share their body
    flips: FlipRates | None = None  # None: the config's (batch lines carry no headers)
    status: int = 0
    usage: dict[str, Any] | None = None
    recorded: bool = False
    counted_in: Stats | None = None

    @classmethod
    def begin(cls, request: Request, state: EmulatorState, api: Api) -> Exchange:
        prefix = "req_" if api == "anthropic" else "req-"
        ex = cls(
            state=state,
            api=api,
            path=request.url.path,
            headers=public_headers(dict(request.headers)),
            request_id=random_id(prefix),
        )
        ex.counted_in = state.begin()
        return ex

    async def read(self, request: Request) -> None:
        """Authenticate and parse the body; raise BadRequest for the error answer."""
        key = api_key(request)
        if key is None:
            msg = (
                "x-api-key header is required"
                if self.api == "anthropic"
                else "You didn't provide an API key."
            )
            raise BadRequest(
                401,
                "authentication_error" if self.api == "anthropic" else "invalid_request_error",
                msg,
            )
        self.key = key
        self.namespace = api_key_namespace(key)
        try:
            raw = await request.body()
        except ClientDisconnect:  # the client went away (Ctrl-C): no traceback, no answer read
            raise BadRequest(400, "invalid_request_error", "client disconnected") from None
        try:
            body, canonical = load_canonical_json(raw)
        except ValueError as exc:
            raise BadRequest(
                400, "invalid_request_error", f"Request body is not valid JSON: {exc}"
            ) from None
        if not isinstance(body, dict):
            raise BadRequest(400, "invalid_request_error", "Request body must be a JSON object.")
        self.body = body
        self.body_json = raw.decode("utf-8", errors="replace")
        self.digest = hashlib.sha256(canonical).hexdigest()
        behaviour = request.headers.get("x-emulator-behaviour") or self.state.config.behaviour
        if behaviour not in BEHAVIOURS:
            raise BadRequest(
                400, "invalid_request_error", f"x-emulator-behaviour must be one of {BEHAVIOURS}"
            )
        self.behaviour = behaviour
        self.read_draw(request)

    def read_draw(self, request: Request) -> None:
        """The sample index and flip probabilities (panel.emulator.variability) of the request."""
        try:
            self.sample = parse_sample(request.headers.get(SAMPLE_HEADER))
            spec = request.headers.get(FLIPS_HEADER)
            self.flips = FlipRates.parse(spec if spec is not None else self.state.config.flips)
        except (ValueError, FlipSpecError) as exc:
            raise BadRequest(400, "invalid_request_error", str(exc)) from None

    @property
    def draw(self) -> Draw:
        rates = self.flips if self.flips is not None else FlipRates.parse(self.state.config.flips)
        return Draw(sample=self.sample, rates=rates)

    @property
    def attempt_key(self) -> str:
        """Attempts (and seeded faults) are counted per body, and per sample of a body."""
        return self.digest if not self.sample else f"{self.digest}#sample{self.sample}"

    def pick_fault(self, request: Request) -> None:
        """Count this attempt and decide its fault (header, then rules, then seeded plan)."""
        self.attempt = self.state.next_attempt(self.namespace, self.attempt_key)
        cfg = self.state.config
        try:
            self.fault = choose_fault(
                header=request.headers.get("x-emulator-fault"),
                body_json=self.body_json,
                rules=cfg.fault_rules,
                plan=cfg.fault_plan,
                seed=cfg.seed,
                digest=self.attempt_key,
                attempt=self.attempt,
            )
        except FaultSpecError as exc:
            raise BadRequest(400, "invalid_request_error", str(exc)) from exc

    @property
    def fault_name(self) -> str | None:
        return self.fault.name if self.fault else None

    @property
    def billed(self) -> bool:
        return self.fault_name not in UNBILLED

    @property
    def seed(self) -> int:
        return self.state.config.seed

    def finish(
        self, status: int, usage: dict[str, Any] | None = None, note: str | None = None
    ) -> None:
        """Record the request once and leave the in-flight count."""
        if self.recorded:
            return
        self.recorded = True
        self.state.end(self.counted_in)
        self.state.record(
            {
                "time": self.started,
                "request_id": self.request_id,
                "api": self.api,
                "path": self.path,
                "model": self.body.get("model"),
                "stream": bool(self.body.get("stream")),
                "key_id": self.namespace[:12] or None,
                "attempt": self.attempt,
                "body": self.body,
                "headers": self.headers,
                "status": status,
                "usage": usage,
                "fault": self.fault_name,
                "note": note,
            }
        )


def strict_schema_problem(schema: Any, *, all_required: bool, path: str = "") -> str | None:
    """Why a schema is unusable with `strict: true` (None if it is fine).

    Both providers need `additionalProperties: false` on every object; OpenAI also needs
    every property listed in `required` (optional fields are nullable instead).
    """
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            if problem := strict_schema_problem(
                item, all_required=all_required, path=f"{path}[{i}]"
            ):
                return problem
        return None
    if not isinstance(schema, dict):
        return None
    is_object = schema.get("type") == "object" or "properties" in schema
    if is_object:
        if schema.get("additionalProperties") is not False:
            return (
                f"{path or 'schema'}: For 'object' type, 'additionalProperties' must be "
                "explicitly set to false"
            )
        if all_required:
            missing = set(schema.get("properties") or {}) - set(schema.get("required") or [])
            if missing:
                where = path or "schema"
                return f"{where}: 'required' must list every property; missing {sorted(missing)}"
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                if problem := strict_schema_problem(
                    sub, all_required=all_required, path=f"{path}.{key}.{name}"
                ):
                    return problem
        elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems") and (
            problem := strict_schema_problem(value, all_required=all_required, path=f"{path}.{key}")
        ):
            return problem
    return None


async def serve(
    request: Request,
    api: Api,
    handle: Callable[[Request, Exchange], Awaitable[Response]],
    error_response: Callable[[BadRequest, str], Response],
) -> Response:
    """One route of a wire: the exchange begun and finished whatever happens; a `BadRequest`
    becomes the wire's own error shape (`error_response(err, request_id)`)."""
    ex = Exchange.begin(request, request.app.state.emulator, api)
    try:
        return await handle(request, ex)
    except BadRequest as err:
        ex.finish(err.status)
        return error_response(err, ex.request_id)
    except BaseException:
        ex.finish(500, note="emulator exception")
        raise
