"""Choosing a provider from `--model PROVIDER:MODEL` and the SDKs' environment variables.

With no key configured anywhere, the default is the built-in emulator, and the caller says so
on stderr. Keys are read here and handed to the SDK client; they are never stored elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from panel.errors import ConfigError
from panel.modeltable import Wire
from panel.providers.anthropic import AnthropicProvider
from panel.providers.base import Provider
from panel.providers.openai import OpenAIProvider
from panel.providers.responses import ResponsesProvider
from panel.providers.streaming import StreamLimits
from panel.redact import remember_env_secrets

PROVIDERS = ("anthropic", "openai", "openrouter", "compatible", "emulator", "instructor")
DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-5",
    "openai": "gpt-5.6-luna",
    "openrouter": "anthropic/claude-sonnet-5",
    "emulator": "claude-sonnet-5",
}
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
EMULATOR_KEY = "panel-emulator-key"  # not a secret: the emulator accepts any key


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    model: str
    defaulted_to_emulator: bool = False

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model(spec: str | None, env: Mapping[str, str] | None = None) -> ModelSpec:
    """`anthropic:claude-sonnet-5` → ModelSpec; None → the default for the keys that are set."""
    env = os.environ if env is None else env
    if not spec:
        for provider, var in (
            ("anthropic", "ANTHROPIC_API_KEY"),
            ("openai", "OPENAI_API_KEY"),
            ("openrouter", "OPENROUTER_API_KEY"),
        ):
            if env.get(var):
                return ModelSpec(provider, DEFAULT_MODELS[provider])
        return ModelSpec("emulator", DEFAULT_MODELS["emulator"], defaulted_to_emulator=True)
    provider, sep, model = spec.partition(":")
    if not sep or provider not in PROVIDERS or not model:
        raise ConfigError(
            f"--model {spec!r}: expected PROVIDER:MODEL with PROVIDER one of "
            f"{', '.join(PROVIDERS)} (e.g. anthropic:claude-sonnet-5, emulator:claude-sonnet-5)"
        )
    return ModelSpec(provider, model)


@dataclass(frozen=True)
class EmulatorSettings:
    """How panel drives an in-process emulator (the `emulator:` provider)."""

    seed: int = 0
    latency_scale: float = 0.0
    behaviour: str = "normal"
    faults: str | None = None
    url: str | None = None  # use a running emulator instead (PANEL_EMULATOR_URL)
    # Flip/dissent probability overrides, e.g. "skeptic=0.4,*=0.1" (emulator/variability.py);
    # sent as a request header, so a running emulator honours them too.
    flips: str | None = None


def _require(env: Mapping[str, str], var: str, provider: str) -> str:
    key = env.get(var)
    if not key:
        raise ConfigError(
            f"{var} is not set: set it to use {provider}, or pass "
            "--model emulator:claude-sonnet-5 to use the built-in emulator"
        )
    return key


URL_VARS = ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "PANEL_EMULATOR_URL")


def check_base_urls(env: Mapping[str, str], base_url: str | None) -> None:
    """ConfigError naming the variable when a base URL cannot be parsed (e.g. `http://[::1`)."""
    for name, url in [("--base-url", base_url), *((v, env.get(v)) for v in URL_VARS)]:
        if not url:
            continue
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises on a bad port or an unclosed IPv6 bracket
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError as exc:
            raise ConfigError(f"{name}={url!r} is not a valid URL: {exc}") from None
        if not ok:
            raise ConfigError(f"{name}={url!r} is not a valid URL: expected http(s)://HOST[:PORT]")


WIRE_VAR = "PANEL_OPENAI_WIRE"
_WIRE_NAMES: dict[str, Wire] = {
    "responses": "responses",
    "chat": "chat_completions",
    "chat_completions": "chat_completions",
}


def openai_wire(model: str, env: Mapping[str, str]) -> Wire:
    """The OpenAI wire for `model`: the table's default (Responses for gpt-6-astra, which takes
    tool calls nowhere else), or PANEL_OPENAI_WIRE=responses|chat_completions where it allows."""
    from panel.modeltable import model_info

    info = model_info(model)
    wanted = env.get(WIRE_VAR, "").strip().lower()
    if not wanted:
        return info.default_wire if info is not None else "chat_completions"
    wire = _WIRE_NAMES.get(wanted)
    if wire is None:
        raise ConfigError(f"{WIRE_VAR}={wanted!r}: expected responses or chat_completions")
    if info is not None and not info.takes(wire):
        raise ConfigError(
            f"{WIRE_VAR}={wanted}: {model} takes tool calls only on "
            + " and ".join(info.wires or (info.default_wire,))
        )
    return wire


@contextlib.asynccontextmanager
async def open_provider(
    spec: ModelSpec,
    *,
    env: Mapping[str, str] | None = None,
    emulator: EmulatorSettings | None = None,
    base_url: str | None = None,
    idle_timeout: float = 60.0,
    limits: StreamLimits | None = None,
) -> AsyncIterator[Provider]:
    """Build the provider for a spec; for `emulator:` also start (and stop) the emulator."""
    env = os.environ if env is None else env
    remember_env_secrets(env)  # whatever an upstream echoes back, these values never print
    check_base_urls(env, base_url)
    limits = limits or StreamLimits.from_env(env, idle=idle_timeout)
    async with contextlib.AsyncExitStack() as stack:
        provider: Provider
        if spec.provider == "anthropic":
            provider = AnthropicProvider(
                spec.model,
                api_key=_require(env, "ANTHROPIC_API_KEY", "anthropic"),
                base_url=base_url or env.get("ANTHROPIC_BASE_URL"),
                idle_timeout=idle_timeout,
                limits=limits,
            )
        elif spec.provider == "openai":
            make = (
                ResponsesProvider if openai_wire(spec.model, env) == "responses" else OpenAIProvider
            )
            provider = make(
                spec.model,
                api_key=_require(env, "OPENAI_API_KEY", "openai"),
                base_url=base_url or env.get("OPENAI_BASE_URL"),
                idle_timeout=idle_timeout,
                limits=limits,
            )
        elif spec.provider == "openrouter":
            provider = OpenAIProvider(
                spec.model,
                api_key=_require(env, "OPENROUTER_API_KEY", "openrouter"),
                base_url=base_url or OPENROUTER_BASE_URL,
                name="openrouter",
                flavour="openrouter",
                idle_timeout=idle_timeout,
                limits=limits,
            )
        elif spec.provider == "compatible":
            url = base_url or env.get("OPENAI_BASE_URL")
            if not url:
                raise ConfigError(
                    "compatible:MODEL needs a server: pass --base-url http://HOST:PORT/v1 "
                    "or set OPENAI_BASE_URL (Ollama, vLLM, LM Studio)"
                )
            provider = OpenAIProvider(
                spec.model,
                api_key=env.get("OPENAI_API_KEY"),
                base_url=url,
                name="compatible",
                flavour="compatible",
                idle_timeout=idle_timeout,
                limits=limits,
            )
        elif spec.provider == "instructor":
            # Imported here: instructor is only needed for the long-tail providers.
            from panel.providers.instructor_provider import InstructorProvider

            provider = InstructorProvider(spec.model, env=env, base_url=base_url, limits=limits)
        else:
            provider = await stack.enter_async_context(
                _emulator_provider(
                    spec.model, emulator or EmulatorSettings(), env, idle_timeout, limits
                )
            )
        stack.push_async_callback(provider.aclose)
        yield provider


@contextlib.asynccontextmanager
async def _emulator_provider(
    model: str,
    settings: EmulatorSettings,
    env: Mapping[str, str],
    idle_timeout: float,
    limits: StreamLimits | None = None,
) -> AsyncIterator[Provider]:
    from panel.modeltable import model_info

    info = model_info(model)
    if info is None:
        raise ConfigError(f"the emulator does not know model {model!r}; see panel/data/models.json")
    sent: dict[str, str] = {}
    if settings.behaviour != "normal":
        sent["x-emulator-behaviour"] = settings.behaviour
    if settings.flips:
        sent["x-emulator-flips"] = settings.flips
    headers = sent or None
    with contextlib.ExitStack() as stack:
        url = settings.url or env.get("PANEL_EMULATOR_URL")
        if not url:
            from panel.emulator.faults import FaultSpecError
            from panel.emulator.runner import run_emulator
            from panel.emulator.state import EmulatorConfig

            try:
                config = EmulatorConfig.from_cli(
                    seed=settings.seed, latency_scale=settings.latency_scale, faults=settings.faults
                )
            except FaultSpecError as exc:
                raise ConfigError(f"--faults: {exc}") from None
            except ValueError as exc:  # --latency-scale inf or nan
                raise ConfigError(f"--{str(exc).replace('_', '-')}") from None
            url = stack.enter_context(run_emulator(config)).base_url
        provider: Provider
        if info.provider == "anthropic":
            provider = AnthropicProvider(
                model,
                api_key=EMULATOR_KEY,
                base_url=url,
                name="emulator",
                synthetic=True,
                idle_timeout=idle_timeout,
                limits=limits,
                default_headers=headers,
            )
        else:
            make = ResponsesProvider if openai_wire(model, env) == "responses" else OpenAIProvider
            provider = make(
                model,
                api_key=EMULATOR_KEY,
                base_url=url.rstrip("/") + "/v1",
                name="emulator",
                synthetic=True,
                idle_timeout=idle_timeout,
                limits=limits,
                default_headers=headers,
            )
        yield provider
