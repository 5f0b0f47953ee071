"""The result cache: JSON only, never pickle, failed results never cached, damage tolerated."""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import diskcache
import pytest
from store_factories import make_manifest, make_result

from panel.store.resultcache import ResultCache, digest_settings, pair_key, pair_key_for

KEY_ARGS: dict[str, object] = {
    "tool_slug": "ripgrep",
    "tool_digest": "sha256:aa",
    "persona": "builder",
    "persona_digest": "sha256:bb",
    "template_digests": {"house.j2": "sha256:cc", "persona.j2": "sha256:c2"},
    "verdict_schema_digest": "sha256:dd",
    "model": "claude-sonnet-5",
    "provider": "anthropic",
    "settings_digest": "sha256:ee",
}


class _Touch:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def _plant_pickle(cache_dir: Path, key: str, marker: Path) -> None:
    payload = pickle.dumps(_Touch(marker))
    with closing(sqlite3.connect(cache_dir / "cache.db")) as db, db:
        db.execute(
            "INSERT OR REPLACE INTO Cache (key, raw, store_time, access_time, mode, value)"
            " VALUES (?, 1, 0, 0, 4, ?)",
            (key, payload),
        )


def test_round_trip_ok_and_refused(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "cache") as rc:
        ok, refused = make_result(), make_result(persona="skeptic", status="refused", ship=None)
        assert rc.put("k1", ok) and rc.put("k2", refused)
        assert rc.get("k1") == ok
        assert rc.get("k2") == refused
        assert rc.get("missing") is None
    with ResultCache(tmp_path / "cache") as again:
        assert again.get("k1") == ok


def test_failed_results_are_never_cached(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "cache") as rc:
        failed = make_result(status="failed", error_class="overloaded", ship=None)
        assert rc.put("k", failed) is False
        assert rc.get("k") is None


def test_values_are_stored_as_json_text(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "cache") as rc:
        rc.put("k", make_result())
    with closing(sqlite3.connect(tmp_path / "cache" / "cache.db")) as db:
        rows = db.execute(
            "SELECT key, raw, mode, filename, typeof(value), value FROM Cache"
        ).fetchall()
    assert len(rows) == 1
    key, raw, mode, filename, kind, value = rows[0]
    assert (key, raw, mode, filename, kind) == ("k", 1, diskcache.core.MODE_RAW, None, "text")
    assert json.loads(value)["result"]["persona"] == "builder"


def test_planted_pickle_is_not_executed(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with ResultCache(cache_dir) as rc:
        rc.put("other", make_result())
    marker = tmp_path / "pwned"
    _plant_pickle(cache_dir, "k", marker)
    with ResultCache(cache_dir) as rc:
        assert rc.get("k") is None
        assert not marker.exists()
        assert any("not JSON text" in w for w in rc.warnings)
        assert rc.get("other") is not None  # the rest of the cache still works


def test_stock_json_disk_would_have_executed_the_plant(tmp_path: Path) -> None:
    # Guards the test above: the planted row really is the attack diskcache's own Disks fall for.
    cache_dir = tmp_path / "cache"
    with ResultCache(cache_dir) as rc:
        rc.put("other", make_result())
    marker = tmp_path / "pwned"
    _plant_pickle(cache_dir, "k", marker)
    with diskcache.Cache(str(cache_dir), disk=diskcache.Disk) as stock:
        stock.get("k")
    assert marker.exists()


def test_deleted_cache_dir_never_raises(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with ResultCache(cache_dir) as rc:
        rc.put("k", make_result())
        shutil.rmtree(cache_dir)
        rc.get("k")  # whatever it returns, it must not raise
        rc.put("k2", make_result(persona="skeptic"))
    with ResultCache(cache_dir) as fresh:
        assert fresh.get("k") is None
        assert fresh.put("k", make_result())


def test_corrupted_cache_file_is_a_miss_with_a_warning(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    with ResultCache(cache_dir) as rc:
        assert rc.get("k") is None
        assert rc.put("k", make_result()) is False
        assert rc.warnings and "continuing without it" in rc.warnings[0]


def test_mangled_entry_is_a_miss(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with ResultCache(cache_dir) as rc:
        rc.put("k", make_result())
    with closing(sqlite3.connect(cache_dir / "cache.db")) as db, db:
        db.execute('UPDATE Cache SET value = \'{"cache_format": 1, "pair_key": "k"}\'')
    with ResultCache(cache_dir) as rc:
        assert rc.get("k") is None
        assert rc.warnings


def test_pair_key_changes_with_every_input() -> None:
    base = pair_key(**KEY_ARGS)  # type: ignore[arg-type]
    assert base.startswith("sha256:")
    changes: dict[str, object] = {
        "tool_slug": "fd",
        "tool_digest": "sha256:a2",
        "persona": "skeptic",
        "persona_digest": "sha256:b2",
        "template_digests": {"house.j2": "sha256:XX", "persona.j2": "sha256:c2"},
        "verdict_schema_digest": "sha256:d2",
        "model": "claude-opus-5",
        "provider": "openai",
        "settings_digest": digest_settings({"max_tokens": 1024}),
        "format_version": 2,
    }
    keys = {pair_key(**(KEY_ARGS | {k: v})) for k, v in changes.items()}  # type: ignore[arg-type]
    assert len(keys) == len(changes) and base not in keys
    reordered = KEY_ARGS | {
        "template_digests": {"persona.j2": "sha256:c2", "house.j2": "sha256:cc"}
    }
    assert pair_key(**reordered) == base  # type: ignore[arg-type]


def test_pair_key_for_uses_the_manifest_inputs() -> None:
    inputs = make_manifest().inputs
    key = pair_key_for(inputs, "ripgrep", "builder", model="claude-sonnet-5", provider="anthropic")
    assert key == pair_key(
        tool_slug="ripgrep",
        tool_digest="sha256:aa",
        persona="builder",
        persona_digest="sha256:bb",
        template_digests={"house.j2": "sha256:cc"},
        verdict_schema_digest="sha256:dd",
        model="claude-sonnet-5",
        provider="anthropic",
        settings_digest="sha256:ee",
    )
    assert digest_settings({"a": 1, "b": None}) == digest_settings({"b": None, "a": 1})
    assert digest_settings({"a": 1}) != digest_settings({"a": 2})


@pytest.mark.parametrize("key", [b"bytes", 42, ("t", "p")])
def test_non_string_keys_never_reach_pickle(tmp_path: Path, key: object) -> None:
    with ResultCache(tmp_path / "cache") as rc:
        assert rc.put(key, make_result()) is False  # type: ignore[arg-type]
        assert rc.get(key) is None  # type: ignore[arg-type]


def test_planted_settings_are_refused_before_diskcache_reads_them(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with ResultCache(cache_dir) as rc:
        rc.put("k", make_result())
    with closing(sqlite3.connect(cache_dir / "cache.db")) as db, db:
        db.execute("INSERT INTO Settings VALUES ('sqlite_foreign_keys', '1 OR 1')")
    with ResultCache(cache_dir) as rc:
        assert rc.get("k") is None
        assert rc.warnings and "unexpected setting" in rc.warnings[0]
