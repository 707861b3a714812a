"""pyln-testing fixtures for tests that run the plugin inside a real lightningd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# A lightningd built without Rust has no cln-grpc plugin; pyln-testing must not ask for it.
os.environ.setdefault("RUST", "0")
os.environ.setdefault("VALGRIND", "0")

from pyln.testing.fixtures import *

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugin" / "fedimint-gw"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    # pyln-testing keeps a failed test's node logs only when it can see the report.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session", autouse=True)
def _one_bitcoind_proxy_built_at_a_time() -> Any:
    """pyln-testing starts nodes in threads, each building a Flask app for its bitcoind proxy;
    Flask compiles its routes with `ast.parse`, and CPython 3.11.7 keeps the AST converter's
    recursion depth per interpreter, not per thread: two at once fail now and then with
    "SystemError: AST constructor recursion depth mismatch" (seen in CI). One at a time."""
    import threading

    from pyln.testing.btcproxy import BitcoinRpcProxy

    lock = threading.Lock()
    build = BitcoinRpcProxy.__init__

    def serialised(self: Any, *args: Any, **kwargs: Any) -> None:
        with lock:
            build(self, *args, **kwargs)

    BitcoinRpcProxy.__init__ = serialised  # type: ignore[method-assign]
    yield
    BitcoinRpcProxy.__init__ = build  # type: ignore[method-assign]


@pytest.fixture
def plugin_path() -> str:
    return str(PLUGIN)


@pytest.fixture
def gw_opts(plugin_path: str) -> Any:
    """Options for a node with the gateway plugin; each node gets its own API port."""
    from ephemeral_port_reserve import reserve

    def make(important: bool = False, **extra: Any) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "important-plugin" if important else "plugin": plugin_path,
            "fedimint-gw-api-bind": f"127.0.0.1:{reserve()}",
            "xpay-slow-mode": "true",  # the gateway refuses to start without it
        }
        opts.update(extra)
        return opts

    return make


@pytest.fixture
def devfeds(bitcoind: Any, directory: str) -> Any:
    """Start devfed federations (processes) following this test's bitcoind; stopped at teardown."""
    from tests.regtest.devfed_proc import DevfedProcess, start_devfed

    started: list[DevfedProcess] = []
    rpc = f"http://rpcuser:rpcpass@127.0.0.1:{bitcoind.rpcport}"

    def start(name: str, api: str) -> DevfedProcess:
        fed = start_devfed(Path(directory) / f"devfed-{name}", name, api, rpc)
        started.append(fed)
        return fed

    yield start
    for fed in started:
        fed.stop()


@pytest.fixture
def fedimint_devfed(directory: str) -> Any:
    """`devfed run --api fedimint --fedimint-ln` as a process; its status file's contents."""
    from tests.regtest.devfed_proc import start_fedimint_devfed

    fed = start_fedimint_devfed(Path(directory) / "devfed-fm", "regtest-fm")
    yield fed.status
    fed.stop()


@pytest.fixture
def lnv2_devfed(directory: str) -> Any:
    """`devfed run --api fedimint --fedimint-lnv2` as a process; its status file's contents."""
    from tests.regtest.devfed_proc import start_fedimint_lnv2_devfed

    fed = start_fedimint_lnv2_devfed(Path(directory) / "devfed-lnv2", "regtest-lnv2")
    yield fed.status
    fed.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A red line when an official client's end-to-end test (test_fedimint_ln.py,
    test_fedimint_cross.py) was skipped."""
    skipped = terminalreporter.stats.get("skipped", [])
    files = ("test_fedimint_ln.py", "test_fedimint_cross.py")
    if any(f in str(getattr(r, "nodeid", "")) for r in skipped for f in files):
        terminalreporter.write_sep(
            "!",
            "the official Fedimint client's e2e through lightningd was SKIPPED (see the skip reason)",
            red=True,
            bold=True,
        )
