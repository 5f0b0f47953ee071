"""An xdist worker forked from the suite's pre-imported fork server (tests/panelproc.py).

xdist starts each worker as `PYTHON -u -c "import sys;exec(eval(sys.stdin.readline()))"` and
talks to it over its stdin and stdout. The conftest names this file as that PYTHON
(`--tx popen//python=…`), run as `python -S forkworker.py -u -c CODE`: a bare interpreter that
hands its stdin, stdout and stderr to the fork server, which forks a child to run CODE on them,
then waits for that child and ends with its exit status. The worker so starts with panel, both
SDKs and pytest already imported (about 6 s of CPU each for three workers, on two cores).

Without a shared fork server, or for an interpreter the server cannot stand for (other PYTHON*
settings), it becomes a fresh interpreter instead (`os.execv`).
"""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from panelproc import SHARED_SERVER, ForkedProcess, ForkServer


def main(argv: list[str]) -> int:
    flags = argv[: argv.index("-c")]
    code, rest = argv[argv.index("-c") + 1], argv[argv.index("-c") + 2 :]
    shared = os.environ.get(SHARED_SERVER)
    server = ForkServer.attach(shared) if shared and set(flags) <= {"-u"} else None
    if server is None or not server.accepts(None):
        os.execv(sys.executable, [sys.executable, *argv])
    proc = ForkedProcess(server, [sys.executable, "-c", code, *rest], stdin=0, stdout=1, stderr=2)
    # The worker has the pipes now; signals meant for this process are passed on.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    status = proc.wait()
    if status < 0:  # killed by a signal: end the same way
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
