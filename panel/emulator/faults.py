"""Fault selection: by request header, by config rule, or by a seeded plan of rates.

A fault is chosen per attempt. Attempts are counted per (API-key namespace, body digest), so
`x-emulator-fault: overloaded@1` fails only the first try of a body and its retry succeeds,
and a seeded plan draws each attempt independently from hash(seed, digest, attempt): runs are
reproducible and retries are not doomed to repeat the first draw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Faults answered before the response begins (an error status, nothing streamed).
PRE_RESPONSE = frozenset({"overloaded", "rate_limited", "spend_cap", "server_error", "auth"})
# Faults that happen on the wire after a 200 has started.
WIRE = frozenset(
    {
        "overloaded_midstream",
        "error_after_partial",
        "reset_midstream",
        "stall",
        "eof_early",
        "garbage",
    }
)
# Faults in what the "model" says; the exchange itself completes normally.
CONTENT = frozenset(
    {"max_tokens", "invalid_json", "schema_violation", "no_tool_call", "refusal", "missing_usage"}
)
FAULT_NAMES = PRE_RESPONSE | WIRE | CONTENT
# The server never finished generating these (or never started): they are not billed.
UNBILLED = PRE_RESPONSE | frozenset(
    {"overloaded_midstream", "error_after_partial", "stall", "garbage"}
)


class FaultSpecError(ValueError):
    """A fault name or spec that does not parse."""


@dataclass(frozen=True)
class Fault:
    name: str
    arg: str | None = None


@dataclass(frozen=True)
class FaultRule:
    """Inject `fault` when `match` is a substring of the request body's JSON."""

    match: str
    fault: str
    attempts: frozenset[int] | None = None


def parse_fault(text: str) -> tuple[Fault, frozenset[int] | None]:
    """Parse `NAME`, `NAME:ARG`, `NAME@1` or `NAME:ARG@1,2`."""
    text = text.strip()
    attempts: frozenset[int] | None = None
    if "@" in text:
        text, _, att = text.partition("@")
        try:
            attempts = frozenset(int(a) for a in att.split(",") if a.strip())
        except ValueError as exc:
            raise FaultSpecError(f"bad attempt numbers in fault spec: {att!r}") from exc
    name, _, arg = text.partition(":")
    name = name.strip()
    if name not in FAULT_NAMES:
        raise FaultSpecError(
            f"unknown emulator fault {name!r}; known: {', '.join(sorted(FAULT_NAMES))}"
        )
    return Fault(name, arg.strip() or None), attempts


def parse_plan(spec: str) -> tuple[tuple[Fault, float], ...]:
    """Parse `overloaded=0.05,reset_midstream=0.02` (rates sum to at most 1)."""
    plan: list[tuple[Fault, float]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, eq, rate = part.partition("=")
        if not eq:
            raise FaultSpecError(f"fault plan entries look like NAME=RATE, got {part!r}")
        fault, _ = parse_fault(name)
        try:
            r = float(rate)
        except ValueError as exc:
            raise FaultSpecError(f"bad rate in fault plan: {part!r}") from exc
        if not 0 <= r <= 1:
            raise FaultSpecError(f"fault rate must be in [0, 1]: {part!r}")
        plan.append((fault, r))
    if sum(r for _, r in plan) > 1 + 1e-9:
        raise FaultSpecError("fault rates sum to more than 1")
    return tuple(plan)


def _draw(seed: int, digest: str, attempt: int) -> float:
    h = hashlib.sha256(f"{seed}:{digest}:{attempt}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def choose_fault(
    *,
    header: str | None,
    body_json: str,
    rules: Sequence[FaultRule],
    plan: Sequence[tuple[Fault, float]],
    seed: int,
    digest: str,
    attempt: int,
) -> Fault | None:
    """The fault for this attempt: header first, then the first matching rule, then the plan."""
    if header:
        fault, attempts = parse_fault(header)
        return fault if attempts is None or attempt in attempts else None
    for rule in rules:
        if rule.match in body_json and (rule.attempts is None or attempt in rule.attempts):
            return parse_fault(rule.fault)[0]
    if plan:
        u = _draw(seed, digest, attempt)
        acc = 0.0
        for fault, rate in plan:
            acc += rate
            if u < acc:
                return fault
    return None


def rules_from_json(items: Sequence[Mapping[str, object] | FaultRule]) -> tuple[FaultRule, ...]:
    """Rules as posted to /emulator/config: [{"match", "fault", "attempts": [1, 2] | null}]."""
    out = []
    for item in items:
        if isinstance(item, FaultRule):
            parse_fault(item.fault)
            out.append(item)
            continue
        fault = str(item["fault"])
        parse_fault(fault)
        att = item.get("attempts")
        attempts = frozenset(int(a) for a in att) if isinstance(att, list) else None
        out.append(FaultRule(match=str(item["match"]), fault=fault, attempts=attempts))
    return tuple(out)
