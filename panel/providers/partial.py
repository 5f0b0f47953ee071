"""Incremental tool-argument assembly with a real partial JSON parser.

Arguments arrive as JSON fragments. The buffer is re-parsed with pydantic_core's partial mode
(`allow_partial="trailing-strings"`, which shows a growing last string too) — eagerly until the
ship decision is known, then at most once per `reparse_bytes` of growth, so the cost stays
linear-ish in practice while the decision surfaces at the first fragment that completes it.
"""

from __future__ import annotations

from typing import Any

import pydantic_core


class PartialArgs:
    def __init__(self, *, reparse_bytes: int = 96, eager_key: str = "ship") -> None:
        self._parts: list[str] = []
        self._size = 0
        self._parsed_at = 0
        self._reparse = reparse_bytes
        self._eager_key = eager_key
        self.snapshot: dict[str, Any] = {}

    def feed(self, fragment: str) -> dict[str, Any] | None:
        """Add a fragment; return a new snapshot when one was parsed, else None."""
        if not fragment:
            return None
        self._parts.append(fragment)
        self._size += len(fragment)
        if self._eager_key in self.snapshot and self._size - self._parsed_at < self._reparse:
            return None
        return self._parse()

    def _parse(self) -> dict[str, Any] | None:
        self._parsed_at = self._size
        try:
            value = pydantic_core.from_json(self.text, allow_partial="trailing-strings")
        except ValueError:
            return None  # not yet parseable (e.g. inside an escape); the final parse decides
        if not isinstance(value, dict) or value == self.snapshot:
            return None
        self.snapshot = value
        return value

    @property
    def size(self) -> int:
        """Characters fed so far (cheap: no join)."""
        return self._size

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""
