"""Issue 12, items 7 and 12: input files are regular files, opened without blocking, and one bad
byte skips one file.

A folder with a NUL-byte file, a FIFO and a good file: the good file runs, the other two are
reported as skipped, one line each. Symlinks leading out of the workspace and devices are
refused the same way; nothing blocks (a FIFO with no writer would block a plain open()).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panel.cli import app
from panel.inputs.personas import lint_personas
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.tools import load_tools

from .conftest import tool_yaml

pytestmark = pytest.mark.timeout(30)  # a blocking open would hang: fail instead


def _folder(tmp: Path) -> Path:
    tools = tmp / "tools"
    tools.mkdir()
    (tools / "good.yaml").write_text(tool_yaml("Good Tool"))
    (tools / "nul.yaml").write_bytes(tool_yaml("Nul Tool").encode().replace(b"does", b"do\0es"))
    os.mkfifo(tools / "fifo.yaml")
    return tools


def test_nul_file_and_fifo_are_skipped_and_the_good_file_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tools = _folder(tmp_path)
    result = CliRunner().invoke(
        app,
        ["run", str(tools), "--model", "emulator:claude-sonnet-5", "-p", "skeptic",
         "--latency-scale", "0", "--json"],
        env={"ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "", "OPENROUTER_API_KEY": ""},
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr  # input errors make the exit 1, the run ran
    assert result.exception is None or isinstance(result.exception, SystemExit)
    skipped = [ln for ln in result.stderr.splitlines() if ln.startswith("skipped")]
    assert len(skipped) == 2, result.stderr
    assert any("fifo.yaml" in ln and "FIFO" in ln for ln in skipped)
    assert any(re.search(r"nul.yaml:\d+:\d+: control character U\+0000", ln) for ln in skipped)
    assert "Traceback" not in result.stderr + result.stdout
    assert '"good-tool"' in result.stdout and "nul-tool" not in result.stdout


@pytest.mark.parametrize("byte", [b"\x00", b"\x07", b"\x1b", b"\xff\xfe"])
def test_one_bad_byte_skips_only_its_file(tmp_path: Path, byte: bytes) -> None:
    (tmp_path / "a.yaml").write_text(tool_yaml("Alpha"))
    (tmp_path / "b.yaml").write_bytes(tool_yaml("Beta").encode().replace(b"Beta", b"Be" + byte, 1))
    loaded = load_tools([tmp_path])
    assert [t.spec.name for t in loaded.tools] == ["Alpha"]
    assert len(loaded.errors) == 1 and "b.yaml" in str(loaded.errors[0])
    assert "\n" not in str(loaded.errors[0])


def test_symlinks_out_of_the_workspace_and_devices_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "tools").mkdir(parents=True)
    monkeypatch.chdir(work)
    outside = tmp_path / "secret.yaml"
    outside.write_text(tool_yaml("Outside"))
    (work / "shared.yaml").write_text(tool_yaml("Shared"))
    links = work / "tools"
    (links / "environ.yaml").symlink_to("/proc/self/environ")
    (links / "stdin.yaml").symlink_to("/dev/stdin")
    (links / "outside.yaml").symlink_to(outside)
    (links / "zero.yaml").symlink_to("/dev/zero")
    (links / "dangling.yaml").symlink_to(work / "missing.yaml")
    (links / "inside.yaml").symlink_to(work / "shared.yaml")  # inside the workspace: fine
    loaded = load_tools([links])
    assert [t.spec.name for t in loaded.tools] == ["Shared"]
    assert len(loaded.errors) == 5
    assert all("not read" in str(e) for e in loaded.errors)
    with pytest.raises(UnsafeFileError, match="character device"):
        read_input_file(Path("/dev/zero"), 100)
    with pytest.raises(UnsafeFileError, match="folder"):
        read_input_file(work, 100)


def test_a_persona_fifo_is_a_lint_issue_not_a_hang(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    os.mkfifo(personas / "ghost.md")
    issues = lint_personas([personas])
    assert any("FIFO" in i.message for i in issues), issues


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_approvals_and_votes_files_are_read_only_if_regular(tmp_path: Path, kind: str) -> None:
    """`publish --approvals` and `compare --votes` hung on a FIFO or /dev/zero."""
    from panel.errors import InputError, PublishError
    from panel.pages.publish import load_approvals
    from panel.pages.records import load_votes

    path = tmp_path / "x.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    what = "a FIFO" if kind == "fifo" else "a character device"
    with pytest.raises(PublishError, match=f"approvals file not read: {what}"):
        load_approvals(path)
    with pytest.raises(InputError, match=f"votes file not read: {what}"):
        load_votes(path)
