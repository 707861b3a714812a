"""A gateway with its dashboard on, and a headless Chromium driven by Selenium.

Selenium is pointed at the system's `chromium` and `chromedriver` (Debian packages) and runs
offline: Selenium Manager is never asked to download anything. The browser is blocking, so the
tests call it through `asyncio.to_thread` while the gateway serves on the test's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.services.gateway import Gateway
from tests.e2e.conftest import Env
from tests.support.browser import headless_chromium
from tests.support.fake_node import FakeNode


@pytest.fixture
async def dash_env(tmp_path: Path) -> AsyncIterator[Env]:
    """The e2e environment (devfed federations, fake node), with the dashboard on a free port."""
    from ephemeral_port_reserve import reserve

    port = reserve()
    logs: list[tuple[str, str]] = []
    config = build_config(
        {
            "fedimint-gw-db": str(tmp_path / "gw.sqlite3"),
            "fedimint-gw-api-bind": f"127.0.0.1:{port}",
            "fedimint-gw-dashboard-bind": "127.0.0.1:0",
        },
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    node = FakeNode()
    gateway = Gateway(config, node, SystemClock(), lambda m, lvl: logs.append((lvl, m)))
    await gateway.start()
    async with aiohttp.ClientSession() as session:
        env = Env(gateway, node, session, tmp_path, f"http://127.0.0.1:{port}", logs, [])
        try:
            yield env
        finally:
            await env.gateway.stop()
            for fed in env.federations:
                await fed.stop()


def dashboard_url(env: Env) -> str:
    server = env.gateway.dashboard_server
    assert server is not None, "the dashboard did not start"
    return f"http://127.0.0.1:{server.port}/"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's), 1280 px wide."""
    with headless_chromium() as driver:
        yield driver
