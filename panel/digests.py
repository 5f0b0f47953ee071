"""Content digests and timestamps: the one way panel names a version of something and a moment.

Every digest panel writes (tool files, personas, templates, the verdict schema, settings,
request bodies, records) is `sha256:<hex>` of bytes, or of canonical JSON for structured
values, so the same input always has the same name in run manifests, cache keys and ledgers.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from panel.tokens import canonical_json


def digest(data: bytes | str) -> str:
    """`sha256:<hex>` of bytes (text is UTF-8 encoded)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def json_digest(value: Any) -> str:
    """`sha256:<hex>` of a value's canonical JSON (sorted keys, no whitespace)."""
    return digest(canonical_json(value))


def utc_timestamp(
    now: datetime | None = None, *, timespec: Literal["seconds", "milliseconds"] = "milliseconds"
) -> str:
    """An ISO 8601 UTC timestamp ending in Z, e.g. 2026-12-02T01:24:43.120Z."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
