"""`panel ARGS` through the real entry point, in this process (fast; no SDK import per call).

Errors become one line and an exit code exactly as for a user: `main()` maps them. For the
tests that need a real process (signals, kill -9), see tests/panelproc.py.
"""

from __future__ import annotations

import contextlib
import io
import sys

from panel.cli import main


def cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `panel ARGS`."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["panel", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def cli_joined(*args: str) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `panel ARGS`."""
    code, out, err = cli(*args)
    return code, out + err
