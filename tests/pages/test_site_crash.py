"""kill -9 at every rename of a publish: the old site or the new one, whole; the gate still holds.

strace injects SIGKILL at the Nth rename-family syscall of `python -m panel publish` (page files,
index, ledger and the swap itself), for every N until the publish gets through.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sitedata import make_run, tree

from panel.errors import GateRefused
from panel.pages.publish import publish, read_state
from panel.pages.site import SITE_FILE, recover

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
RENAMES = "rename,renameat,renameat2"


def _pages(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if k != SITE_FILE}


def _killed_publish(n: int, site: Path, runs: Path, swap: str) -> int:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PANEL_SITE_SWAP": swap}
    cmd = [
        "strace", "-f", "-qq", "-o", "/dev/null",
        "-e", f"trace={RENAMES}",
        "-e", f"inject={RENAMES}:signal=SIGKILL:when={n}",
        sys.executable, "-m", "panel", "publish", "run-c", "run-b",
        "--site", str(site), "--runs-dir", str(runs), "--accept-flips", "--allow-synthetic",
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False).returncode


@pytest.mark.parametrize("swap", ["exchange", "rename"])
@pytest.mark.slow
def test_kill_9_at_every_rename_leaves_a_whole_site(tmp_path: Path, swap: str) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "run-a", ["alpha", "beta"], [("alpha", "beta")])
    make_run(runs, "run-b", ["gamma", "delta"], [("gamma", "delta")])
    make_run(runs, "run-c", ["alpha", "beta"], [("alpha", "beta")], flips=[("beta", "skeptic")])
    expected = tmp_path / "expected"
    publish("run-a", runs_dir=runs, site=expected, allow_synthetic=True)
    old = _pages(expected)
    publish(
        ["run-c", "run-b"], runs_dir=runs, site=expected, allow_synthetic=True, accept_flips=True
    )
    new = _pages(expected)
    outcomes = []
    for n in range(1, 40):
        site = tmp_path / f"site{n}"
        publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
        code = _killed_publish(n, site, runs, swap)
        if code == 0:
            break
        assert code in (-signal.SIGKILL, 128 + signal.SIGKILL), code
        if swap == "rename":
            recover(site)  # what the next publish does first
        if _pages(site) == old:
            outcomes.append("old")
            # The page shows run-a still: run-c's flip must be refused again.
            with pytest.raises(GateRefused, match="beta × skeptic: ship -> not ship"):
                publish("run-c", runs_dir=runs, site=site, allow_synthetic=True)
        else:
            assert _pages(site) == new, f"kill at rename {n}: neither the old nor the new site"
            ledger = read_state(site)
            assert ledger is not None and ledger.pages["alpha--vs--beta"].run_id == "run-c"
            outcomes.append("new")
            with pytest.raises(GateRefused, match="beta × skeptic: not ship -> ship"):
                publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)  # cleans leftovers
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".site{n}.")]
        assert leftovers == []
    else:
        pytest.fail("the publish never got through 40 renames")
    assert outcomes[0] == "old" and "new" not in outcomes[:-2]  # killed early: the old site
    assert len(outcomes) >= 8  # every page file, the index, the ledger and the swap were hit
