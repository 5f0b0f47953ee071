"""The batch endpoints: Anthropic Message Batches and OpenAI Files + Batch, shaped as the SDKs'.

Routes (mounted by server.py via `batch_routes(state)`): `POST/GET /v1/messages/batches`,
`GET/DELETE /v1/messages/batches/{id}`, `POST …/{id}/cancel`, `GET …/{id}/results` (JSONL,
shuffled deterministically); `POST /v1/files` (multipart), `GET/DELETE /v1/files/{id}`,
`GET /v1/files/{id}/content`, `POST/GET /v1/batches`, `GET /v1/batches/{id}`,
`POST /v1/batches/{id}/cancel`. Batches and files are private to the API key that created
them and are forgotten on POST /emulator/reset. Processing lives in `batchstore`.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from panel.emulator import anthropic_api, openai_api
from panel.emulator.batchstore import DAY_S, Batch, BatchStore, Item, parse_openai_input
from panel.emulator.exchange import Api, BadRequest, api_key, load_json
from panel.emulator.faults import FaultSpecError, parse_fault
from panel.emulator.sse import random_id
from panel.emulator.state import (
    BEHAVIOURS,
    Behaviour,
    EmulatorState,
    api_key_namespace,
    public_headers,
)

MAX_ANTHROPIC_REQUESTS = 100_000
MAX_ANTHROPIC_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ts(t: float | None) -> int | None:
    return None if t is None else int(t)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = load_json(raw or b"{}")
    except ValueError as exc:
        raise BadRequest(
            400, "invalid_request_error", f"Request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest(400, "invalid_request_error", "Request body must be a JSON object.")
    return body


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Parse multipart/form-data with the stdlib (python-multipart is not a dependency)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not msg.is_multipart():
        raise BadRequest(400, "invalid_request_error", "Expected a multipart/form-data body.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.get_payload():
        assert isinstance(part, email.message.Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def anthropic_json(batch: Batch, base_url: str) -> dict[str, Any]:
    ended = batch.ended_at is not None
    counts = {
        o: batch.count(o) if ended else 0 for o in ("succeeded", "errored", "canceled", "expired")
    }
    status = "ended" if ended else "canceling" if batch.cancel_at else "in_progress"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {"processing": 0 if ended else len(batch.items), **counts},
        "ended_at": _iso(batch.ended_at),
        "created_at": _iso(batch.created_at),
        "expires_at": _iso(batch.created_at + DAY_S),
        "archived_at": None,
        "cancel_initiated_at": _iso(batch.cancel_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def openai_json(batch: Batch) -> dict[str, Any]:
    ended = batch.ended_at is not None
    if batch.failed:
        status = "failed" if ended else "validating"
    elif batch.cancel_at:
        status = "cancelled" if ended else "cancelling"
    elif ended:
        status = "completed"
    elif batch.finalizing_at:
        status = "finalizing"
    else:
        status = "in_progress" if batch.started_at else "validating"
    total = 0 if batch.failed else len(batch.items)
    failed = sum(batch.count(o) for o in ("errored", "expired"))
    u = batch.usage
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.model,
        "errors": {"object": "list", "data": batch.failed} if batch.failed else None,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(batch.created_at),
        "in_progress_at": None if batch.failed else _ts(batch.started_at),
        "expires_at": int(batch.created_at + DAY_S),
        "finalizing_at": None if batch.failed or batch.cancel_at else _ts(batch.finalizing_at),
        "completed_at": _ts(batch.ended_at) if status == "completed" else None,
        "failed_at": _ts(batch.ended_at) if status == "failed" else None,
        "expired_at": None,
        "cancelling_at": _ts(batch.cancel_at),
        "cancelled_at": _ts(batch.ended_at) if status == "cancelled" else None,
        "request_counts": {
            "total": total,
            "completed": batch.count("succeeded"),
            "failed": failed,
        },
        "metadata": batch.metadata,
        "usage": {
            "input_tokens": u["in"],
            "input_tokens_details": {"cached_tokens": u["cached"]},
            "output_tokens": u["out"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u["in"] + u["out"],
        },
    }


def _options(request: Request) -> tuple[Behaviour, str | None, dict[str, str]]:
    """Behaviour, fault header and loggable headers of a batch-create call."""
    behaviour = request.headers.get("x-emulator-behaviour")
    if behaviour is not None and behaviour not in BEHAVIOURS:
        raise BadRequest(
            400, "invalid_request_error", f"x-emulator-behaviour must be one of {BEHAVIOURS}"
        )
    fault = request.headers.get("x-emulator-fault")
    if fault:
        try:
            parse_fault(fault)
        except FaultSpecError as exc:
            raise BadRequest(400, "invalid_request_error", str(exc)) from exc
    chosen: Behaviour = behaviour if behaviour in BEHAVIOURS else "normal"
    return chosen, fault or None, public_headers(dict(request.headers))


Handler = Callable[[Request, str], Awaitable[Response]]


def _endpoint(
    store: BatchStore, api: Api, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run the handler with the key's namespace, answer errors in the API's shape."""

    async def endpoint(request: Request) -> Response:
        request_id = random_id("req_" if api == "anthropic" else "req-")
        try:
            key = api_key(request)
            if key is None:
                if api == "anthropic":
                    raise BadRequest(401, "authentication_error", "x-api-key header is required")
                raise BadRequest(401, "invalid_request_error", "You didn't provide an API key.")
            store.sync_reset()
            return await handler(request, api_key_namespace(key))
        except BadRequest as err:
            if api == "anthropic":
                return anthropic_api.error_response(err, request_id)
            return openai_api.error_response(err, request_id)

    return endpoint


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _limit(request: Request, default: int = 20) -> int:
    try:
        limit = int(request.query_params.get("limit", default))
    except ValueError as exc:
        raise BadRequest(400, "invalid_request_error", "limit: must be an integer") from exc
    if not 1 <= limit <= 1000:
        raise BadRequest(400, "invalid_request_error", "limit: must be between 1 and 1000")
    return limit


class _Handlers:
    """The HTTP endpoints over one BatchStore."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store

    # ---- Anthropic Message Batches ----------------------------------------------------
    async def anthropic_create(self, request: Request, ns: str) -> Response:
        version = request.headers.get("anthropic-version")
        if version not in anthropic_api.VERSIONS:
            raise BadRequest(
                400, "invalid_request_error", f"anthropic-version: {version!r} is not supported"
            )
        raw = await request.body()
        if len(raw) > MAX_ANTHROPIC_BYTES:
            raise BadRequest(
                413, "request_too_large", "Request exceeds the maximum allowed number of bytes."
            )
        requests = _json_object(raw).get("requests")
        if not isinstance(requests, list) or not requests:
            raise BadRequest(
                400, "invalid_request_error", "requests: at least one request is required"
            )
        if len(requests) > MAX_ANTHROPIC_REQUESTS:
            raise BadRequest(
                400,
                "invalid_request_error",
                f"requests: at most {MAX_ANTHROPIC_REQUESTS} requests per batch",
            )
        items: list[Item] = []
        seen: set[str] = set()
        for i, entry in enumerate(requests):
            cid = entry.get("custom_id") if isinstance(entry, dict) else None
            if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
                raise BadRequest(
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'",
                )
            if cid in seen:
                raise BadRequest(
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: duplicate custom_id {cid!r}",
                )
            params = entry.get("params")
            if not isinstance(params, dict):
                raise BadRequest(
                    400, "invalid_request_error", f"requests.{i}.params: Field required"
                )
            seen.add(cid)
            items.append(Item(cid, params))
        behaviour, fault, headers = _options(request)
        batch = Batch(
            random_id("msgbatch_01"),
            "anthropic",
            ns,
            items,
            headers,
            behaviour,
            fault,
            version=version or "",
        )
        self.store.start(batch)
        return JSONResponse(anthropic_json(batch, _base_url(request)))

    async def anthropic_retrieve(self, request: Request, ns: str) -> Response:
        batch = self.store.batch("anthropic", ns, request.path_params["batch_id"])
        return JSONResponse(anthropic_json(batch, _base_url(request)))

    async def anthropic_list(self, request: Request, ns: str) -> Response:
        mine = [
            b for b in self.store.batches.values() if b.api == "anthropic" and b.namespace == ns
        ]
        mine.reverse()  # most recently created first
        ids = [b.id for b in mine]
        after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
        limit = _limit(request)
        if after in ids:
            rest = mine[ids.index(after) + 1 :]
            page, has_more = rest[:limit], len(rest) > limit
        elif before in ids:
            rest = mine[: ids.index(before)]
            page, has_more = rest[-limit:], len(rest) > limit
        else:
            page, has_more = mine[:limit], len(mine) > limit
        base = _base_url(request)
        return JSONResponse(
            {
                "data": [anthropic_json(b, base) for b in page],
                "has_more": has_more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        )

    async def anthropic_cancel(self, request: Request, ns: str) -> Response:
        batch = self.store.batch("anthropic", ns, request.path_params["batch_id"])
        if batch.ended_at is None and batch.cancel_at is None:
            batch.cancel_at = time.time()
            batch.cancel.set()
        return JSONResponse(anthropic_json(batch, _base_url(request)))

    async def anthropic_delete(self, request: Request, ns: str) -> Response:
        batch = self.store.batch("anthropic", ns, request.path_params["batch_id"])
        if batch.ended_at is None:
            raise BadRequest(
                400,
                "invalid_request_error",
                "Batches cannot be deleted while processing; cancel it first.",
            )
        del self.store.batches[batch.id]
        return JSONResponse({"id": batch.id, "type": "message_batch_deleted"})

    async def anthropic_results(self, request: Request, ns: str) -> Response:
        batch = self.store.batch("anthropic", ns, request.path_params["batch_id"])
        if batch.ended_at is None:
            raise BadRequest(
                400, "invalid_request_error", f"Batch {batch.id} has not finished processing."
            )
        data = self.store.shuffled_lines(batch, ("succeeded", "errored", "canceled", "expired"))
        return Response(data, media_type="application/x-jsonl")

    # ---- OpenAI Files -----------------------------------------------------------------
    async def file_create(self, request: Request, ns: str) -> Response:
        raw = await request.body()
        if len(raw) > MAX_FILE_BYTES + 64 * 1024:
            raise BadRequest(
                413, "invalid_request_error", "File exceeds the maximum size of 200 MB."
            )
        fields = _multipart(request.headers.get("content-type", ""), raw)
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace").strip()
        if purpose not in FILE_PURPOSES:
            raise BadRequest(
                400,
                "invalid_request_error",
                f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'",
                param="purpose",
            )
        if "file" not in fields:
            raise BadRequest(
                400, "invalid_request_error", "Missing required parameter: 'file'.", param="file"
            )
        filename, data = fields["file"]
        f = self.store.add_file(ns, filename or "upload", purpose, data)
        return JSONResponse(f.json())

    async def file_retrieve(self, request: Request, ns: str) -> Response:
        return JSONResponse(self.store.file(ns, request.path_params["file_id"]).json())

    async def file_content(self, request: Request, ns: str) -> Response:
        f = self.store.file(ns, request.path_params["file_id"])
        return Response(f.data, media_type="application/octet-stream")

    async def file_delete(self, request: Request, ns: str) -> Response:
        f = self.store.file(ns, request.path_params["file_id"])
        del self.store.files[f.id]
        return JSONResponse({"id": f.id, "object": "file", "deleted": True})

    # ---- OpenAI Batch -----------------------------------------------------------------
    async def openai_create(self, request: Request, ns: str) -> Response:
        body = _json_object(await request.body())
        endpoint = body.get("endpoint")
        if endpoint not in ("/v1/chat/completions", "/v1/responses"):
            raise BadRequest(
                400,
                "invalid_request_error",
                "The emulator batches only '/v1/chat/completions' and '/v1/responses'.",
                param="endpoint",
            )
        if body.get("completion_window") != "24h":
            raise BadRequest(
                400,
                "invalid_request_error",
                "completion_window: only '24h' is supported.",
                param="completion_window",
            )
        source = self.store.file(ns, str(body.get("input_file_id")))
        if source.purpose != "batch":
            raise BadRequest(
                400,
                "invalid_request_error",
                "The input file must be uploaded with purpose 'batch'.",
                param="input_file_id",
            )
        items, errors = parse_openai_input(source.data, endpoint)
        behaviour, fault, headers = _options(request)
        metadata = body.get("metadata")
        batch = Batch(
            random_id("batch_"),
            "openai",
            ns,
            items,
            headers,
            behaviour,
            fault,
            endpoint=endpoint,
            input_file_id=source.id,
            metadata=metadata if isinstance(metadata, dict) else None,
            model=str(items[0].body.get("model")) if items else None,
            failed=errors,
        )
        self.store.start(batch)
        return JSONResponse(openai_json(batch))

    async def openai_retrieve(self, request: Request, ns: str) -> Response:
        return JSONResponse(
            openai_json(self.store.batch("openai", ns, request.path_params["batch_id"]))
        )

    async def openai_cancel(self, request: Request, ns: str) -> Response:
        batch = self.store.batch("openai", ns, request.path_params["batch_id"])
        if batch.ended_at is None and batch.cancel_at is None:
            batch.cancel_at = time.time()
            batch.cancel.set()
        return JSONResponse(openai_json(batch))

    async def openai_list(self, request: Request, ns: str) -> Response:
        mine = [b for b in self.store.batches.values() if b.api == "openai" and b.namespace == ns]
        mine.reverse()
        ids = [b.id for b in mine]
        after = request.query_params.get("after")
        rest = mine[ids.index(after) + 1 :] if after in ids else mine
        limit = _limit(request)
        page = rest[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": [openai_json(b) for b in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(rest) > limit,
            }
        )


def batch_routes(state: EmulatorState) -> list[Route]:
    """The batch and file endpoints of both APIs, sharing `state` with the wire handlers."""
    store = BatchStore(state)
    h = _Handlers(store)
    a: Api = "anthropic"
    o: Api = "openai"
    table: list[tuple[str, Api, Handler, str]] = [
        ("/v1/messages/batches", a, h.anthropic_create, "POST"),
        ("/v1/messages/batches", a, h.anthropic_list, "GET"),
        ("/v1/messages/batches/{batch_id}", a, h.anthropic_retrieve, "GET"),
        ("/v1/messages/batches/{batch_id}", a, h.anthropic_delete, "DELETE"),
        ("/v1/messages/batches/{batch_id}/cancel", a, h.anthropic_cancel, "POST"),
        ("/v1/messages/batches/{batch_id}/results", a, h.anthropic_results, "GET"),
        ("/v1/files", o, h.file_create, "POST"),
        ("/v1/files/{file_id}", o, h.file_retrieve, "GET"),
        ("/v1/files/{file_id}", o, h.file_delete, "DELETE"),
        ("/v1/files/{file_id}/content", o, h.file_content, "GET"),
        ("/v1/batches", o, h.openai_create, "POST"),
        ("/v1/batches", o, h.openai_list, "GET"),
        ("/v1/batches/{batch_id}", o, h.openai_retrieve, "GET"),
        ("/v1/batches/{batch_id}/cancel", o, h.openai_cancel, "POST"),
    ]
    return [
        Route(path, _endpoint(store, api, fn), methods=[method]) for path, api, fn, method in table
    ]
