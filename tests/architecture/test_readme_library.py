"""The README's library example runs as written, with no key, on the emulator."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- example:library -->\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its library example"
    return found.group(1)


@pytest.mark.slow
def test_the_readme_library_example_runs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no API keys
    out = subprocess.run(
        [sys.executable, "-c", _example()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    personas = [line.split()[0] for line in lines[:4]]
    assert sorted(personas) == ["builder", "business", "futurist", "skeptic"]
    assert all(" ok " in line and line.endswith("(synthetic)") for line in lines[:4])
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]+ complete emulator:claude-sonnet-5", lines[4])
