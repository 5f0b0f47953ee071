"""The run store: one folder per run, append-only results and attempts, an atomic manifest.

    runs_dir/<run-id>/run.json        RunManifest, rewritten atomically (panel.store.atomicio)
    runs_dir/<run-id>/results.jsonl   PairResult lines, exactly one per draw (DrawId: tool,
                                      persona, model, sample; one per pair without sampling)
    runs_dir/<run-id>/attempts.jsonl  Attempt lines, one per upstream attempt
    runs_dir/<run-id>/records/        comparison records (panel.pages.records)
    runs_dir/<run-id>/lint.json       LintReport, rewritten atomically at the end of a run
    runs_dir/<run-id>/.lock           flock held by the one writer; holds its pid
    runs_dir/.new-<run-id>/           a run being created (renamed into place with run.json)

Durability: each line is one `os.write` on an O_APPEND descriptor, so a kill -9 tears at most
the last line. Result lines are fsynced one by one (a recorded result is never re-paid after a
power loss); attempt lines are fsynced in batches, whenever a result line is and on release,
because they are forensic and a lost one costs nothing. Readers drop a torn last line and
report it; the writer truncates it away when it takes the lock, so appends never glue onto it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from panel.aggregate import PairVerdict, aggregate_pairs, shown_results
from panel.digests import utc_timestamp
from panel.errors import RunStoreError
from panel.lintformat import LintReport
from panel.runformat import FORMAT_VERSION, Attempt, DrawId, PairId, PairResult, RunManifest
from panel.store.atomicio import (
    O_CLOEXEC,
    O_NOFOLLOW,
    append_line,
    fsync_dir,
    is_tmp_file,
    open_dir_fd,
    write_bytes_atomic,
    write_json_atomic,
)

log = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MANIFEST = "run.json"
RESULTS = "results.jsonl"
ATTEMPTS = "attempts.jsonl"
RETRIED = "retried.jsonl"  # failed results a `--retry-failed` resume took out to re-ask
RECORDS = "records"
LINT = "lint.json"  # the run's lint report (panel.lint), rewritten at the end of every run
LOCK = ".lock"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time to the second plus 6 random hex digits."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def validate_run_id(run_id: str) -> str:
    """Return `run_id` if it is a safe folder name, else raise RunStoreError."""
    if not RUN_ID_RE.fullmatch(run_id) or ".." in run_id or run_id.startswith("."):
        raise RunStoreError(f"invalid run id {run_id!r}: use letters, digits, '_', '.', '-'")
    return run_id


def _open_in(run_dir: Path, name: str, flags: int, mode: int = 0o644) -> int:
    """Open `name` inside `run_dir`, following no symlink at either level."""
    try:
        dfd = open_dir_fd(run_dir)
    except OSError as e:
        raise _dir_error(run_dir, e) from e
    try:
        return os.open(name, flags | O_NOFOLLOW | O_CLOEXEC, mode, dir_fd=dfd)
    except FileNotFoundError:
        raise
    except OSError as e:
        why = "is a symlink; refusing to follow it" if e.errno == errno.ELOOP else e.strerror
        raise RunStoreError(f"{run_dir / name}: {why}") from e
    finally:
        os.close(dfd)


def _dir_error(run_dir: Path, e: OSError) -> RunStoreError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return RunStoreError(f"{run_dir} is a symlink or not a folder; refusing to use it")
    if e.errno == errno.ENOENT:
        return RunStoreError(f"no run folder {run_dir}")
    return RunStoreError(f"cannot open {run_dir}: {e.strerror}")


class NewerFormatError(RunStoreError):
    """A file written by a newer panel; never dropped as torn."""


def _parse_line(model: type[M], raw: bytes, where: str) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        newer = re.search(rb'"format"\s*:\s*(\d+)', raw)
        if newer and int(newer.group(1)) > FORMAT_VERSION:
            raise NewerFormatError(
                f"{where}: written by a newer panel (format {int(newer.group(1))}); upgrade panel"
            ) from e
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "line"
        raise RunStoreError(f"{where}: invalid line ({loc}: {first['msg']})") from e


class RunStore:
    """One run folder. Readers need nothing; writers hold the run's lock (`acquire`)."""

    def __init__(self, runs_dir: Path, run_id: str) -> None:
        self.run_id = validate_run_id(run_id)
        self.runs_dir = Path(runs_dir).resolve()
        self.path = self.runs_dir / self.run_id
        # file name -> 1 once a torn last line was dropped by a read or truncated by acquire()
        # during this object's life (else 0); the messages are in `warnings`.
        self.dropped: dict[str, int] = {}
        self.warnings: list[str] = []
        self._lock_fd: int | None = None
        self._fds: dict[str, int] = {}
        self._recorded: set[DrawId] = set()
        self._attempts_dirty = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, runs_dir: Path, manifest: RunManifest, *, run_id: str | None = None
    ) -> RunStore:
        """Make a new run folder and return it locked for writing, its manifest written.

        The manifest's run_id is replaced by the new id (pass any placeholder). The folder is
        built under a hidden name and renamed into place once its manifest is written, so a
        process killed meanwhile never leaves a run folder without run.json (one that
        `--resume` and `latest` would find and refuse); at most a hidden `.new-<id>` folder,
        which a later create removes once it is old (`_sweep_staging`).
        """
        runs_dir = Path(runs_dir)
        if runs_dir.is_symlink() and not runs_dir.exists():
            target = os.readlink(runs_dir)
            raise RunStoreError(
                f"cannot use runs folder {runs_dir}: a symlink to {target}, which does not exist"
            )
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            if not runs_dir.is_dir():
                raise NotADirectoryError(20, "not a folder")
        except OSError as e:  # a file in the way, read-only, disk full: one line, not a trace
            raise RunStoreError(f"cannot use runs folder {runs_dir}: {e.strerror or e}") from None
        base = runs_dir.resolve()
        _sweep_staging(base)
        for _ in range(10):
            rid = validate_run_id(run_id) if run_id else new_run_id()
            final = base / rid
            staging = base / f"{STAGING}{rid}"
            try:
                if os.path.lexists(final):
                    raise FileExistsError(errno.EEXIST, "exists")
                os.mkdir(staging, 0o755)
                break
            except FileExistsError:
                if run_id:
                    raise RunStoreError(f"run {run_id} already exists") from None
            except OSError as e:
                raise RunStoreError(f"cannot create a run in {runs_dir}: {e.strerror}") from None
        else:  # pragma: no cover - ten collisions of 24 random bits in one second
            raise RunStoreError("could not pick a unique run id")
        store = cls(runs_dir, rid)
        store.path = staging  # the lock and the open files follow the folder when it is renamed
        try:
            store.acquire()
            store.write_manifest(manifest.model_copy(update={"run_id": rid}))
            if os.path.lexists(final):  # taken meanwhile (rename would replace an empty folder)
                raise RunStoreError(f"run {rid} already exists")
            os.rename(staging, final)
            fsync_dir(runs_dir)
        except OSError as e:
            store.release()
            raise RunStoreError(f"cannot create a run in {runs_dir}: {e.strerror}") from None
        except BaseException:
            store.release()
            raise
        store.path = final
        return store

    @classmethod
    def open(cls, runs_dir: Path, run_id: str, *, write: bool = False) -> RunStore:
        """Open an existing run; with write=True take its lock (RunStoreError if it is held)."""
        store = cls(runs_dir, run_id)
        store._check_dir()
        if write:
            store.acquire()
        return store

    def _check_dir(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise RunStoreError(f"no run {self.run_id} in {self.runs_dir}") from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise RunStoreError(f"{self.path} is a symlink or not a folder; refusing to use it")

    # -- the writer's lock -----------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self._lock_fd is not None

    def acquire(self) -> RunStore:
        """Take the run's exclusive lock for the life of this writer; fails fast if held."""
        if self._lock_fd is not None:
            return self
        self._check_dir()
        fd = _open_in(self.path, LOCK, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunStoreError(f"run {self.run_id} is in use by pid {holder}") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:  # disk full: one line, and the lock is not left held
            os.close(fd)
            raise RunStoreError(f"cannot write {self.path / LOCK}: {e.strerror}") from None
        self._lock_fd = fd
        try:
            self._remove_stale_tmp()
            for name in (RESULTS, ATTEMPTS):
                self._repair_tail(name)
                self._fds[name] = _open_in(self.path, name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            self._recorded = {r.draw for r in self.iter_results()}
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        """Flush pending attempt lines, close the files and drop the lock."""
        fds, self._fds = self._fds, {}
        try:
            if self._attempts_dirty and ATTEMPTS in fds:
                os.fsync(fds[ATTEMPTS])
        finally:
            self._attempts_dirty = False
            for fd in fds.values():
                os.close(fd)
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    close = release

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _require_writer(self) -> None:
        if self._lock_fd is None:
            raise RunStoreError(f"run {self.run_id} is not open for writing (call acquire())")

    def _remove_stale_tmp(self) -> None:
        # Temp files of a crashed manifest rewrite; only the lock holder may touch them.
        for entry in os.scandir(self.path):
            if is_tmp_file(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def _repair_tail(self, name: str) -> None:
        """Truncate a torn or invalid last line so the next append starts on a fresh line."""
        # O_APPEND is not used here: pwrite must land exactly at the old end.
        try:
            fd = _open_in(self.path, name, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return
            # Find the start of the last line by scanning back in blocks.
            end = size
            tail = os.pread(fd, 1, size - 1)
            start = size - 1 if tail == b"\n" else size
            pos = start
            while pos > 0:
                step = min(65536, pos)
                block = os.pread(fd, step, pos - step)
                nl = block.rfind(b"\n")
                if nl >= 0:
                    pos = pos - step + nl + 1
                    break
                pos -= step
            last = os.pread(fd, end - pos, pos)
            model: type[BaseModel] = PairResult if name == RESULTS else Attempt
            try:
                _parse_line(model, last, name)
                if not last.endswith(b"\n"):
                    # Whole record, newline lost: keep it (its call was paid) and end the line.
                    os.pwrite(fd, b"\n", size)
                    os.fsync(fd)
                return
            except NewerFormatError:
                raise
            except RunStoreError:
                pass
            os.ftruncate(fd, pos)
            os.fsync(fd)
            self.dropped[name] = 1
            msg = f"{self.path / name}: dropped a torn last line ({len(last)} bytes)"
            log.warning(msg)
            self.warnings.append(msg)
        finally:
            os.close(fd)

    # -- manifest ---------------------------------------------------------------------------

    def write_manifest(self, manifest: RunManifest) -> None:
        """Replace run.json atomically (temp file, fsync, rename, fsync folder)."""
        self._require_writer()
        if manifest.run_id != self.run_id:
            raise RunStoreError(f"manifest is for run {manifest.run_id}, not {self.run_id}")
        write_json_atomic(self.path / MANIFEST, manifest)

    def manifest(self) -> RunManifest:
        manifest = self._read_json(MANIFEST, RunManifest)
        if manifest is None:
            raise RunStoreError(f"{self.path / MANIFEST}: missing")
        return manifest

    def _read_json(self, name: str, model: type[M]) -> M | None:
        """A JSON file of the run folder (no symlink, size-capped), or None when absent."""
        where = str(self.path / name)
        try:
            fd = _open_in(self.path, name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise RunStoreError(f"{where}: {e.strerror}") from e
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise RunStoreError(f"{where}: larger than {MAX_MANIFEST_BYTES} bytes")
        return _parse_line(model, data, where)

    def update_manifest(self, **changes: object) -> RunManifest:
        """Rewrite the manifest with some fields changed and updated_at set to now."""
        current = self.manifest()
        new = RunManifest.model_validate(
            {**current.model_dump(), **changes, "updated_at": utc_timestamp()}
        )
        self.write_manifest(new)
        return new

    # -- results and attempts -------------------------------------------------------------

    def append_result(self, result: PairResult) -> None:
        """Record a draw's terminal result, fsynced; a second one for the draw is refused."""
        self._require_writer()
        draw = result.draw
        if draw in self._recorded:
            raise RunStoreError(f"run {self.run_id} already has a result for {_named(draw)}")
        try:
            if self._attempts_dirty:
                os.fsync(self._fds[ATTEMPTS])  # a result never outlives its attempts on disk
                self._attempts_dirty = False
            append_line(self._fds[RESULTS], _line(result), fsync=True)
        except OSError as e:
            raise RunStoreError(f"cannot write {self.path / RESULTS}: {e.strerror}") from e
        self._recorded.add(draw)

    def drop_results(self, draws: set[DrawId]) -> int:
        """Take these draws' results out of results.jsonl so a resume re-asks them.

        The lines move to retried.jsonl first (appended), then results.jsonl is rewritten
        atomically: a crash in between leaves a copy aside, never a lost result.
        """
        self._require_writer()
        keep: list[PairResult] = []
        moved: list[PairResult] = []
        for r in self.iter_results():
            (moved if r.draw in draws else keep).append(r)
        if not moved:
            return 0
        fd = _open_in(self.path, RETRIED, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            for r in moved:
                append_line(fd, _line(r), fsync=False)
            os.fsync(fd)
        finally:
            os.close(fd)
        write_bytes_atomic(self.path / RESULTS, b"".join(_line(r) for r in keep))
        os.close(self._fds.pop(RESULTS))
        self._fds[RESULTS] = _open_in(self.path, RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._recorded -= {r.draw for r in moved}
        return len(moved)

    def append_attempt(self, attempt: Attempt) -> None:
        """Record one upstream attempt (fsynced with the next result line or on release)."""
        self._require_writer()
        try:
            append_line(self._fds[ATTEMPTS], _line(attempt), fsync=False)
        except OSError as e:
            raise RunStoreError(f"cannot write {self.path / ATTEMPTS}: {e.strerror}") from e
        self._attempts_dirty = True

    def recorded(
        self, tool_slug: str, persona: str, model: str | None = None, sample: int = 0
    ) -> bool:
        """Whether this writer's run already holds a terminal result for the draw (any model
        when `model` is None)."""
        self._require_writer()
        if model is not None:
            return DrawId(tool_slug, persona, model, sample) in self._recorded
        return any(
            d.tool_slug == tool_slug and d.persona == persona and d.sample == sample
            for d in self._recorded
        )

    def iter_results(self) -> Iterator[PairResult]:
        """Stream results.jsonl line by line (bounded memory); see `dropped` after."""
        return self._iter(RESULTS, PairResult)

    def draws(self) -> dict[DrawId, PairResult]:
        """Every terminal line by draw, in file order; a draw recorded twice is an error."""
        out: dict[DrawId, PairResult] = {}
        for n, r in enumerate(self.iter_results(), 1):
            if r.draw in out:
                raise RunStoreError(
                    f"{self.path / RESULTS}:{n}: second result for {_named(r.draw)}"
                )
            out[r.draw] = r
        return out

    def verdicts(self) -> dict[PairId, PairVerdict]:
        """Each pair's verdict over its draws (panel.aggregate), jury order from the manifest."""
        try:
            models = self.manifest().jury
        except RunStoreError:  # the lines still say what each draw was; order them as found
            models = []
        return aggregate_pairs(self.draws().values(), models)

    def results(self) -> dict[PairId, PairResult]:
        """The result each pair shows, by (tool_slug, persona): the pair's only line, or with
        samples or a jury the draw its verdict quotes (`verdicts()` has the rest)."""
        return shown_results(self.verdicts())

    def iter_attempts(self) -> Iterator[Attempt]:
        return self._iter(ATTEMPTS, Attempt)

    def attempts(self) -> list[Attempt]:
        return list(self.iter_attempts())

    def _iter(self, name: str, model: type[M]) -> Iterator[M]:
        self.dropped.setdefault(name, 0)
        try:
            fd = _open_in(self.path, name, os.O_RDONLY)
        except FileNotFoundError:
            return
        except OSError as e:
            raise RunStoreError(f"{self.path / name}: {e.strerror}") from e
        where = str(self.path / name)
        with os.fdopen(fd, "rb") as f:
            # One line of lookahead: only the last line may be torn.
            prev: bytes | None = None
            lineno = 0
            for raw in f:
                if prev is not None:
                    yield _parse_line(model, prev, f"{where}:{lineno}")
                prev = raw
                lineno += 1
            if prev is None:
                return
            try:
                # A last line without its newline is kept if it holds a whole record: a
                # prefix of a JSON object line is never itself a valid object.
                last = _parse_line(model, prev, f"{where}:{lineno}")
            except NewerFormatError:
                raise
            except RunStoreError:
                self.dropped[name] = 1
                msg = f"{where}:{lineno}: dropped a torn last line ({len(prev)} bytes)"
                log.warning(msg)
                self.warnings.append(msg)
                return
            yield last

    # -- lint -----------------------------------------------------------------------------

    def write_lint(self, report: LintReport) -> None:
        """Replace lint.json atomically: the house-rule findings of the run (panel.lint)."""
        self._require_writer()
        write_json_atomic(self.path / LINT, report)

    def lint(self) -> LintReport | None:
        """The run's lint.json, or None for a run that has none (older, or never finished)."""
        return self._read_json(LINT, LintReport)

    # -- records --------------------------------------------------------------------------

    def records_dir(self) -> Path:
        """runs_dir/<id>/records/, created if missing; a symlink there is refused."""
        rec = self.path / RECORDS
        try:
            os.mkdir(rec, 0o755)
        except FileExistsError:
            st = os.lstat(rec)
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
                raise RunStoreError(f"{rec} is a symlink or not a folder") from None
        return rec


STAGING = ".new-"  # a run folder being made: its manifest is written before it takes its id
STALE_STAGING_S = 600.0


def _sweep_staging(base: Path) -> None:
    """Remove folders a killed `create` left half made (old, holding only its manifest)."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(STAGING) or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime < STALE_STAGING_S:
                continue
            names = os.listdir(entry.path)
            if all(n == MANIFEST or is_tmp_file(n) for n in names):
                shutil.rmtree(entry.path)


def _named(draw: DrawId) -> str:
    """`tool × persona (model[, sample N])`."""
    sample = f", sample {draw.sample}" if draw.sample else ""
    return f"{draw.tool_slug} × {draw.persona} ({draw.model}{sample})"


def _line(model: BaseModel) -> bytes:
    return model.model_dump_json().encode("utf-8") + b"\n"


def list_runs(runs_dir: Path, *, skipped: list[str] | None = None) -> list[RunManifest]:
    """Every readable run's manifest, newest first; unreadable runs are logged and skipped."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found: list[RunManifest] = []
    for entry in os.scandir(runs_dir):
        if not entry.is_dir(follow_symlinks=False) or not RUN_ID_RE.fullmatch(entry.name):
            continue
        if entry.name.startswith(".") or ".." in entry.name:
            continue
        try:
            m = RunStore(runs_dir, entry.name).manifest()
        except RunStoreError as e:
            msg = f"skipping run {entry.name}: {e}"
            log.warning(msg)
            if skipped is not None:
                skipped.append(msg)
            continue
        found.append(m)
    found.sort(key=lambda m: (m.created_at, m.run_id), reverse=True)
    return found


def latest_run(runs_dir: Path) -> RunManifest | None:
    """The newest readable run, or None."""
    runs = list_runs(runs_dir)
    return runs[0] if runs else None


__all__ = [
    "ATTEMPTS",
    "MANIFEST",
    "RECORDS",
    "RESULTS",
    "RUN_ID_RE",
    "NewerFormatError",
    "RunStore",
    "latest_run",
    "list_runs",
    "new_run_id",
    "validate_run_id",
    "write_json_atomic",
]
