"""The run store: atomic manifest, append-only lines, torn tails, the writer's lock, safe paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_factories import PERSONAS, make_attempt, make_manifest, make_result

from panel.errors import RunStoreError
from panel.store import atomicio
from panel.store.runs import (
    RESULTS,
    RunStore,
    latest_run,
    list_runs,
    new_run_id,
    validate_run_id,
    write_json_atomic,
)

SRC = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore.create(tmp_path / "runs", make_manifest())
    yield s
    s.release()


def test_a_run_folder_appears_only_with_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while creating a run leaves no run folder without run.json (which
    `--resume` and `latest` would find and refuse): the folder is renamed into place whole."""
    visible: list[list[str]] = []
    write = RunStore.write_manifest

    def watched(self: RunStore, manifest: object) -> None:
        visible.append(sorted(p.name for p in tmp_path.iterdir()))  # what a reader sees now
        write(self, manifest)  # type: ignore[arg-type]

    monkeypatch.setattr(RunStore, "write_manifest", watched)
    with RunStore.create(tmp_path, make_manifest()) as s:
        assert visible == [[f".new-{s.run_id}"]]
        assert sorted(p.name for p in tmp_path.iterdir()) == [s.run_id]
        s.append_result(make_result())  # the open files followed the folder
        assert s.manifest().run_id == s.run_id
    assert len(RunStore(tmp_path, s.run_id).results()) == 1
    assert [m.run_id for m in list_runs(tmp_path)] == [s.run_id]


def test_create_writes_manifest_with_new_sortable_id(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, make_manifest()) as s:
        assert s.manifest().run_id == s.run_id
        assert (tmp_path / s.run_id / "run.json").is_file()
    a, b = new_run_id(), new_run_id()
    assert a != b and len(a) == len("20261122-153012-ab12cd")
    assert RunStore.open(tmp_path, s.run_id).manifest().status == "running"


def test_results_round_trip_one_line_per_pair(store: RunStore) -> None:
    for p in PERSONAS:
        store.append_attempt(make_attempt(persona=p))
        store.append_result(make_result(persona=p))
    results = store.results()
    assert set(results) == {("ripgrep", p) for p in PERSONAS}
    assert len(store.attempts()) == 4
    lines = (store.path / RESULTS).read_bytes().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["format"] == 1 for x in lines)


def test_second_result_for_a_pair_is_refused_even_after_reopen(tmp_path: Path) -> None:
    with RunStore.create(tmp_path, make_manifest()) as s:
        s.append_result(make_result())
        with pytest.raises(RunStoreError, match="already has a result"):
            s.append_result(make_result(status="failed", error_class="overloaded"))
        run_id = s.run_id
    with RunStore.open(tmp_path, run_id, write=True) as s2:
        assert s2.recorded("ripgrep", "builder")
        with pytest.raises(RunStoreError, match="already has a result"):
            s2.append_result(make_result())
        s2.append_result(make_result(persona="skeptic"))
    assert len(RunStore.open(tmp_path, run_id).results()) == 2


def test_reader_cannot_append(store: RunStore) -> None:
    reader = RunStore.open(store.runs_dir, store.run_id)
    with pytest.raises(RunStoreError, match="not open for writing"):
        reader.append_result(make_result())


def test_torn_last_line_is_dropped_reported_and_repaired(store: RunStore) -> None:
    store.append_result(make_result(persona="builder"))
    store.append_result(make_result(persona="skeptic"))
    full = make_result(persona="futurist").model_dump_json().encode()
    with open(store.path / RESULTS, "ab") as f:
        f.write(full[: len(full) // 2])  # a write cut short by kill -9
    store.release()

    reader = RunStore.open(store.runs_dir, store.run_id)
    assert set(reader.results()) == {("ripgrep", "builder"), ("ripgrep", "skeptic")}
    assert reader.dropped[RESULTS] == 1
    assert "torn last line" in reader.warnings[0]

    with RunStore.open(store.runs_dir, store.run_id, write=True) as w:
        assert any("torn" in m for m in w.warnings)
        assert len(w.results()) == 2 and w.dropped[RESULTS] == 1  # truncated on acquire
        w.append_result(make_result(persona="futurist"))
    again = RunStore.open(store.runs_dir, store.run_id)
    assert len(again.results()) == 3 and again.dropped[RESULTS] == 0


def test_whole_last_line_missing_its_newline_is_kept(store: RunStore) -> None:
    store.append_result(make_result(persona="builder"))
    with open(store.path / RESULTS, "ab") as f:
        f.write(make_result(persona="skeptic").model_dump_json().encode())
    store.release()
    assert len(RunStore.open(store.runs_dir, store.run_id).results()) == 2
    with RunStore.open(store.runs_dir, store.run_id, write=True) as w:
        w.append_result(make_result(persona="futurist"))
    assert len(RunStore.open(store.runs_dir, store.run_id).results()) == 3


def test_invalid_line_in_the_middle_is_an_error_naming_the_line(store: RunStore) -> None:
    store.append_result(make_result(persona="builder"))
    with open(store.path / RESULTS, "ab") as f:
        f.write(b'{"format": 1, "tool": "oops"}\n')
    store.append_result(make_result(persona="skeptic"))
    with pytest.raises(RunStoreError, match=r"results\.jsonl:2: invalid line"):
        store.results()


def test_duplicate_pair_in_file_is_an_error(store: RunStore) -> None:
    store.append_result(make_result())
    line = (store.path / RESULTS).read_bytes()
    with open(store.path / RESULTS, "ab") as f:
        f.write(line)
    with pytest.raises(RunStoreError, match=r":2: second result"):
        store.results()


def test_newer_format_is_refused_not_dropped(store: RunStore) -> None:
    data = make_result().model_dump(mode="json") | {"format": 99, "new_field": 1}
    with open(store.path / RESULTS, "ab") as f:
        f.write(json.dumps(data).encode() + b"\n")
    with pytest.raises(RunStoreError, match="newer panel"):
        store.results()


def test_manifest_rewrite_is_atomic_and_leftover_temp_ignored(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.manifest()
    # A crash between writing the temp file and renaming it.
    monkeypatch.setattr(atomicio.os, "replace", lambda *_: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError, match="boom"):
        store.update_manifest(status="complete")
    monkeypatch.undo()
    assert store.manifest() == before
    # A temp file a killed process left behind is ignored by readers and cleaned by the writer.
    stray = store.path / ".run.json.tmp-999-deadbeef"
    stray.write_text('{"half": ')
    assert RunStore.open(store.runs_dir, store.run_id).manifest() == before
    assert [m.run_id for m in list_runs(store.runs_dir)] == [store.run_id]
    store.release()
    store.acquire()
    assert not stray.exists()
    assert store.update_manifest(status="complete").status == "complete"
    assert store.manifest().status == "complete"


def test_write_manifest_for_another_run_is_refused(store: RunStore) -> None:
    with pytest.raises(RunStoreError, match="not"):
        store.write_manifest(make_manifest(run_id="other"))


def test_write_json_atomic_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    target = tmp_path / "outside.json"
    target.write_text("keep")
    link = tmp_path / "record.json"
    link.symlink_to(target)
    write_json_atomic(link, {"a": 1})
    assert target.read_text() == "keep"
    assert not link.is_symlink() and json.loads(link.read_text()) == {"a": 1}


_HOLDER = """
import sys
from pathlib import Path
from panel.store.runs import RunStore
s = RunStore.open(Path(sys.argv[1]), sys.argv[2], write=True)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_second_writer_in_another_process_is_refused(store: RunStore) -> None:
    store.release()
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(store.runs_dir), store.run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=SRC,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunStoreError, match=f"in use by pid {child.pid}"):
            RunStore.open(store.runs_dir, store.run_id, write=True)
        child.stdin.write("\n")
        child.stdin.close()
        assert child.wait() == 0
    with RunStore.open(store.runs_dir, store.run_id, write=True) as again:
        assert again.writable


def test_second_writer_in_same_process_is_refused(store: RunStore) -> None:
    with pytest.raises(RunStoreError, match=f"in use by pid {os.getpid()}"):
        RunStore.open(store.runs_dir, store.run_id, write=True)


_APPENDER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from store_factories import make_result, make_attempt
from panel.store.runs import RunStore
s = RunStore.open(Path(sys.argv[1]), sys.argv[2], write=True)
for i in range(100000):
    s.append_attempt(make_attempt(tool_slug=f"t{i}"))
    s.append_result(make_result(tool_slug=f"t{i}"))
    if i == 20:
        print("going", flush=True)
"""


def test_kill_9_mid_run_leaves_readable_lines_and_frees_the_lock(store: RunStore) -> None:
    store.release()
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            _APPENDER,
            str(store.runs_dir),
            store.run_id,
            str(Path(__file__).parent),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=SRC,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "going"
        child.send_signal(signal.SIGKILL)
        child.wait()
    with RunStore.open(store.runs_dir, store.run_id, write=True) as s:
        n = len(s.results())
        assert n > 20
        s.append_result(make_result(tool_slug="after-resume"))
    assert len(RunStore.open(store.runs_dir, store.run_id).results()) == n + 1


@pytest.mark.parametrize(
    "bad", ["", "..", "../etc", "a/b", "a\x00b", "has space", ".hidden", "x" * 81, "a..b"]
)
def test_hostile_run_ids_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(RunStoreError, match="invalid run id"):
        validate_run_id(bad)
    with pytest.raises(RunStoreError, match="invalid run id"):
        RunStore.open(tmp_path, bad)


def test_symlinked_run_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    with RunStore.create(elsewhere, make_manifest()) as real:
        pass
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "evil").symlink_to(elsewhere / real.run_id, target_is_directory=True)
    with pytest.raises(RunStoreError, match="symlink"):
        RunStore.open(runs, "evil")
    with pytest.raises(RunStoreError, match="symlink"):
        RunStore(runs, "evil").manifest()
    assert list_runs(runs) == []


def test_symlinked_results_file_is_not_followed(store: RunStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_bytes(make_result(persona="skeptic").model_dump_json().encode() + b"\n")
    store.release()
    (store.path / RESULTS).unlink(missing_ok=True)
    (store.path / RESULTS).symlink_to(secret)
    with pytest.raises(RunStoreError):
        RunStore.open(store.runs_dir, store.run_id).results()
    with pytest.raises(RunStoreError):
        RunStore.open(store.runs_dir, store.run_id, write=True)


def test_records_dir_is_created_inside_the_run(store: RunStore) -> None:
    rec = store.records_dir()
    assert rec == store.path / "records" and rec.is_dir()
    assert store.records_dir() == rec


def test_list_runs_newest_first_skipping_unreadable(tmp_path: Path) -> None:
    ids = []
    for day in ("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", "2026-11-21T00:00:00Z"):
        with RunStore.create(tmp_path, make_manifest(created_at=day)) as s:
            ids.append(s.run_id)
    broken = tmp_path / "20260101-000000-broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    skipped: list[str] = []
    runs = list_runs(tmp_path, skipped=skipped)
    assert [r.run_id for r in runs] == [ids[1], ids[2], ids[0]]
    assert len(skipped) == 1 and "20260101-000000-broken" in skipped[0]
    latest = latest_run(tmp_path)
    assert latest is not None and latest.run_id == ids[1]
    assert latest_run(tmp_path / "none") is None


def test_iterating_10k_results_streams(store: RunStore) -> None:
    # Write the lines directly (fast); the reader must not hold them all at once.
    with open(store.path / RESULTS, "ab") as f:
        for i in range(10_000):
            f.write(make_result(tool_slug=f"tool-{i}").model_dump_json().encode() + b"\n")
    size = (store.path / RESULTS).stat().st_size
    it = store.iter_results()
    assert iter(it) is it  # an iterator, not a list
    tracemalloc.start()
    try:
        count = sum(1 for _ in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < size / 4  # a list of every parsed result would exceed the file's size


def test_a_half_made_run_folder_is_swept_once_old(tmp_path: Path) -> None:
    # A create killed before the rename leaves a hidden staging folder: never a run to list or
    # resume; the next create sweeps it once it is old, and keeps anything else it finds.
    runs = tmp_path / "runs"
    runs.mkdir()
    stale = runs / ".new-20260101-000000-abcdef"
    stale.mkdir()
    (stale / "run.json").write_text("{}")
    kept = runs / ".new-20260101-000000-fedcba"
    kept.mkdir()
    (kept / "notes.txt").write_text("not panel's")
    for folder in (stale, kept):
        os.utime(folder, (1_000_000, 1_000_000))
    assert list_runs(runs) == []
    with RunStore.create(runs, make_manifest()) as s:
        assert s.manifest().run_id == s.run_id
    assert not stale.exists() and (kept / "notes.txt").exists()
    assert [m.run_id for m in list_runs(runs)] == [s.run_id]
    with pytest.raises(RunStoreError, match="already exists"):
        RunStore.create(runs, make_manifest(), run_id=s.run_id)
    assert sorted(p.name for p in runs.iterdir()) == sorted([s.run_id, kept.name])
