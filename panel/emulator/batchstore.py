"""Batch processing for the emulator: the batches and files, and how each request is run.

Each request in a batch goes through the wire modules' own validation, cache accounting and
reply building (`anthropic_api.validate`, `anthropic_reply.build_reply`, `openai_api`…), is
recorded in /emulator/requests (path `…#item`) and billed at 50% in /emulator/stats.

A batch waits `batch_delay_s` (config, default 2 s) times `latency_scale`,
then runs its requests in input order in waves of 8. Inside a wave the requests are
concurrent: all are accounted before any response begins, so identical new prefixes in one
wave all pay the write and later waves read them (hits inside a batch are best effort, as on
the real service). Entries written by batch requests live at least 1 h.

Faults (the create call's `x-emulator-fault` header applies to every request; rules and the
seeded plan are drawn per request): error-status and wire faults make a request `errored`
with the API's error body, `stall` makes it `expired`, content faults shape the message
(`missing_usage` is ignored: batch results always carry usage). Errored, expired and canceled
requests are not billed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from panel.emulator import anthropic_api, openai_api, responses_api
from panel.emulator import anthropic_reply as ar
from panel.emulator.exchange import Api, BadRequest, Exchange, load_json
from panel.emulator.faults import CONTENT, choose_fault
from panel.emulator.pipeline import begin_response, usage_cost
from panel.emulator.promptcache import CacheControlError, CacheResult
from panel.emulator.sse import anthropic_error_body, derived_id, random_id
from panel.emulator.state import Behaviour, EmulatorState
from panel.modeltable import ModelInfo
from panel.providers.cacheblocks import anthropic_blocks, openai_blocks
from panel.runformat import Ttl
from panel.tokens import canonical_json

WAVE = 8
WAVE_DELAY_S = 0.05
DAY_S = 24 * 3600
MAX_OPENAI_REQUESTS = 50_000
# Error-status and wire faults: (HTTP status, Anthropic error type, OpenAI error type, message).
_ERRORS: dict[str, tuple[int, str, str, str]] = {
    "overloaded": (529, "overloaded_error", "server_error", "Overloaded"),
    "overloaded_midstream": (529, "overloaded_error", "server_error", "Overloaded"),
    "rate_limited": (429, "rate_limit_error", "requests", "Rate limit reached."),
    "spend_cap": (429, "rate_limit_error", "insufficient_quota", "Usage limit reached."),
    "auth": (401, "authentication_error", "invalid_request_error", "invalid x-api-key"),
}
_SERVER_ERROR = (500, "api_error", "server_error", "Internal server error")
_EXPIRES = frozenset({"stall"})

Outcome = Literal["succeeded", "errored", "canceled", "expired"]


@dataclass
class Item:
    custom_id: str
    body: dict[str, Any]
    outcome: Outcome | None = None
    line: dict[str, Any] | None = None  # the JSONL result line


@dataclass
class Batch:
    id: str
    api: Api
    namespace: str
    items: list[Item]
    headers: dict[str, str]
    behaviour: Behaviour
    fault_header: str | None
    version: str = ""
    endpoint: str = ""
    input_file_id: str = ""
    metadata: dict[str, Any] | None = None
    model: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finalizing_at: float | None = None
    ended_at: float | None = None
    cancel_at: float | None = None
    failed: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"in": 0, "cached": 0, "out": 0})
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)


@dataclass(frozen=True)
class StoredFile:
    id: str
    namespace: str
    filename: str
    purpose: str
    data: bytes
    created_at: float

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _Work:
    """One request between its accounting and its response (a wave's first half)."""

    item: Item
    ex: Exchange
    model: ModelInfo | None = None
    result: CacheResult | None = None
    error: tuple[int, str, str, str | None] | None = None  # status, type, message, code


def _auto_ttl(body: dict[str, Any]) -> Ttl | None:
    cc = body.get("cache_control")
    if not isinstance(cc, dict):
        return None
    return "1h" if cc.get("ttl") == "1h" else "5m"


def parse_openai_input(data: bytes, endpoint: str) -> tuple[list[Item], list[dict[str, Any]]]:
    """Parse a batch input file: its requests, and the line errors that fail the batch."""
    items: list[Item] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def bad(code: str, line: int, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "line": line, "message": message, "param": param})

    for n, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = load_json(raw)
        except ValueError:
            bad("invalid_json_line", n, "This line is not parseable as valid JSON.")
            continue
        cid = obj.get("custom_id") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not isinstance(cid, str) or not cid:
            bad(
                "missing_required_parameter",
                n,
                "Missing required parameter: 'custom_id'.",
                "custom_id",
            )
        elif cid in seen:
            bad(
                "duplicate_custom_id",
                n,
                "The custom_id for this request is a duplicate.",
                "custom_id",
            )
        elif obj.get("method") != "POST":
            bad("invalid_method", n, "Only the POST method is supported.", "method")
        elif obj.get("url") != endpoint:
            bad(
                "invalid_url",
                n,
                f"The URL provided for this request does not match the batch endpoint {endpoint}.",
                "url",
            )
        elif not isinstance(obj.get("body"), dict):
            bad("missing_required_parameter", n, "Missing required parameter: 'body'.", "body")
        else:
            seen.add(cid)
            items.append(Item(cid, obj["body"]))
    if len({str(i.body.get("model")) for i in items}) > 1:
        bad("mismatched_model", 0, "Each batch may only use one model.", "body.model")
    if not items and not errors:
        bad("empty_file", 0, "The input file contains no requests.")
    if len(items) > MAX_OPENAI_REQUESTS:
        bad("too_many_requests", 0, f"A batch may contain at most {MAX_OPENAI_REQUESTS} requests.")
    return items, errors


class BatchStore:
    """Batches and files of one emulator, processed by tasks on the server's event loop."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.batches: dict[str, Batch] = {}
        self.files: dict[str, StoredFile] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._epoch = state.stats

    def sync_reset(self) -> None:
        """Forget batches and files after POST /emulator/reset (it installs a new Stats)."""
        if self.state.stats is not self._epoch:
            self._epoch = self.state.stats
            for batch in self.batches.values():
                batch.cancel.set()
            self.batches.clear()
            self.files.clear()

    # ---- processing -------------------------------------------------------------------
    def start(self, batch: Batch) -> None:
        self.batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _scaled(self, seconds: float) -> float:
        return seconds * self.state.config.latency_scale

    async def _wait(self, batch: Batch, seconds: float) -> bool:
        """Sleep unless canceled first; True when the batch was canceled."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return batch.cancel.is_set()
        try:
            await asyncio.wait_for(batch.cancel.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _run(self, batch: Batch) -> None:
        try:
            if batch.failed:
                return
            batch.started_at = time.time()
            delay = self.state.config.batch_delay_s
            if await self._wait(batch, self._scaled(delay)):
                return
            for start in range(0, len(batch.items), WAVE):
                works = [self._prepare(batch, item) for item in batch.items[start : start + WAVE]]
                for work in works:
                    self._complete(batch, work)
                if await self._wait(batch, self._scaled(WAVE_DELAY_S)):
                    return
        except Exception as exc:  # a bug must not leave a batch in progress forever
            for item in batch.items:
                if item.outcome is None:
                    kind = "api_error" if batch.api == "anthropic" else "server_error"
                    self._fail(batch, item, (500, kind, f"emulator error: {exc}", None), "")
        finally:
            for item in batch.items:
                if item.outcome is None:
                    item.outcome = "canceled"
                    item.line = self._terminal_line(batch, item, "canceled")
            batch.finalizing_at = time.time()
            if batch.api == "openai" and not batch.failed:
                self._write_output_files(batch)
            batch.ended_at = time.time()

    def _prepare(self, batch: Batch, item: Item) -> _Work:
        """Validate and account one request (the first half of a wave)."""
        state, body = self.state, item.body
        path = "/v1/messages/batches#item" if batch.api == "anthropic" else "/v1/batches#item"
        ex = Exchange(
            state,
            batch.api,
            path,
            batch.headers,
            random_id("req_" if batch.api == "anthropic" else "req-"),
        )
        state.begin()
        ex.namespace, ex.body, ex.behaviour = batch.namespace, body, batch.behaviour
        ex.body_json = json.dumps(body, ensure_ascii=False)
        ex.digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        work = _Work(item, ex)
        try:
            if batch.api == "anthropic":
                if body.get("stream"):
                    raise BadRequest(
                        400, "invalid_request_error", "stream: is not supported in batches"
                    )
                work.model = anthropic_api.validate(body, batch.version)
                if body.get("max_tokens") == 0:
                    raise BadRequest(
                        400,
                        "invalid_request_error",
                        "max_tokens: must be greater than 0 in batches",
                    )
                blocks = anthropic_blocks(body)
                work.result = state.anthropic_cache.account(
                    ex.namespace, work.model, blocks, auto_ttl=_auto_ttl(body), store_ttl="1h"
                )
            elif batch.endpoint == "/v1/responses":
                if body.get("stream"):
                    raise BadRequest(
                        400, "invalid_request_error", "stream: is not supported in batches"
                    )
                work.model = responses_api.validate(body)
                work.result = responses_api.account(
                    state.openai_cache, ex.namespace, work.model, body
                )
            else:
                work.model = openai_api.validate(body)
                work.result = state.openai_cache.account(
                    ex.namespace,
                    work.model,
                    openai_blocks(body),
                    cache_key=body.get("prompt_cache_key"),
                )
        except BadRequest as err:
            work.error = (err.status, err.kind, err.message, err.extra.get("code"))
            return work
        except CacheControlError as exc:
            work.error = (400, "invalid_request_error", str(exc), None)
            return work
        cfg = state.config
        ex.attempt = state.next_attempt(ex.namespace, ex.digest)
        ex.fault = choose_fault(
            header=batch.fault_header,
            body_json=ex.body_json,
            rules=cfg.fault_rules,
            plan=cfg.fault_plan,
            seed=cfg.seed,
            digest=ex.digest,
            attempt=ex.attempt,
        )
        return work

    def _cache(self, batch: Batch) -> Any:
        return self.state.anthropic_cache if batch.api == "anthropic" else self.state.openai_cache

    def _complete(self, batch: Batch, work: _Work) -> None:
        """Answer one request (the second half of a wave): a result line, stats, billing."""
        ex, item, model, result = work.ex, work.item, work.model, work.result
        fault = ex.fault_name
        if work.error is not None:
            self._fail(batch, item, work.error, ex.request_id)
            ex.finish(work.error[0], note="batch item errored")
            return
        assert model is not None and result is not None
        if fault in _EXPIRES or (fault is not None and fault not in CONTENT):
            self._cache(batch).abandon(result.ticket)
            if fault in _EXPIRES:
                item.outcome = "expired"
                item.line = self._terminal_line(batch, item, "expired")
                ex.finish(0, note="batch item expired")
                return
            status, a_kind, o_kind, message = _ERRORS.get(fault or "", _SERVER_ERROR)
            kind = a_kind if batch.api == "anthropic" else o_kind
            if batch.api == "openai" and status == 529:
                status = 503  # OpenAI has no 529; it sheds load with 503
            self._fail(batch, item, (status, kind, message, None), ex.request_id)
            ex.finish(status, note="batch item errored")
            return
        begin_response(ex, self._cache(batch), result)
        if fault == "missing_usage":  # batch results always carry usage
            ex.fault = None
        reply, usage = self._reply(batch, work, model, result)
        self.state.bill(usage_cost(model, result, reply.output_tokens, batch=True))
        batch.usage["in"] += result.read_tokens + result.write_tokens + result.uncached_tokens
        batch.usage["cached"] += result.read_tokens
        batch.usage["out"] += reply.output_tokens
        item.outcome = "succeeded"
        ex.finish(200, usage, note="batch item")

    def _reply(
        self, batch: Batch, work: _Work, model: ModelInfo, result: CacheResult
    ) -> tuple[ar.Reply, dict[str, Any] | None]:
        """Build the success line with the wire modules' own reply and body builders."""
        ex, item = work.ex, work.item
        content_fault = ex.fault_name if ex.fault_name in CONTENT else None
        usage: dict[str, Any] | None
        if batch.api == "anthropic":
            reply = ar.build_reply(
                item.body,
                model,
                seed=ex.seed,
                digest=ex.digest,
                behaviour=ex.behaviour,
                fault=content_fault,
                draw=ex.draw,
            )
            usage = ar.usage_fields(
                uncached=result.uncached_tokens,
                write_5m=result.write_5m_tokens,
                write_1h=result.write_1h_tokens,
                read=result.read_tokens,
                output=reply.output_tokens,
                final=False,
            )
            msg_id = derived_id("msg_01", ex.digest + str(ex.attempt))
            message = ar.message_json(
                reply, msg_id=msg_id, model=str(item.body["model"]), usage=usage
            )
            item.line = {
                "custom_id": item.custom_id,
                "result": {"type": "succeeded", "message": message},
            }
            return reply, usage
        if batch.endpoint == "/v1/responses":
            reply, _ = responses_api.build_reply(item.body, model, ex, content_fault)
            usage = responses_api.usage_json(ex, model, result, reply)
            item.line = {
                "id": derived_id("batch_req_", ex.digest + batch.id),
                "custom_id": item.custom_id,
                "response": {
                    "status_code": 200,
                    "request_id": ex.request_id,
                    "body": responses_api.response_json(ex, reply, usage),
                },
                "error": None,
            }
            return reply, usage
        view = openai_api.anthropic_view(item.body)
        reply = ar.build_reply(
            view,
            model,
            seed=ex.seed,
            digest=ex.digest,
            behaviour=ex.behaviour,
            fault=content_fault,
            draw=ex.draw,
        )
        if any(b.kind == "tool_use" for b in reply.blocks):
            # As in openai_api: Chat Completions tool calls come without prose.
            keep = [i for i, b in enumerate(reply.blocks) if b.kind != "text"]
            reply.blocks = [reply.blocks[i] for i in keep]
            reply.tokens = [reply.tokens[i] for i in keep]
        usage = openai_api.usage_json(ex, model, result, reply.output_tokens)
        body = openai_api.completion_json(ex, reply, usage)
        item.line = {
            "id": derived_id("batch_req_", ex.digest + batch.id),
            "custom_id": item.custom_id,
            "response": {"status_code": 200, "request_id": ex.request_id, "body": body},
            "error": None,
        }
        return reply, usage

    def _fail(self, batch: Batch, item: Item, error: tuple[Any, ...], request_id: str) -> None:
        status, kind, message, code = error
        item.outcome = "errored"
        if batch.api == "anthropic":
            body = anthropic_error_body(kind, message, request_id)
            item.line = {"custom_id": item.custom_id, "result": {"type": "errored", "error": body}}
            return
        item.line = {
            "id": derived_id(
                "batch_req_", hashlib.sha256((batch.id + item.custom_id).encode()).hexdigest()
            ),
            "custom_id": item.custom_id,
            "response": {
                "status_code": status,
                "request_id": request_id,
                "body": {"error": {"message": message, "type": kind, "param": None, "code": code}},
            },
            "error": None,
        }

    def _terminal_line(self, batch: Batch, item: Item, outcome: Outcome) -> dict[str, Any]:
        if batch.api == "anthropic":
            return {"custom_id": item.custom_id, "result": {"type": outcome}}
        code, message = (
            (
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            )
            if outcome == "expired"
            else (
                "batch_cancelled",
                "This request was not executed because the batch was cancelled.",
            )
        )
        return {
            "id": derived_id(
                "batch_req_", hashlib.sha256((batch.id + item.custom_id).encode()).hexdigest()
            ),
            "custom_id": item.custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }

    def shuffled_lines(self, batch: Batch, outcomes: tuple[Outcome, ...]) -> bytes:
        """Result lines in a deterministic shuffle: the API promises no order."""
        lines = [i.line for i in batch.items if i.line is not None and i.outcome in outcomes]
        random.Random(f"{self.state.config.seed}:{batch.id}").shuffle(lines)
        return b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines)

    def _write_output_files(self, batch: Batch) -> None:
        done = [i for i in batch.items if i.outcome is not None]
        if any(i.outcome == "succeeded" for i in done):
            f = self.add_file(
                batch.namespace,
                f"{batch.id}_output.jsonl",
                "batch_output",
                self.shuffled_lines(batch, ("succeeded",)),
            )
            batch.output_file_id = f.id
        if any(i.outcome in ("errored", "expired") for i in done):
            f = self.add_file(
                batch.namespace,
                f"{batch.id}_error.jsonl",
                "batch_output",
                self.shuffled_lines(batch, ("errored", "expired")),
            )
            batch.error_file_id = f.id

    def add_file(self, namespace: str, filename: str, purpose: str, data: bytes) -> StoredFile:
        f = StoredFile(random_id("file-"), namespace, filename, purpose, data, time.time())
        self.files[f.id] = f
        return f

    # ---- lookups ----------------------------------------------------------------------
    def batch(self, api: Api, namespace: str, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.api != api or batch.namespace != namespace:
            kind = "not_found_error" if api == "anthropic" else "invalid_request_error"
            raise BadRequest(404, kind, f"No batch found with id '{batch_id}'.")
        return batch

    def file(self, namespace: str, file_id: str) -> StoredFile:
        f = self.files.get(file_id)
        if f is None or f.namespace != namespace:
            raise BadRequest(404, "invalid_request_error", f"No such File object: {file_id}")
        return f
