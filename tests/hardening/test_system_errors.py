"""Issue 12, item 13: the system saying no is one line on stderr and exit 2, never a traceback.

A full disk (ENOSPC on every write under the runs folder, simulated per file descriptor), a
read-only runs folder (EROFS, simulated: the suite may run as root), a file where the runs
folder should be, and an unparseable ANTHROPIC_BASE_URL.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from panel.cli import main
from panel.emulator.runner import EmulatorHandle

from .cli_proc import panel
from .conftest import write_tool


def _tools(tmp: Path, n: int = 6) -> Path:
    for i in range(n):
        write_tool(tmp / "tools", f"Tool {i}")
    return tmp / "tools"


def _main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["panel", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    code = exit_info.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    errors = [ln for ln in err.splitlines() if ln.startswith("panel: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err and "unhandled exception" not in err, err
    return errors[0]


def test_a_full_disk_is_one_line(
    tmp_path: Path,
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    runs = tmp_path / "runs"
    tools = _tools(tmp_path)
    real_write, real_pwrite = os.write, os.pwrite
    writes = {"n": 0}

    def under_runs(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(str(runs))
        except OSError:
            return False

    def write(fd: int, data: bytes) -> int:
        if under_runs(fd):
            writes["n"] += 1
            if writes["n"] > 3:  # the manifest and a few lines fit; then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "pwrite", lambda fd, data, off: real_pwrite(fd, data, off))
    monkeypatch.setenv("PANEL_EMULATOR_URL", emulator.base_url)
    code, err = _main(
        ["run", str(tools), "--model", "emulator:claude-sonnet-5", "--runs-dir", str(runs),
         "--no-cache", "-c", "8"],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2
    assert "No space left on device" in _one_error_line(err)
    assert "Traceback" not in caplog.text and "unhandled" not in caplog.text
    assert writes["n"] > 3


def test_a_read_only_runs_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "ro"
    runs.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path: object, *args: object, **kwargs: object) -> None:
        if str(path).startswith(str(runs)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "mkdir", mkdir)
    code, err = _main(
        ["run", str(_tools(tmp_path, 1)), "--model", "emulator:claude-sonnet-5",
         "--runs-dir", str(runs)],
        monkeypatch, capsys,
    )  # fmt: skip
    assert code == 2 and "Read-only file system" in _one_error_line(err)


@pytest.mark.parametrize("where", ["file", "under-a-file", "dangling-symlink"])
def test_a_runs_dir_that_is_not_a_folder_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "dangling").symlink_to("nowhere/deeper")
    runs = {"file": "afile", "under-a-file": "afile/runs", "dangling-symlink": "dangling"}[where]
    tools = _tools(tmp_path, 1)
    result = panel(
        "run", str(tools), "--model", "emulator:claude-sonnet-5", "--runs-dir", runs,
        "--latency-scale", "0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot use runs folder" in _one_error_line(result.stderr)
    assert (tmp_path / "afile").read_text() == "not a folder"
    assert not (tmp_path / "nowhere").exists()  # a dangling link is not followed to create
    if where == "dangling-symlink":
        assert "a symlink to nowhere/deeper, which does not exist" in result.stderr


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "not a url"])
def test_an_unparseable_base_url_is_one_line(tmp_path: Path, url: str) -> None:
    tools = _tools(tmp_path, 1)
    result = panel(
        "run", str(tools), "--model", "anthropic:claude-sonnet-5", cwd=tmp_path,
        env={"ANTHROPIC_API_KEY": "sk-test-0000000000", "ANTHROPIC_BASE_URL": url},
    )  # fmt: skip
    assert result.returncode == 2
    assert "ANTHROPIC_BASE_URL" in _one_error_line(result.stderr)
