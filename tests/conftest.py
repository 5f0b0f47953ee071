"""Shared fixtures: the emulator on loopback, SDK clients pointed at it, and a network guard.

- `emulator_server` (session): one emulator for the whole run, latency scale 0.
- `emulator` (function): that server, reset (caches, stats, log, attempts) with the default
  test config restored, so each test starts clean.
- `emulator_factory` (function): `make(config=None, **patch) -> EmulatorHandle` starts a
  private emulator (own port and state), stopped after the test.
- `anthropic_client` / `openai_client` (function): sync SDK clients on `emulator`, no retries.
- autouse `_loopback_only`: any socket connect to a non-loopback address fails the test (and no
  TLS roots are loaded: SSL_CERT_DIR is an empty folder unless --live).
- `panelproc.launcher()`: `python -m panel …` processes forked from one pre-imported server;
  under xdist the workers are forked from it too (tests/forkworker.py).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import sys
import tempfile

# The suite starts hundreds of interpreters (xdist workers, the fork servers, `python -m panel`
# subprocesses) and pytest rewrites every test module: with PYTHONDONTWRITEBYTECODE set (as on
# the CI machines) each of them compiled panel and the tests from source again, 8 s of CPU per
# worker in collection alone. The suite writes bytecode caches (`__pycache__`, git-ignored) and
# its processes read them.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from panelproc import launcher

from panel.emulator.state import EmulatorConfig

if TYPE_CHECKING:
    # Imported in the fixtures that use them: the xdist controller loads this file too, and
    # never runs a test (the two SDKs are 5 s of CPU to import).
    import anthropic
    import openai

    from panel.emulator.runner import EmulatorHandle

TEST_KEY = "sk-emulator-test-key-0000"
TEST_CONFIG = EmulatorConfig(latency_scale=0.0, stall_seconds=1.0)


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and the like stay on this machine
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a hostname: would need DNS, so it is not loopback


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live", action="store_true", help="run tests marked `live` against real providers"
    )


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # The xdist controller: one fork server for all the workers, and the workers are forked
        # from it too (tests/forkworker.py), with panel, the SDKs and pytest already imported.
        launcher().share()
        if config.option.tx == ["popen"] * len(config.option.tx):
            worker = shlex.join(
                [sys.executable, "-S", str(Path(__file__).with_name("forkworker.py"))]
            )
            config.option.tx = [f"popen//python={worker}"] * len(config.option.tx)
    if config.getoption("--live"):
        return  # real providers: real TLS roots
    # Offline, the suite never makes a TLS connection (`_loopback_only`), yet every SDK client
    # loads the whole system root bundle when it is built (tens of milliseconds of CPU, for
    # hundreds of clients). An empty certificate folder is read lazily and trusts nothing.
    empty = Path(tempfile.mkdtemp(prefix="panel-tests-no-roots-"))
    config.add_cleanup(lambda: empty.rmdir())
    os.environ.pop("SSL_CERT_FILE", None)
    os.environ["SSL_CERT_DIR"] = str(empty)


def pytest_unconfigure(config: pytest.Config) -> None:
    # The fork server `python -m panel` tests run in (tests/panelproc.py); in the controller,
    # after xdist has ended the workers it forked.
    launcher().close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The tests marked slow (seconds each, most of it waiting on processes, latency or deadlines)
    # are spread over the first half of each worker's share: `--dist worksteal` starts each
    # worker on an equal contiguous share of the list (then moves pending tests from the end of
    # the busiest queue to an idle worker), so every worker overlaps its slow tests with fast
    # ones, and none starts a slow one at the end of the run while the others sit idle.
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    items[:] = _slow_early(items, workers)
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="talks to a real provider: opt in with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


def _slow_early(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """`items` reordered: cut into the shares worksteal deals out first (sizes as xdist
    computes them), each share's slow tests spread over its first half."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    out: list[pytest.Item] = []
    left, taken = len(items), 0
    for k in range(workers):
        size = left // (workers - k)
        left -= size
        mine = slow[k::workers]
        half = max(len(mine), size // 2)  # so the places below are distinct
        at = {j * half // len(mine): item for j, item in enumerate(mine)}
        for place in range(size):
            if place in at:
                out.append(at.pop(place))
            elif taken < len(fast):
                out.append(fast[taken])
                taken += 1
        out += at.values()  # more slow tests than places: a narrow selection
    out += fast[taken:]
    assert sorted(map(id, out)) == sorted(map(id, items))
    return out


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("live"):
        return  # opted in with --live: these tests talk to the real APIs
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: connect to {address!r} blocked")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: connect to {address!r} blocked")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorHandle]:
    from panel.emulator.runner import run_emulator

    with run_emulator(TEST_CONFIG) as handle:
        yield handle


@pytest.fixture
def emulator(emulator_server: EmulatorHandle) -> EmulatorHandle:
    emulator_server.state.configure(TEST_CONFIG)
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    from panel.emulator.runner import run_emulator

    with ExitStack() as stack:

        def make(config: EmulatorConfig | None = None, **patch: Any) -> EmulatorHandle:
            cfg = (config or TEST_CONFIG).updated(patch) if patch else (config or TEST_CONFIG)
            return stack.enter_context(run_emulator(cfg))

        yield make


@pytest.fixture
def anthropic_client(emulator: EmulatorHandle) -> Iterator[anthropic.Anthropic]:
    import anthropic

    with anthropic.Anthropic(base_url=emulator.base_url, api_key=TEST_KEY, max_retries=0) as c:
        yield c


@pytest.fixture
def openai_client(emulator: EmulatorHandle) -> Iterator[openai.OpenAI]:
    import openai

    with openai.OpenAI(base_url=emulator.openai_base_url, api_key=TEST_KEY, max_retries=0) as c:
        yield c


def _verdict_tool(strict: bool = True, eager: bool = False) -> dict[str, Any]:
    from panel.verdict import TOOL_DESCRIPTION, TOOL_NAME, verdict_tool_schema

    tool: dict[str, Any] = {
        "name": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
        "input_schema": verdict_tool_schema(),
    }
    if strict:
        tool["strict"] = True
    if eager:
        tool["eager_input_streaming"] = True
    return tool


def build_anthropic_request(
    *,
    model: str = "claude-sonnet-5",
    system_repeat: int = 300,
    user: str = 'Review the tool as <persona id="p1" name="Ada Tester"> and call record_verdict.',
    cache: bool = True,
    strict: bool = True,
    eager: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for `messages.create/stream`: a verdict tool and a cacheable system."""
    system: dict[str, Any] = {
        "type": "text",
        "text": "You review developer tools. " * system_repeat,
    }
    if cache:
        system["cache_control"] = {"type": "ephemeral"}
    return {
        "model": model,
        "max_tokens": 4000,
        "system": [system],
        "tools": [_verdict_tool(strict, eager)],
        "messages": [{"role": "user", "content": user}],
        **extra,
    }


@pytest.fixture
def anthropic_request() -> Callable[..., dict[str, Any]]:
    """`make(**overrides)` -> kwargs for messages.create/stream (see build_anthropic_request)."""
    return build_anthropic_request
