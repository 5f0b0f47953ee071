"""The result cache: a pair's terminal result, keyed on everything that determines it.

A batch regenerates only what changed because a (tool, persona) result is looked up by
`pair_key`, a sha256 over the canonical JSON of:

    format       panel.runformat.FORMAT_VERSION (a format change invalidates everything)
    tool         tool slug, and the sha256 of the tool file's bytes
    persona      persona id, and the sha256 of the persona file's bytes
    templates    {template name: sha256} of every prompt template
    schema       the verdict tool schema's digest (panel.verdict.schema_digest)
    provider     provider kind ("anthropic", "openai", …) and model id
    settings     digest of every setting that reaches the request (max_tokens, seed, flags)
    sample       the sample index, only when > 0 (--samples K): a run without samples, and the
                 first sample of one with samples, keep the key they always had

The cache is diskcache with a JSON-only Disk: keys and values are str, stored in SQLite as
text. diskcache's base Disk unpickles any row whose mode is MODE_PICKLE (and its JSONDisk
inherits that path); `_JSONOnlyDisk` overrides put/get/store/fetch so no pickle call is
reachable, and a planted pickle row reads as corruption (a miss). diskcache also turns rows of
its Settings table into PRAGMA statements, so a cache whose Settings hold unknown keys or
odd PRAGMA values is refused before diskcache opens it. The cache is an
optimisation, never the record: any failure to read or write it is logged and ignored.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import diskcache
from diskcache.core import DEFAULT_SETTINGS, METADATA, MODE_RAW, UNKNOWN
from pydantic import BaseModel, ConfigDict

from panel.digests import json_digest
from panel.runformat import FORMAT_VERSION, Inputs, PairResult

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # the envelope around a cached result
CACHEABLE_STATUSES = frozenset({"ok", "refused"})


class CorruptEntry(ValueError):
    """A cache row that is not JSON text (e.g. a planted pickle): reported, then a miss."""


class _JSONOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores str keys and str values only, never pickle."""

    def put(self, key: Any) -> tuple[str, bool]:
        if type(key) is not str:
            raise TypeError("result cache keys are str")
        return key, True

    def get(self, key: Any, raw: bool) -> str:
        if not raw or type(key) is not str:
            raise CorruptEntry("non-text key in the result cache")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, None, str]:
        if read or type(value) is not str:
            raise TypeError("result cache values are JSON text")
        return 0, MODE_RAW, None, value

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> str:
        if mode != MODE_RAW or filename is not None or type(value) is not str:
            raise CorruptEntry(f"result cache row in mode {mode} is not JSON text")
        return value


_KNOWN_SETTINGS = frozenset(DEFAULT_SETTINGS) | frozenset(METADATA)
_PRAGMA_VALUE = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def _check_settings(db: Path) -> None:
    """Refuse a cache whose Settings table diskcache would turn into PRAGMAs we did not write."""
    if not db.is_file():
        return
    uri = f"file:{urllib.parse.quote(str(db))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:
        try:
            rows = con.execute("SELECT key, value FROM Settings").fetchall()
        except sqlite3.OperationalError:
            return  # no Settings table yet: diskcache creates it
    for key, value in rows:
        if key not in _KNOWN_SETTINGS or (
            str(key).startswith("sqlite_") and not _PRAGMA_VALUE.fullmatch(str(value))
        ):
            raise ValueError(f"unexpected setting {key!r} in {db}")


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    cache_format: int
    pair_key: str
    result: PairResult


def digest_settings(settings: Mapping[str, str | int | float | bool | None]) -> str:
    """The digest of the settings that reach a request (for Inputs.settings and pair_key)."""
    return json_digest(dict(settings))


def pair_key(
    *,
    tool_slug: str,
    tool_digest: str,
    persona: str,
    persona_digest: str,
    template_digests: Mapping[str, str],
    verdict_schema_digest: str,
    model: str,
    provider: str,
    settings_digest: str,
    format_version: int = FORMAT_VERSION,
    sample: int = 0,
) -> str:
    """The result-cache key: sha256 over the canonical JSON of everything listed above."""
    keyed: dict[str, object] = {
        "format": format_version,
        "tool": {"slug": tool_slug, "digest": tool_digest},
        "persona": {"id": persona, "digest": persona_digest},
        "templates": dict(template_digests),
        "schema": verdict_schema_digest,
        "provider": provider,
        "model": model,
        "settings": settings_digest,
    }
    if sample:
        keyed["sample"] = sample
    return json_digest(keyed)


def pair_key_for(
    inputs: Inputs,
    tool_slug: str,
    persona: str,
    *,
    model: str,
    provider: str,
    sample: int = 0,
    settings_digest: str | None = None,
) -> str:
    """`pair_key` from a run's Inputs (the same digests the manifest records); a jury member
    passes its own `settings_digest`."""
    return pair_key(
        tool_slug=tool_slug,
        tool_digest=inputs.tools[tool_slug].digest,
        persona=persona,
        persona_digest=inputs.personas[persona].digest,
        template_digests=inputs.templates,
        verdict_schema_digest=inputs.verdict_schema,
        model=model,
        provider=provider,
        settings_digest=settings_digest or inputs.settings,
        sample=sample,
    )


class ResultCache:
    """Terminal results by pair_key; tolerant of a missing, deleted or corrupted folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.warnings: list[str] = []
        self._cache: diskcache.Cache | None = None
        self._broken = False

    def _warn(self, what: str, err: BaseException) -> None:
        msg = f"result cache {self.directory}: {what}: {type(err).__name__}: {err}"
        log.warning(msg)
        if len(self.warnings) < 20:  # one broken cache must not flood the run's notes
            self.warnings.append(msg)

    def _open(self) -> diskcache.Cache | None:
        if self._cache is None and not self._broken:
            try:
                _check_settings(self.directory / "cache.db")
                # No eviction bookkeeping: reads stay read-only, so a get() never writes.
                self._cache = diskcache.Cache(
                    str(self.directory), disk=_JSONOnlyDisk, eviction_policy="none"
                )
            except Exception as e:
                self._broken = True  # a bad cache folder is reported once, then skipped
                self._warn("cannot open; continuing without it", e)
        return self._cache

    def get(
        self,
        key: str,
        *,
        tool_slug: str | None = None,
        persona: str | None = None,
        sample: int | None = None,
    ) -> PairResult | None:
        """The cached result for `key`, or None on a miss or any problem with the cache.

        A row is used only if it is verifiably this key's: the envelope's key matches, and for
        a pair's lookup (tool and persona given) so do the result's own `pair_key`, tool and
        persona. Anything else (a row
        copied from another pair, a hand-edited cache) is logged and treated as a miss.
        """
        cache = self._open()
        if cache is None:
            return None
        try:
            text = cache.get(key)
        except Exception as e:  # the cache is never the record: any failure is a miss
            self._warn(f"read of {key} failed; treating as a miss", e)
            return None
        if text is None:
            return None
        try:
            env = _Envelope.model_validate_json(text)
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            self._warn(f"entry {key} is not a valid result; treating as a miss", e)
            return None
        if env.cache_format != CACHE_FORMAT:
            return None
        result = env.result
        mismatch = [
            name
            for name, got, want in (
                ("key", env.pair_key, key),
                # A pair's own lookup checks the result's key too (bare-key callers may file
                # a result under any key they like).
                ("pair_key", result.pair_key, key if tool_slug or persona else None),
                ("tool", result.tool_slug, tool_slug),
                ("persona", result.persona, persona),
                ("sample", result.sample, sample),
            )
            if want is not None and got != want
        ]
        if mismatch:
            self._warn(
                f"entry {key} holds another pair's result; treating as a miss",
                CorruptEntry(
                    f"{', '.join(mismatch)} differ ({result.tool_slug} × {result.persona})"
                ),
            )
            return None
        return result

    def put(self, key: str, result: PairResult) -> bool:
        """Cache an ok or refused result; failed ones are never cached. True if stored."""
        if result.status not in CACHEABLE_STATUSES:
            return False
        cache = self._open()
        if cache is None:
            return False
        try:
            env = _Envelope(cache_format=CACHE_FORMAT, pair_key=key, result=result)
            return bool(cache.set(key, env.model_dump_json()))
        except Exception as e:
            self._warn(f"write of {key} failed; continuing", e)
            return False

    def close(self) -> None:
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception as e:  # pragma: no cover - best effort
                self._warn("close failed", e)
            self._cache = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- why a pair ran: the inputs of each pair's last result, next to the cache -----------------

KEY_INDEX = "key-index.json"  # JSON only, like the cache itself
KEY_INDEX_MAX_BYTES = 64 * 1024 * 1024


class KeyInputs(BaseModel):
    """The digests behind one pair's last result (what its pair_key was computed from)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tool: str
    persona: str
    templates: str  # digest of {template name: digest}
    verdict_schema: str
    model: str  # "provider:model"
    settings: str
    status: str  # that result's status: a failed one is not in the cache

    @classmethod
    def of(cls, inputs: Inputs, tool_slug: str, persona: str, model: str, status: str) -> KeyInputs:
        return cls(
            tool=inputs.tools[tool_slug].digest,
            persona=inputs.personas[persona].digest,
            templates=json_digest(dict(inputs.templates)),
            verdict_schema=inputs.verdict_schema,
            model=model,
            settings=inputs.settings,
            status=status,
        )


class _KeyIndexFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    format: int = 1
    pairs: dict[str, dict[str, KeyInputs]]  # tool slug -> persona -> inputs


def why_requested(last: KeyInputs | None, now: KeyInputs, tool_seen: bool) -> str:
    """Why a pair was requested rather than reused, from its last inputs and today's."""
    if last is None:
        return "new persona" if tool_seen else "new tool"
    if last.tool != now.tool:
        return "tool file changed"
    if last.persona != now.persona:
        return "persona changed"
    if last.templates != now.templates:
        return "templates changed"
    if last.verdict_schema != now.verdict_schema:
        return "verdict schema changed"
    if last.model != now.model or last.settings != now.settings:
        return "model/settings changed"
    if last.status == "failed":
        return "previous attempt failed"
    return "not in cache"


class KeyIndex:
    """(tool slug, persona) -> KeyInputs of its last result; best effort, like the cache."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / KEY_INDEX
        self.pairs: dict[str, dict[str, KeyInputs]] = {}
        self.warnings: list[str] = []
        try:
            if self.path.is_file() and not self.path.is_symlink():
                raw = self.path.read_bytes()
                if len(raw) > KEY_INDEX_MAX_BYTES:
                    raise ValueError(f"larger than {KEY_INDEX_MAX_BYTES} bytes")
                loaded = _KeyIndexFile.model_validate_json(raw)
                self.pairs = {k: dict(v) for k, v in loaded.pairs.items()}
        except (OSError, ValueError) as e:
            self.warnings.append(f"{self.path}: unreadable ({type(e).__name__}); starting afresh")

    def get(self, tool_slug: str, persona: str) -> KeyInputs | None:
        return self.pairs.get(tool_slug, {}).get(persona)

    def has_tool(self, tool_slug: str) -> bool:
        return bool(self.pairs.get(tool_slug))

    def set(self, tool_slug: str, persona: str, inputs: KeyInputs) -> None:
        self.pairs.setdefault(tool_slug, {})[persona] = inputs

    def save(self) -> None:
        from panel.store.atomicio import write_json_atomic

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, _KeyIndexFile(pairs=self.pairs))
        except OSError as e:
            log.warning("cannot write %s: %s", self.path, e)


__all__ = [
    "CACHEABLE_STATUSES",
    "KeyIndex",
    "KeyInputs",
    "ResultCache",
    "digest_settings",
    "pair_key",
    "pair_key_for",
    "why_requested",
]
