"""A loopback upstream that misbehaves on purpose for some pairs and forwards the rest.

Requests whose body names a tool with one of the trigger words get that behaviour; every other
request is forwarded whole to a real emulator, so the rest of the run stays ordinary:

    Silent    accepts the connection and the request, never answers
    Headers   sends 200 and event-stream headers, then nothing
    Endless   a valid stream (message_start, a tool_use block) whose deltas never stop
    Huge      a valid stream whose tool-argument deltas are 300 KiB each, without end: the first
              is over any byte cap panel uses (256 KiB by default), so the cap trips at once,
              however slowly a loaded machine parses
    Oneline   200 and event-stream headers, then one line that never ends (no event, ever)
    Zipline   the same line gzip-compressed: a few KiB on the wire, megabytes once inflated
    Echo      a 400 whose error message echoes every request header (the key with them)
    Parrot    a verdict that quotes the key: the request is forwarded with the key it carried
              written into the tool description, and the emulator echoes the description

Every wire: `/v1/messages` streams Anthropic events, `/v1/chat/completions` OpenAI chunks,
`/v1/responses` Responses events.
Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

TRIGGERS = ("Silent", "Headers", "Endless", "Huge", "Oneline", "Zipline", "Echo", "Parrot")


@dataclass
class HostileUpstream:
    forward_to: str
    base_url: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            trigger = next((t for t in TRIGGERS if f"{t} Tool".encode() in body), None)
            if trigger is None:
                await self._forward(writer, method, path, headers, body)
                return
            self.hits[trigger] = self.hits.get(trigger, 0) + 1
            if trigger == "Parrot":
                key = headers.get("x-api-key") or headers.get("authorization", "").split()[-1]
                body = body.replace(b"Parrot Tool", f"Parrot Tool ({key})".encode())
                headers = {**headers, "x-emulator-behaviour": "echo"}
                await self._forward(writer, method, path, headers, body)
                return
            if trigger == "Echo":
                echoed = "; ".join(f"{k}: {v}" for k, v in headers.items())
                error = {"type": "invalid_request_error", "message": f"bad request ({echoed})"}
                data = json.dumps({"type": "error", "error": {**error, "code": None}}).encode()
                writer.write(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
                return
            if trigger == "Silent":
                await asyncio.sleep(3600)
                return
            zipped = trigger == "Zipline"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + (b"content-encoding: gzip\r\n" if zipped else b"")
                + b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
            )
            await writer.drain()
            if trigger in ("Oneline", "Zipline"):
                gzip = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
                line = b"x" * (256 * 1024)
                writer.write(gzip.compress(b"data: ") if zipped else b"data: ")
                while True:
                    data = gzip.compress(line) + gzip.flush(zlib.Z_SYNC_FLUSH) if zipped else line
                    writer.write(data)
                    await writer.drain()
                    await asyncio.sleep(0)
            if trigger == "Headers":
                await asyncio.sleep(3600)
                return
            chunk = "x" * (300 * 1024 if trigger == "Huge" else 8)
            openai = path.startswith("/v1/chat")
            responses = path.startswith("/v1/responses")
            for event in _responses_opening() if responses else _opening(openai):
                writer.write(event)
            while True:
                writer.write(_responses_delta(chunk) if responses else _delta(openai, chunk))
                await writer.drain()
                await asyncio.sleep(0.005)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        keep = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
        req = urllib.request.Request(
            self.forward_to.rstrip("/") + path, data=body or None, headers=keep, method=method
        )

        def fetch() -> tuple[int, str, bytes]:
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, resp.headers.get("content-type", ""), resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers.get("content-type", ""), exc.read()

        status, ctype, data = await asyncio.to_thread(fetch)
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {len(data)}\r\n"
            "connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _opening(openai: bool) -> list[bytes]:
    if openai:
        first = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "record_verdict", "arguments": ""},
                            }
                        ],
                    },
                    "finish_reason": None,
                }
            ],
        }
        return [f"data: {json.dumps(first)}\n\n".encode()]
    usage = {"input_tokens": 10, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m"}
    return [
        _sse("message_start", {"type": "message_start", "message": {**message, "usage": usage}}),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "tu_1", "name": "record_verdict"},
            },
        ),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"headline": "'},
            },
        ),
    ]


def _delta(openai: bool, text: str) -> bytes:
    if openai:
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": text}}]},
                    "finish_reason": None,
                }
            ],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()
    return _sse(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": text},
        },
    )


def _responses_opening() -> list[bytes]:
    shell = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_1",
        "name": "record_verdict",
    }
    return [
        _sse("response.created", {"type": "response.created", "response": shell}),
        _sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": item},
        ),
        _responses_delta('{"headline": "'),
    ]


def _responses_delta(text: str) -> bytes:
    name = "response.function_call_arguments.delta"
    return _sse(name, {"type": name, "output_index": 0, "item_id": "fc_1", "delta": text})


@contextlib.contextmanager
def hostile_upstream(forward_to: str) -> Iterator[HostileUpstream]:
    """Run the upstream in a thread on 127.0.0.1; stop it (and every open connection) after."""
    upstream = HostileUpstream(forward_to)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    server_box: list[asyncio.base_events.Server] = []

    async def start() -> None:
        server = await asyncio.start_server(upstream._handle, "127.0.0.1", 0)
        server_box.append(server)
        port = server.sockets[0].getsockname()[1]
        upstream.base_url = f"http://127.0.0.1:{port}"
        ready.set()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.sleep(0.05))
        server_box[0].close()
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield upstream
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
