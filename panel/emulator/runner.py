"""Run the emulator on loopback: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from panel.emulator.server import create_app
from panel.emulator.state import EmulatorConfig, EmulatorState


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _server(state: EmulatorState, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state=state),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
        backlog=2048,
    )
    return uvicorn.Server(config)


class EmulatorHandle:
    """A running emulator: its URLs and direct access to its state (same process)."""

    def __init__(self, state: EmulatorState, host: str, port: int) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.base_url = f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            return self.state.stats.as_json()

    def reset(self) -> None:
        self.state.reset()

    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests()

    def configure(self, **patch: Any) -> None:
        """Change config like POST /emulator/config: faults, rules, rpm/itpm/otpm, latency_scale…"""
        self.state.configure(self.state.config.updated(patch))

    def advance_clock(self, seconds: float) -> None:
        self.state.advance_clock(seconds)


@contextmanager
def run_emulator(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmulatorHandle]:
    """Serve in a daemon thread until the block exits; port 0 picks a free port."""
    state = EmulatorState(config or EmulatorConfig())
    sock = _bind(host, port)
    server = _server(state, "warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="emulator"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("emulator failed to start")
        time.sleep(0.01)
    try:
        yield EmulatorHandle(state, host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    config: EmulatorConfig,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    log_level: str = "warning",
) -> None:
    """Serve in the foreground until interrupted; call on_ready(base_url) once listening."""
    state = EmulatorState(config)
    sock = _bind(host, port)
    server = _server(state, log_level)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if server.started:
            shown = f"[{host}]" if ":" in host else host
            on_ready(f"http://{shown}:{sock.getsockname()[1]}")
        await task

    try:
        asyncio.run(main())
    finally:
        sock.close()
