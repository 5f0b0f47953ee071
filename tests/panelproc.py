"""`python -m panel …` as a real process, without paying the interpreter's start each time.

A fresh `python -m panel run` spends seconds of CPU importing the SDKs before it does anything,
and the suite starts dozens of them. `launcher()` keeps one pre-imported fork server per test
process (started on first use, stopped at the end of the session) and forks it for each
command. The fork then runs exactly what `python -m panel ARGS` runs —
`runpy.run_module("panel", run_name="__main__")` with the job's argv, working directory and
environment, its stdin, stdout and stderr on the pipes the test holds — and ends the way the
interpreter ends a process (the exit code of a SystemExit, an uncaught exception's traceback
and exit 1, a KeyboardInterrupt re-raised as SIGINT; then other threads joined, atexit, flush).
It is a real process: its own pid, real signals and exit codes (`-9` after a SIGKILL, as
`subprocess.Popen` reports it). What differs from a fresh interpreter: the modules listed in
`_PRELOAD` were imported before the job's environment was set, and the fork leaves with
`os._exit` after the flush instead of tearing the interpreter down — freeing the server's
pre-imported heap cost each fork about 190 ms of CPU (an empty job takes 25 ms without it), so
objects still alive at the end are not finalized (a `__del__` there would not run). Tests about the
interpreter's start itself (what `import panel` loads) keep using `subprocess` directly, and a
job whose `PYTHON*` or locale variables differ from the server's (other than
PYTHONDONTWRITEBYTECODE) goes to a fresh interpreter.

Under xdist the controller starts the one server and the workers attach to it; the workers are
themselves forked from it (tests/forkworker.py), so they start with panel, the SDKs and pytest
imported.

`Launcher.Popen` and `Launcher.run` take the same arguments as their `subprocess` namesakes for
`[sys.executable, "-m", "panel", …]` and `[sys.executable, "-c", CODE, …]`; any other command
line is handed to `subprocess` unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

# What the fork server imports once (the expensive part of every `panel` command's start).
# Every command's module (panel.cli.COMMANDS) is imported too.
# The SDKs' resources and transports are imported lazily, on a client's first use: without them
# here, every fork that opened a provider imported them again (a third of the forks' CPU).
_PRELOAD = (
    "anthropic", "openai", "httpx2", "httpcore2", "anyio._backends._asyncio",
    "openai.resources", "openai.resources.chat", "openai.resources.responses",
    "panel.run.engine", "panel.providers.anthropic", "panel.providers.openai",
    "panel.providers.responses", "panel.providers.batchservices",
    "panel.providers.instructor_provider",
    "panel.emulator.runner", "panel.emulator.server", "panel.emulator.batches",
    "panel.batch.regenerate", "panel.batch.via_api", "panel.pages.publish", "panel.pages.render",
    # What an xdist worker imports before it collects (tests/forkworker.py); not the pytest
    # plugins, which pytest must import itself (to rewrite their asserts).
    "pytest", "execnet",
)  # fmt: skip


def _compile_templates() -> None:
    """Compile the page templates once in the server (jinja caches them per environment), not
    in every `panel publish` fork: a fifth of the forks' CPU."""
    from panel.pages.render import html_env, markdown_env

    for env, kinds in ((html_env(), (".html.j2", ".css.j2")), (markdown_env(), (".md.j2",))):
        for name in env.list_templates():
            if name.endswith(kinds):
                env.get_template(name)


SHARED_SERVER = "PANEL_TESTS_FORK_SERVER"  # the socket of a server the xdist controller shares
_EMULATED_ENV = {"PYTHONDONTWRITEBYTECODE"}  # applied in the fork; other PYTHON* need a fresh one
_MSG = 1 << 20  # one job message (argv, cwd, environment) fits in a datagram this size


# --- the server (runs as `python panelproc.py SOCKET`) ----------------------------------------


def _serve(path: str) -> dict[str, Any]:
    """Accept jobs until stdin closes; return only in a forked child, with its job."""
    import gc
    from importlib import import_module

    from panel.cli import COMMANDS

    for name in (*(f"panel.cli.{command}" for command in COMMANDS), *_PRELOAD):
        import_module(name)
    _compile_templates()
    import threading

    assert threading.active_count() == 1, "the fork server must not run threads"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)  # the path appears once it accepts: what attach() waits for
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(0, selectors.EVENT_READ, "stdin")
    print("ready", flush=True)
    running: dict[int, tuple[int, socket.socket]] = {}  # pid -> (pidfd, connection)
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                if os.read(0, 4096):
                    continue
                for pid, (pidfd, conn) in running.items():  # the session is over
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    os.close(pidfd)
                    conn.close()
                raise SystemExit(0)
            if key.data == "accept":
                conn, _ = listener.accept()
                msg, fds, _, _ = socket.recv_fds(conn, _MSG, 3)
                job = json.loads(msg)
                sys.stdout.flush()
                sys.stderr.flush()
                # What was imported stays out of the fork's garbage collections: a collection
                # would touch (and so copy) every page, and exit would cost over a second.
                gc.freeze()
                pid = os.fork()
                if pid == 0:
                    sel.close()
                    listener.close()
                    conn.close()
                    for pidfd, other in running.values():
                        os.close(pidfd)
                        other.close()
                    for target, fd in enumerate(fds):
                        os.dup2(fd, target)
                        os.close(fd)
                    return dict(job)
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                running[pid] = (pidfd, conn)
                sel.register(pidfd, selectors.EVENT_READ, pid)
                conn.send(str(pid).encode())
            else:
                pid = key.data
                pidfd, conn = running.pop(pid)
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                conn.send(str(os.waitstatus_to_exitcode(status)).encode())
                conn.close()


def _await_tracer(limit: float = 30.0) -> None:
    """In the fork, for a traced job: wait until a tracer (`strace -p`) has attached."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("TracerPid:") and int(line.split()[1]) != 0:
                    return
        time.sleep(0.002)
    os._exit(125)  # never traced: end the way no job ends


def _become(job: dict[str, Any]) -> None:
    """In the fork: take the job's directory and environment, then run it as the interpreter
    would run `python -m panel ARGS` or `python -c CODE ARGS`."""
    import runpy
    import types

    if job.get("traced"):
        _await_tracer()
    # As an interpreter started by the test would have it: the server may have inherited SIGINT
    # ignored (a shared server is started by the xdist controller, which a shell may have put in
    # the background), and then asyncio.run would not turn Ctrl-C into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    if job["module"] is not None:
        sys.path[0] = os.getcwd()  # as `python -m` sets it
        sys.argv = ["-m", *job["args"]]  # run_module puts the module's path in argv[0]
        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = ""  # as `python -c` sets it
        sys.argv = ["-c", *job["args"]]
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(job["code"], "<string>", "exec"), main.__dict__)


# --- the client (in the test process) --------------------------------------------------------


def _python_job(args: Sequence[str | os.PathLike[str]]) -> tuple[str | None, str | None, list[str]]:
    """(module, code, argv) for `python -m panel …` / `python -c CODE …`; ValueError otherwise."""
    argv = [os.fspath(a) for a in args]
    if len(argv) >= 3 and argv[0] == sys.executable:
        if argv[1] == "-m" and argv[2] == "panel":
            return "panel", None, argv[3:]
        if argv[1] == "-c":
            return None, argv[2], argv[3:]
    raise ValueError("not a python -m panel / python -c command line")


class ForkedProcess:
    """The `subprocess.Popen` surface the tests use, for a process the fork server started."""

    def __init__(
        self,
        server: ForkServer,
        args: Sequence[str | os.PathLike[str]],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stdin: int | IO[Any] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        text: bool = False,
        traced: bool = False,
    ) -> None:
        module, code, argv = _python_job(args)
        self.args = list(args)
        self.returncode: int | None = None
        self.text = text
        theirs: list[int] = []  # the child's 0, 1, 2 (closed here once sent)
        ends: list[IO[Any] | None] = []
        for target, spec in enumerate((stdin, stdout, stderr)):
            if spec == subprocess.PIPE:
                r, w = os.pipe()
                keep, give = (w, r) if target == 0 else (r, w)
                theirs.append(give)
                mode = "w" if target == 0 else "r"
                ends.append(open(keep, mode, encoding="utf-8") if text else open(keep, mode + "b"))  # noqa: SIM115
                continue
            ends.append(None)
            if spec == subprocess.STDOUT and target == 2:
                theirs.append(os.dup(theirs[1]))
            elif spec == subprocess.DEVNULL or (spec is None and target == 0):
                # Never the worker's own stdin: xdist talks to its workers there.
                theirs.append(os.open(os.devnull, os.O_RDWR))
            elif spec is None:
                theirs.append(os.dup(target))  # inherited, as a subprocess would
            else:
                theirs.append(os.dup(spec if isinstance(spec, int) else spec.fileno()))
        self.stdin, self.stdout, self.stderr = ends
        job = {
            "module": module,
            "code": code,
            "args": argv,
            "cwd": os.fspath(cwd) if cwd is not None else os.getcwd(),
            "env": dict(os.environ if env is None else env),
            "traced": traced,  # wait for a tracer to attach before running
        }
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._conn.connect(server.path)
            socket.send_fds(self._conn, [json.dumps(job).encode()], theirs)
            self.pid = int(self._conn.recv(64))
        finally:
            for fd in theirs:
                os.close(fd)
        # Signals go through a pidfd: never to another process that reused the pid.
        self._pidfd: int | None = None
        with contextlib.suppress(ProcessLookupError):  # already ended and reaped
            self._pidfd = os.pidfd_open(self.pid)

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for end in (self.stdin, self.stdout, self.stderr):
            if end is not None:
                end.close()
        self.wait()

    def _reap(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                reply = self._conn.recv(64)
            except (TimeoutError, BlockingIOError):
                return None
            if not reply:
                raise RuntimeError(f"the fork server went away before {self.pid} ended")
            self.returncode = int(reply)
            self._conn.close()
            if self._pidfd is not None:
                os.close(self._pidfd)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._reap(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(
        self, input: str | bytes | None = None, timeout: float | None = None
    ) -> tuple[Any, Any]:
        """Feed stdin, read stdout and stderr to their ends, wait; as Popen.communicate."""
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: dict[int, list[bytes]] = {}
        sel = selectors.DefaultSelector()
        for end in (self.stdout, self.stderr):
            if end is not None:
                chunks[end.fileno()] = []
                sel.register(end.fileno(), selectors.EVENT_READ)
        if self.stdin is not None:
            if input:
                self.stdin.write(input)
            self.stdin.close()
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            for key, _ in sel.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
        sel.close()
        out = [
            self._decode(b"".join(chunks[e.fileno()])) if e else None
            for e in (self.stdout, self.stderr)
        ]
        for end in (self.stdout, self.stderr):
            if end is not None:
                end.close()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)
        return out[0], out[1]

    def _decode(self, data: bytes) -> str | bytes:
        if not self.text:
            return data
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


class ForkServer:
    """One pre-imported `python panelproc.py` that forks a process per job.

    Started by the process that uses it, or shared: the xdist controller starts one
    (`Launcher.share`) and its workers `attach` to it, so the suite pays the server's imports
    (about 8 s of CPU) once instead of once per worker.
    """

    def __init__(self, *, wait: bool = True) -> None:
        self._dir = tempfile.mkdtemp(prefix="panel-forkserver-")
        self.path = os.path.join(self._dir, "s")
        self.env = dict(os.environ)
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
        )
        self._ready = False
        if wait:
            self._wait_ready()

    @classmethod
    def attach(cls, path: str, timeout: float = 120.0) -> ForkServer:
        """The server another process started (and will close), once it accepts jobs."""
        server = cls.__new__(cls)
        server.path, server.env, server._proc, server._ready = path, dict(os.environ), None, True
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the shared fork server at {path} never started")
            time.sleep(0.05)
        return server

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        assert ready.strip() == b"ready", f"the fork server did not start: {ready!r}"
        self._ready = True

    def accepts(self, env: Mapping[str, str] | None) -> bool:
        """Whether a job with this environment can run in a fork: the interpreter's settings
        (PYTHON* variables, the locale) read at start are the server's."""

        def start_vars(e: Mapping[str, str]) -> dict[str, str]:
            return {
                k: v
                for k, v in e.items()
                if k.startswith(("PYTHON", "LC_", "LANG")) and k not in _EMULATED_ENV
            }

        return start_vars(os.environ if env is None else env) == start_vars(self.env)

    def close(self) -> None:
        if self._proc is None:
            return  # attached: the process that started it closes it
        if not self._ready:
            self._wait_ready()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._proc.stdout.close()
        os.unlink(self.path)
        os.rmdir(self._dir)


class Launcher:
    """`subprocess.Popen`/`run` for panel command lines, through the fork server."""

    def __init__(self) -> None:
        self._server: ForkServer | None = None

    def _fork_server(self, args: Sequence[Any], env: Mapping[str, str] | None) -> ForkServer | None:
        try:
            _python_job(args)
        except ValueError:
            return None
        if self._server is None:
            shared = os.environ.get(SHARED_SERVER)
            self._server = ForkServer.attach(shared) if shared else ForkServer()
        return self._server if self._server.accepts(env) else None

    def share(self) -> None:
        """Start the fork server now, without waiting for it, and name its socket in the
        environment of the processes started from here on (the xdist workers)."""
        if self._server is None:
            self._server = ForkServer(wait=False)
            os.environ[SHARED_SERVER] = self._server.path

    def Popen(self, args: Sequence[Any], **kwargs: Any) -> ForkedProcess | subprocess.Popen[Any]:
        server = self._fork_server(args, kwargs.get("env"))
        if server is None:
            return subprocess.Popen(args, **kwargs)
        return ForkedProcess(server, args, **kwargs)

    def run(
        self,
        args: Sequence[Any],
        *,
        input: str | bytes | None = None,
        capture_output: bool = False,
        timeout: float | None = None,
        check: bool = False,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        if self._fork_server(args, kwargs.get("env")) is None:
            return subprocess.run(
                args, input=input, capture_output=capture_output, timeout=timeout, check=check,
                **kwargs,
            )  # fmt: skip
        if capture_output:
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        if input is not None:
            kwargs["stdin"] = subprocess.PIPE
        with self.Popen(args, **kwargs) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        done = subprocess.CompletedProcess(args, proc.returncode, out, err)
        if check:
            done.check_returncode()
        return done

    def run_traced(
        self,
        strace: Sequence[str],
        args: Sequence[Any],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """`strace STRACE… ARGS`, output captured as text, with the trace attached to the fork
        (`strace -p`) once the imports are done: strace stops the process at every system call
        it makes, and an interpreter's start makes thousands. Syscall counts (`inject=…:when=N`)
        start at the attach, which is before the job's first line; the start itself does no
        writes, renames or unlinks."""
        server = self._fork_server(args, env)
        if server is None:
            return subprocess.run(
                ["strace", *strace, *args], env=env, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        pipe = subprocess.PIPE
        with ForkedProcess(
            server, args, env=env, stdout=pipe, stderr=pipe, text=True, traced=True
        ) as proc:
            tracer = subprocess.Popen(
                ["strace", *strace, "-p", str(proc.pid)], stdout=subprocess.DEVNULL, stderr=pipe
            )
            try:
                out, err = proc.communicate(timeout=timeout)
            finally:
                _, trace_err = tracer.communicate(timeout=timeout)
            if proc.returncode == 125 and tracer.returncode != 0:
                raise RuntimeError(f"strace could not attach to {proc.pid}: {trace_err}")
        return subprocess.CompletedProcess(args, proc.wait(), out, err)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


_LAUNCHER = Launcher()


def launcher() -> Launcher:
    """This test process's launcher (its fork server starts on first use)."""
    return _LAUNCHER


def _end(run: Any) -> None:
    """Run the job, then end as the interpreter would, without its teardown (see the top)."""
    import atexit
    import threading
    import traceback

    interrupted = False
    try:
        run()
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code, interrupted = 1, True
    except BaseException as e:  # every uncaught exception, as the interpreter reports it
        sys.excepthook(type(e), e, e.__traceback__)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter does: join threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = 120  # the interpreter's code when it cannot flush stdout at exit
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


if __name__ == "__main__":
    _job = _serve(sys.argv[1])
    del _serve  # the fork is `python -m panel …` from here on
    _end(lambda: _become(_job))
