"""The one redaction step: every upstream message panel stores or prints passes through here.

An upstream may echo the request back in its error text (headers included), so panel never
trusts an error message to be free of the key it sent. `redact` removes:

- the values of the keys panel was configured with (`remember_secrets`, called where keys are
  read: `providers.select.open_provider`), wherever they appear;
- anything shaped like a credential: `Authorization: Bearer …`, `x-api-key: …`,
  `api_key=…`, and `sk-…` tokens.

`UpstreamError` redacts its message and raw text when it is built, and the CLI's one error
boundary redacts what it prints, so a key reaches neither the run store nor a terminal.

A verdict is upstream text too: an upstream that writes the key into a quote (a proxy echoing
the request into the prompt, a hostile compatible server) must not get it stored or shown.
Model-written prose goes through `redact_secrets`, which masks only the configured key values:
the credential shapes would also mask ordinary prose about APIs ("bearer authentication").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "[redacted]"
_MIN_SECRET = 8  # shorter values ("x", "unused") would mask ordinary words
_MIN_TAIL = 4  # a streaming tail this long that begins a key is hidden until it is whole
_secrets: set[str] = set()

_PATTERNS = [
    re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?\s*(?:bearer|basic|token)?\s*)[^\s\"',;}]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:x-api-key|x-goog-api-key|api[-_]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{8,}"),
]
# Environment variables whose values are secrets whatever their name says otherwise.
_SECRET_VAR = re.compile(r"(?:_API_KEY|_AUTH_TOKEN|_SECRET|_TOKEN)$")


def remember_secrets(values: Iterable[str | None]) -> None:
    """Add configured key values to what `redact` removes (process-wide, never stored)."""
    for value in values:
        if value and len(value) >= _MIN_SECRET:
            _secrets.add(value)


def remember_env_secrets(env: Mapping[str, str]) -> None:
    """Remember the values of every `*_API_KEY`-like variable in `env`."""
    remember_secrets(v for k, v in env.items() if _SECRET_VAR.search(k.upper()))


def redact(text: str) -> str:
    """`text` with configured keys and credential-shaped strings replaced by `[redacted]`."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_secrets(text: str, *, growing: bool = False) -> str:
    """`text` with the configured key values masked; for model-written prose.

    `growing` text (a verdict still streaming) also loses a tail that begins a key, so a key
    split across deltas never shows even in part.
    """
    if not text or not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    if growing:
        for secret in _secrets:
            for n in range(min(len(secret) - 1, len(text)), _MIN_TAIL - 1, -1):
                if text.endswith(secret[:n]):
                    return text[:-n] + MASK
    return text


__all__ = ["MASK", "redact", "redact_secrets", "remember_env_secrets", "remember_secrets"]
