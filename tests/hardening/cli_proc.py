"""Run `python -m panel` as a user would: real exit code, real stdout and stderr (a process
forked from the suite's pre-imported fork server: tests/panelproc.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from panelproc import launcher


def panel(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    base.pop("ANTHROPIC_BASE_URL", None)
    base.pop("OPENAI_BASE_URL", None)
    return launcher().run(
        [sys.executable, "-m", "panel", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
