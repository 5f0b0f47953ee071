"""The site panel owns: its marker and ledger, the target checks, and the one-step swap.

A site folder is panel's only if it holds `.panel-site.json`, the ledger: per page, the run it
came from and the verdicts it shows (run, tool, persona, result digest, ship). The ledger is
written inside the folder that is swapped in, so what readers see and what the gates compare
against can never disagree, whatever moment a publish is killed at.

The swap is one atomic step: the new site is built in a hidden sibling and exchanged with the
live one by `renameat2(RENAME_EXCHANGE)` (Linux, via ctypes). Where the kernel or the file
system cannot exchange, the fallback renames the live site to a hidden backup and the new one
into place; a publish killed between those two renames is repaired by the next one (the backup,
holding its ledger, is renamed back before anything else happens).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from panel.errors import PublishError
from panel.store.atomicio import write_bytes_atomic
from panel.store.claims import exclusive

SITE_FILE = ".panel-site.json"  # the marker and the ledger
LEGACY_STATE = ".panel-published.json"  # what sites published before the ledger held
BUILD_MARK = ".panel-site-build"  # in a folder being built, until it holds the ledger
_MARKERS = (SITE_FILE, LEGACY_STATE, BUILD_MARK)  # removed last when panel discards a folder
PAGE_SUFFIXES = (".html", ".md", ".json")  # the files of one page (render.write_pages)
INDEX_FILES = ("index.html", "index.md")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approval(_Frozen):
    """One reviewed flip an editor accepts: `- tool: <slug>` / `  persona: <id>`."""

    tool: str
    persona: str


class ShownDraw(_Frozen):
    """One draw behind a verdict a page shows (samples, or a jury's models)."""

    model: str
    sample: int
    status: str  # the line's status: ok, failed, refused
    ship: bool | None = None
    digest: str  # sha256 of the PairResult's JSON


class ShownVerdict(_Frozen):
    """One verdict a page shows: where it came from and what readers see of it."""

    run_id: str
    tool: str
    persona: str
    status: str  # ship, not_ship, failed, declined, missing (records.VoteStatus)
    ship: bool | None = None
    synthetic: bool = False
    digest: str | None = None  # sha256 of the PairResult's JSON; None when there is no result
    # With samples or a jury: whether the verdict is stable (panel.aggregate; None: drawn once)
    # and every draw behind it (the one quoted is `digest`).
    stable: bool | None = None
    draws: list[ShownDraw] = Field(default_factory=list)


class PageEntry(_Frozen):
    """One page of the site."""

    slug: str
    title: str
    run_id: str
    runs_dir: str
    published_at: str
    content_digest: str  # the record without its run id and date: "unchanged" means equal
    incomplete: bool = False
    synthetic: bool = False
    verdicts: list[ShownVerdict]
    accepted_flips: list[Approval] = Field(default_factory=list)


class SiteLedger(_Frozen):
    """What the site shows, page by page: written inside the site, swapped in with it."""

    format: Literal[1] = 1
    owner: Literal["panel"] = "panel"
    updated_at: str
    last_run_id: str | None = None  # the newest run published (one-argument `panel diff`)
    previous_run_id: str | None = None
    # Digest of the site settings and page templates the pages were rendered with; when it
    # changes, kept pages are re-rendered from their JSON (never their verdicts).
    chrome_digest: str | None = None
    pages: dict[str, PageEntry] = Field(default_factory=dict)


def read_ledger(site: Path) -> SiteLedger | None:
    """The site's ledger, or None when the folder holds none (empty, missing, or legacy)."""
    path = site / SITE_FILE
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return SiteLedger.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise PublishError(f"{path}: unreadable site ledger: {exc}") from None


def write_ledger(folder: Path, ledger: SiteLedger) -> None:
    write_bytes_atomic(folder / SITE_FILE, (ledger.model_dump_json(indent=2) + "\n").encode())


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def check_target(site: Path, runs_dir: Path, cwd: Path | None = None) -> None:
    """Refuse a site folder panel must not replace; touches nothing either way."""
    here = (cwd or Path.cwd()).resolve()
    if site.is_symlink():
        raise PublishError(f"{site} is a symlink; refusing to replace it (give the real folder)")
    where = site.resolve()
    runs = runs_dir.resolve()
    if _inside(where, runs) or _inside(runs, where):
        raise PublishError(
            f"--site {site} is the runs folder, inside it or holds it ({runs_dir}); "
            "publishing would replace the runs: pick a folder of its own, e.g. --site site"
        )
    if _inside(here, where):
        what = "the working directory" if where == here else "an ancestor of the working directory"
        raise PublishError(
            f"--site {site} is {what}; publishing would replace your workspace: "
            "pick a folder of its own, e.g. --site site"
        )
    if site.exists() and not site.is_dir():
        raise PublishError(f"--site {site} is not a folder; refusing to replace it")
    if site.is_dir() and not owned(site) and any(site.iterdir()):
        raise PublishError(
            f"--site {site} is a non-empty folder panel did not create (no {SITE_FILE}); "
            "refusing to replace it: pick an empty or new folder"
        )


def owned(site: Path) -> bool:
    """True when the folder holds panel's marker (the ledger, or a legacy publish state)."""
    return any(
        (site / n).is_file() and not (site / n).is_symlink() for n in (SITE_FILE, LEGACY_STATE)
    )


def _siblings(site: Path, kind: str) -> list[Path]:
    parent = site.absolute().parent
    if not parent.is_dir():
        return []
    found = [p for p in parent.glob(f".{site.name}.{kind}-*") if p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def discard(folder: Path) -> None:
    """Remove a folder panel built, its markers last: killed midway, it is still recognisable."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name in _MARKERS):  # markers last
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with suppress(OSError):
                os.unlink(entry.path)
    with suppress(OSError):
        os.rmdir(folder)


def recover(site: Path) -> None:
    """Repair what a killed publish left: restore a lost site from its backup, drop leftovers."""
    if not site.exists() and not site.is_symlink():
        backups = [b for b in _siblings(site, "old") if owned(b)]
        if backups:
            os.rename(backups[0], site)  # the fallback swap died between its two renames
    for leftover in _siblings(site, "old") + _siblings(site, "new"):
        # Only what panel built: it holds the ledger or the build mark, or nothing at all.
        if owned(leftover) or (leftover / BUILD_MARK).is_file() or not any(leftover.iterdir()):
            discard(leftover)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (renameat2 RENAME_EXCHANGE); False if unsupported."""
    if os.environ.get("PANEL_SITE_SWAP") == "rename":  # tests exercise the fallback with it
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


P = ParamSpec("P")
R = TypeVar("R")


def _remove_empty(folders: list[Path]) -> None:
    """Folders made for a publish that did not get through: leave no trace (innermost first)."""
    for folder in folders:
        with suppress(OSError):
            folder.rmdir()


def one_publish_at_a_time(publish: Callable[P, R]) -> Callable[P, R]:
    """Run `publish(..., site=…)` holding the site's lock (`.<site>.lock` beside it).

    A second publish onto the same site waits, then reads the ledger the first one wrote: it
    neither loses the other's pages nor takes the other's build for a killed publish's
    leftover (which `recover` would delete). The unsafe targets are refused first, so a
    refused target never gets a lock file or a parent folder made for it.
    """

    @functools.wraps(publish)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        site, runs_dir = Path(kwargs["site"]), Path(kwargs["runs_dir"])  # type: ignore[arg-type]
        check_target(site, runs_dir)
        parent = site.absolute().parent
        made = [p for p in (parent, *parent.parents) if not p.exists()]
        with ExitStack() as stack:
            stack.callback(_remove_empty, made)  # runs last: after the lock file is gone
            try:
                parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(exclusive(parent / f".{site.name}.lock"))
            except OSError as exc:
                blocked = isinstance(exc, FileExistsError | NotADirectoryError)
                why = "a file is in the way of that folder" if blocked else exc.strerror or exc
                raise PublishError(f"--site {site}: cannot use {parent}: {why}") from None
            return publish(*args, **kwargs)

    return locked


def _written_by_panel(site: Path) -> Callable[[str], bool]:
    """Which names in the live site panel wrote: its markers, the index, the ledger's pages."""
    fixed = {*_MARKERS, *INDEX_FILES}
    ledger = read_ledger(site)
    if ledger is None:  # a site published before ledgers: every page-shaped file is panel's
        return lambda name: name in fixed or name.endswith(PAGE_SUFFIXES)
    pages = {f"{slug}{suffix}" for slug in ledger.pages for suffix in PAGE_SUFFIXES}
    return lambda name: name in fixed or name in pages


def carry_over(site: Path, fresh: Path) -> None:
    """What an editor added to the site (a CNAME, robots.txt, images) goes into the new one.

    panel replaces only what it wrote. A page about to take the name of a file it did not
    write is refused instead (PublishError; the site unchanged).
    """
    if not site.is_dir() or site.is_symlink():
        return
    ours = _written_by_panel(site)
    with os.scandir(site) as entries:
        theirs = [entry for entry in entries if not ours(entry.name)]
    for entry in theirs:
        target = fresh / entry.name
        if target.exists() or target.is_symlink():
            raise PublishError(
                f"{site / entry.name} was not written by panel, and a page of that name is "
                "being published: move or rename the file, then publish again"
            )
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True)
        else:
            shutil.copy2(entry.path, target)


def swap_in(site: Path, build: Callable[[Path], None]) -> None:
    """Build the new site in a hidden sibling, then swap it in; on failure `site` is untouched."""
    parent = site.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=parent, prefix=f".{site.name}.new-"))
    try:
        os.chmod(fresh, 0o755)  # noqa: S103 - mkdtemp's 0700 would hide the site from a web server
        (fresh / BUILD_MARK).write_bytes(b"")  # a killed build is still recognisably panel's
        build(fresh)
        carry_over(site, fresh)
        (fresh / BUILD_MARK).unlink()
    except BaseException:
        discard(fresh)
        raise
    if not site.exists():
        os.rename(fresh, site)  # nothing live yet: one rename is the one step
        return
    if exchange(fresh, site):
        discard(fresh)  # `fresh` now holds the old site
        return
    backup = parent / f".{site.name}.old-{os.urandom(4).hex()}"
    os.rename(site, backup)
    try:
        os.rename(fresh, site)
    except BaseException:
        os.rename(backup, site)
        discard(fresh)
        raise
    discard(backup)


__all__ = [
    "INDEX_FILES",
    "LEGACY_STATE",
    "PAGE_SUFFIXES",
    "SITE_FILE",
    "Approval",
    "PageEntry",
    "ShownVerdict",
    "SiteLedger",
    "carry_over",
    "check_target",
    "discard",
    "exchange",
    "one_publish_at_a_time",
    "owned",
    "read_ledger",
    "recover",
    "swap_in",
    "write_ledger",
]
