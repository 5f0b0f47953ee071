"""kill -9 at every step of a publish: the old site or the new one, whole; the gate still holds.

strace injects SIGKILL on entering the Nth call of one file-changing syscall of `python -m panel
publish` (strace counts each syscall on its own, so every syscall gets its own sweep): every
rename of a page, the index and the ledger; the swap itself (`renameat2` exchange, or the
fallback's two renames); the unlinks that drop the build mark and the old site after the swap.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from panelproc import launcher
from sitedata import make_run, tree

from panel.errors import GateRefused
from panel.pages.publish import publish, read_state
from panel.pages.site import SITE_FILE, recover

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
RENAMES = ["rename", "renameat", "renameat2"]
UNLINKS = ["unlink", "unlinkat", "rmdir"]
Sites = tuple[Path, dict[str, bytes], dict[str, bytes]]  # runs, old pages, new pages


def _pages(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if k != SITE_FILE}


def _publish_with(
    signal_name: str, syscall: str, n: int, site: Path, runs: Path, swap: str
) -> subprocess.CompletedProcess[str]:
    """`python -m panel publish run-c run-b`, sent `signal_name` on entering the nth `syscall`."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PANEL_SITE_SWAP": swap}
    strace = [
        "-f", "-qq", "-o", "/dev/null",
        "-e", f"trace={syscall}", "-e", f"inject={syscall}:signal={signal_name}:when={n}",
    ]  # fmt: skip
    publish = [
        sys.executable, "-m", "panel", "publish", "run-c", "run-b",
        "--site", str(site), "--runs-dir", str(runs), "--accept-flips", "--allow-synthetic",
    ]  # fmt: skip
    return launcher().run_traced(strace, publish, env=env)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    """Three runs, and the pages of the old site (run-a) and of the new one (run-c + run-b)."""
    root = tmp_path_factory.mktemp("crash")
    runs = root / "runs"
    make_run(runs, "run-a", ["alpha", "beta"], [("alpha", "beta")])
    make_run(runs, "run-b", ["gamma", "delta"], [("gamma", "delta")])
    make_run(runs, "run-c", ["alpha", "beta"], [("alpha", "beta")], flips=[("beta", "skeptic")])
    expected = root / "expected"
    publish("run-a", runs_dir=runs, site=expected, allow_synthetic=True)
    old = _pages(expected)
    publish(
        ["run-c", "run-b"], runs_dir=runs, site=expected, allow_synthetic=True, accept_flips=True
    )
    return runs, old, _pages(expected)


def _sweep(syscall: str, swap: str, tmp_path: Path, sites: Sites) -> list[str]:
    """Kill the publish at call 1, 2, 3... of `syscall` until it gets through; check each."""
    runs, old, new = sites
    outcomes: list[str] = []
    for n in range(1, 40):
        site = tmp_path / f"{syscall}{n}"
        publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
        code = _publish_with("SIGKILL", syscall, n, site, runs, swap).returncode
        if code == 0:
            assert _pages(site) == new
            return outcomes
        assert code in (-signal.SIGKILL, 128 + signal.SIGKILL), code
        if swap == "rename":
            recover(site)  # what the next publish does first
        if _pages(site) == old:
            outcomes.append("old")
            # The page shows run-a still: run-c's flip must be refused again.
            with pytest.raises(GateRefused, match="beta × skeptic: ship -> not ship"):
                publish("run-c", runs_dir=runs, site=site, allow_synthetic=True)
        else:
            assert _pages(site) == new, f"kill at {syscall} {n}: neither the old nor the new site"
            ledger = read_state(site)
            assert ledger is not None and ledger.pages["alpha--vs--beta"].run_id == "run-c"
            outcomes.append("new")
            with pytest.raises(GateRefused, match="beta × skeptic: not ship -> ship"):
                publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)  # cleans leftovers
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{site.name}.")]
        assert leftovers == [], f"kill at {syscall} {n}: {leftovers} never cleaned"
    pytest.fail(f"the publish never got through 40 calls of {syscall}")


@pytest.mark.slow
@pytest.mark.parametrize("swap", ["exchange", "rename"])
def test_kill_9_at_every_rename_leaves_a_whole_site(
    tmp_path: Path, sites: Sites, swap: str
) -> None:
    outcomes = [o for call in RENAMES for o in _sweep(call, swap, tmp_path, sites)]
    # Every file the publish writes (the pages that are new or changed, three files each; the
    # two index files) and the ledger are renamed into place — a page whose bytes are unchanged
    # is carried over, not rewritten — then the swap: one exchange, or the fallback's two
    # renames (killed between them, the next publish restores the old site). Killed on entry,
    # none of them has happened: the old site.
    _, old, new = sites
    written = [name for name, data in new.items() if old.get(name) != data]
    assert len(written) == 5 * 3 + 2  # alpha's tool page is unchanged; 5 pages and the index
    renames = len(written) + 1 + (1 if swap == "exchange" else 2)
    assert outcomes == ["old"] * renames, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("swap", ["exchange", "rename"])
def test_kill_9_at_every_unlink_leaves_a_whole_site(
    tmp_path: Path, sites: Sites, swap: str
) -> None:
    outcomes = [o for call in UNLINKS for o in _sweep(call, swap, tmp_path, sites)]
    # The build mark goes just before the swap (the old site), then the old site's files (its
    # pages, the index and the ledger) and its folder after it, then the site's lock file: the
    # new site is whole, and what is left of the old one (and the lock file) is cleaned by the
    # next publish.
    _, old, _ = sites
    assert len(old) == 3 * 3 + 2  # 1 comparison and 2 tool pages, and the index
    assert sorted(outcomes) == ["new"] * (len(old) + 1 + 2) + ["old"], outcomes


@pytest.mark.parametrize(
    ("syscall", "n"),
    [("rename,renameat", 2), ("renameat2", 1), ("unlink,unlinkat", 2)],  # build, swap, cleanup
)
def test_ctrl_c_during_publish_is_one_line_and_a_whole_site(
    tmp_path: Path, sites: Sites, syscall: str, n: int
) -> None:
    runs, old, new = sites
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    proc = _publish_with("SIGINT", syscall, n, site, runs, "exchange")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines() == [
        f"publish interrupted: {site} holds the pages from before or after it; "
        "publish again to finish"
    ]
    assert _pages(site) in (old, new)
