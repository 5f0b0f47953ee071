"""The emulator's configuration and mutable state: caches, stats, request log, attempt counts."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from panel.emulator.faults import Fault, FaultRule, parse_plan, rules_from_json
from panel.emulator.promptcache import AnthropicCache, OpenAICache
from panel.emulator.ratelimit import RateLimiter, RateLimits
from panel.emulator.variability import FlipRates
from panel.modeltable import ModelInfo

Behaviour = Literal["normal", "echo", "obey", "plant"]
BEHAVIOURS: tuple[Behaviour, ...] = ("normal", "echo", "obey", "plant")
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})
_LOG_LIMIT = 10_000


@dataclass(frozen=True)
class EmulatorConfig:
    """What shapes the emulator's behaviour; change it at runtime via /emulator/config."""

    seed: int = 0
    latency_scale: float = 1.0
    behaviour: Behaviour = "normal"
    fault_plan: tuple[tuple[Fault, float], ...] = ()
    fault_rules: tuple[FaultRule, ...] = ()
    rate_limits: RateLimits = field(default_factory=RateLimits)
    stall_seconds: float = 120.0
    batch_delay_s: float = 2.0  # a batch's processing time, times latency_scale
    flips: str = ""  # flip/dissent probability overrides (panel.emulator.variability)

    def __post_init__(self) -> None:
        # inf latency never answers, NaN breaks every clock, 0 requests a minute divides by 0.
        for name in ("latency_scale", "stall_seconds", "batch_delay_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        for name, limit in asdict(self.rate_limits).items():
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be at least 1 (or unset), not {limit}")

    @classmethod
    def from_cli(
        cls,
        *,
        seed: int = 0,
        latency_scale: float = 1.0,
        faults: str | None = None,
        rpm: int | None = None,
        itpm: int | None = None,
        otpm: int | None = None,
        flips: str | None = None,
    ) -> EmulatorConfig:
        if flips:
            FlipRates.parse(flips)  # FlipSpecError now, not a 400 on every request
        return cls(
            flips=flips or "",
            seed=seed,
            latency_scale=latency_scale,
            fault_plan=parse_plan(faults) if faults else (),
            rate_limits=RateLimits(rpm=rpm, itpm=itpm, otpm=otpm),
        )

    def updated(self, patch: dict[str, Any]) -> EmulatorConfig:
        """Apply a /emulator/config JSON patch; unknown keys raise ValueError."""
        changes: dict[str, Any] = {}
        limits = self.rate_limits
        for key, value in patch.items():
            if key in ("seed",):
                changes[key] = int(value)
            elif key in ("latency_scale", "stall_seconds", "batch_delay_s"):
                changes[key] = float(value)
            elif key == "behaviour":
                if value not in BEHAVIOURS:
                    raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
                changes[key] = value
            elif key == "faults":
                changes["fault_plan"] = parse_plan(value) if value else ()
            elif key == "rules":
                changes["fault_rules"] = rules_from_json(value or [])
            elif key == "flips":
                FlipRates.parse(value)  # a ValueError (FlipSpecError) becomes the 400
                changes[key] = str(value or "")
            elif key in ("rpm", "itpm", "otpm"):
                limits = replace(limits, **{key: None if value is None else int(value)})
            else:
                raise ValueError(f"unknown config key {key!r}")
        return replace(self, rate_limits=limits, **changes)

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "latency_scale": self.latency_scale,
            "behaviour": self.behaviour,
            "faults": ",".join(
                f"{f.name}{':' + f.arg if f.arg else ''}={r}" for f, r in self.fault_plan
            ),
            "rules": [
                {
                    "match": r.match,
                    "fault": r.fault,
                    "attempts": sorted(r.attempts) if r.attempts else None,
                }
                for r in self.fault_rules
            ],
            **asdict(self.rate_limits),
            "stall_seconds": self.stall_seconds,
            "flips": self.flips,
        }


def cost_usd(
    model: ModelInfo,
    *,
    uncached: int,
    write_5m: int,
    write_1h: int,
    read: int,
    output: int,
    batch: bool = False,
) -> float:
    """What the model table says this usage costs (batch: 50% off everything)."""
    p = model.prices
    if p is None:
        return 0.0
    w1h = p.cache_write_1h if p.cache_write_1h is not None else p.cache_write_5m
    usd = (
        uncached * p.input
        + write_5m * p.cache_write_5m
        + write_1h * w1h
        + read * p.cache_read
        + output * p.output
    ) / 1e6
    return usd * (0.5 if batch else 1.0)


def api_key_namespace(key: str) -> str:
    """Cache and attempt namespace: a hash of the API key, so keys never mix and never leak."""
    return hashlib.sha256(key.encode()).hexdigest()


def public_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}


@dataclass
class Stats:
    requests: int = 0
    cache_writes: int = 0
    cache_reads: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    billed_usd: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    faults_injected: int = 0
    by_fault: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache": {
                "writes": self.cache_writes,
                "reads": self.cache_reads,
                "write_tokens": self.cache_write_tokens,
                "read_tokens": self.cache_read_tokens,
            },
            "billed_usd": round(self.billed_usd, 9),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "faults_injected": self.faults_injected,
            "by_fault": dict(self.by_fault),
            "by_status": dict(self.by_status),
        }


class EmulatorState:
    """Shared by every handler; touched from the server's event loop and from test threads."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self._clock_offset = 0.0
        self.stats = Stats()
        self.log: deque[dict[str, Any]] = deque(maxlen=_LOG_LIMIT)
        self._attempts: Counter[tuple[str, str]] = Counter()
        self.anthropic_cache = AnthropicCache(self.clock)
        self.openai_cache = OpenAICache(self.clock)
        self.ratelimiter = RateLimiter(self.clock, config.rate_limits)

    def clock(self) -> float:
        """The emulator's clock (monotonic + test-controlled offset) for TTLs and buckets."""
        return time.monotonic() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            # A NaN offset would make every TTL comparison false until restart.
            raise ValueError(f"advance must be a finite number of seconds >= 0, not {seconds!r}")
        with self.lock:
            self._clock_offset += seconds

    def configure(self, config: EmulatorConfig) -> None:
        with self.lock:
            if config.rate_limits != self.config.rate_limits:
                self.ratelimiter.configure(config.rate_limits)
            self.config = config

    def reset(self) -> None:
        """Forget caches, stats, the request log and attempt counts (config stays)."""
        with self.lock:
            self.stats = Stats()
            self.log.clear()
            self._attempts.clear()
            self.anthropic_cache = AnthropicCache(self.clock)
            self.openai_cache = OpenAICache(self.clock)
            self.ratelimiter = RateLimiter(self.clock, self.config.rate_limits)

    def next_attempt(self, namespace: str, digest: str) -> int:
        with self.lock:
            self._attempts[(namespace, digest)] += 1
            return self._attempts[(namespace, digest)]

    def begin(self) -> Stats:
        """Count a request in; returns the Stats to count it out of (a reset may come between)."""
        with self.lock:
            s = self.stats
            s.requests += 1
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            return s

    def end(self, stats: Stats | None = None) -> None:
        """Count a request out of `stats` (default: the current Stats)."""
        with self.lock:
            (stats or self.stats).in_flight -= 1

    def note_cache(self, *, read_tokens: int, write_tokens: int) -> None:
        """Count a cache effect; called when the response begins (the write becomes real)."""
        with self.lock:
            s = self.stats
            if write_tokens:
                s.cache_writes += 1
                s.cache_write_tokens += write_tokens
            if read_tokens:
                s.cache_reads += 1
                s.cache_read_tokens += read_tokens

    def bill(self, usd: float) -> None:
        with self.lock:
            self.stats.billed_usd += usd

    def record(self, entry: dict[str, Any]) -> None:
        """Log one finished request; headers must already be stripped of secrets."""
        with self.lock:
            status = str(entry.get("status"))
            self.stats.by_status[status] += 1
            fault = entry.get("fault")
            if fault:
                self.stats.faults_injected += 1
                self.stats.by_fault[str(fault)] += 1
            self.log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log)
