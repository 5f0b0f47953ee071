"""`panel emulator`: serve the local Anthropic/OpenAI emulator until stopped."""

from __future__ import annotations

import contextlib
import errno
from typing import Annotated

import typer

from panel.cli.options import FlipsOpt
from panel.emulator.faults import FaultSpecError
from panel.emulator.state import EmulatorConfig
from panel.emulator.variability import FlipSpecError
from panel.errors import ConfigError


def emulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8090,
    seed: Annotated[int, typer.Option(help="Seed for the stub model and the fault plan.")] = 0,
    latency_scale: Annotated[
        float, typer.Option(help="Multiply the latency model (0 = instant).")
    ] = 1.0,
    faults: Annotated[
        str | None,
        typer.Option(help="Seeded fault plan, e.g. overloaded=0.05,reset_midstream=0.02."),
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute per key.")] = None,
    itpm: Annotated[
        int | None, typer.Option(help="Uncached input tokens per minute per key.")
    ] = None,
    otpm: Annotated[int | None, typer.Option(help="Output tokens per minute per key.")] = None,
    flips: FlipsOpt = None,
) -> None:
    """Serve the emulator; prints `listening on http://HOST:PORT` once ready."""
    from panel.emulator.runner import serve  # uvicorn only when serving

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: a port is 0 to 65535 (0 picks a free one)")
    try:
        config = EmulatorConfig.from_cli(
            seed=seed,
            latency_scale=latency_scale,
            faults=faults,
            rpm=rpm,
            itpm=itpm,
            otpm=otpm,
            flips=flips,
        )
    except (FaultSpecError, FlipSpecError) as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:  # --latency-scale inf, --rpm 0
        raise ConfigError(f"--{str(exc).replace('_', '-')}") from None
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve(config, host=host, port=port, on_ready=_announce)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use: stop what holds it, or pick another "
                "with --port (0 picks a free one)"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _announce(url: str) -> None:
    print(f"listening on {url}", flush=True)


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)
