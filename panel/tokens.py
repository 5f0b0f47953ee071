"""A deterministic token count: the documented approximation shared by the emulator and panel.

Real tokenizers are not available offline, so both sides count the same way: every run of
word characters costs ceil(len/6) tokens (at least one), every other non-space character one
token. English prose comes out near 4.2 characters (about 1.5 words) per token, the usual rule of
thumb for the real tokenizers. The
emulator bills with this count, and panel's preflight estimates use it, so an estimate for an
emulator run is exact and an estimate for a real provider is an approximation.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_PIECE = re.compile(r"\w+|[^\w\s]")


@lru_cache(maxsize=4096)  # prompts repeat the same large prefixes on every request
def count_tokens(text: str) -> int:
    total = 0
    for m in _PIECE.finditer(text):
        n = m.end() - m.start()
        total += (n + 5) // 6 if m.group()[0].isalnum() or m.group()[0] == "_" else 1
    return total


def canonical_json(value: Any) -> str:
    """The byte-stable JSON used for digests and for counting structured blocks."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def count_json_tokens(value: Any) -> int:
    return count_tokens(canonical_json(value))
