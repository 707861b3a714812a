"""The dashboard's HTTP face, without a browser: token, read-only, headers, health, lightningd down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pyln.client import RpcError

from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.errors import LightningFailure
from fedimint_gw.lightning.node import NodeInfo
from fedimint_gw.services.gateway import Gateway
from tests.support.fake_node import FakeNode

TOKEN = "s3cret-dashboard-token-0123"


class DeadNode(FakeNode):
    """A node whose lightningd stops answering the gateway's RPC calls once `dead` is set."""

    dead: Exception | None = None

    async def info(self) -> NodeInfo:
        if self.dead is not None:
            raise self.dead
        return await super().info()


async def _gateway(tmp_path: Path, node: FakeNode, token: str) -> Gateway:
    config = build_config(
        {
            "fedimint-gw-db": str(tmp_path / "gw.sqlite3"),
            "fedimint-gw-api-bind": "off",
            "fedimint-gw-dashboard-bind": "127.0.0.1:0",
            "fedimint-gw-dashboard-token": token,
        },
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, node, SystemClock(), lambda m, lvl: None)
    await gateway.start()
    return gateway


@pytest.fixture
async def with_token(tmp_path: Path) -> AsyncIterator[str]:
    gateway = await _gateway(tmp_path, FakeNode(), TOKEN)
    assert gateway.dashboard_server is not None
    yield f"http://127.0.0.1:{gateway.dashboard_server.port}"
    await gateway.stop()


async def test_a_token_is_required_when_configured(with_token: str) -> None:
    async with aiohttp.ClientSession() as s:
        for url, headers in [
            (f"{with_token}/", {}),
            (f"{with_token}/?token=wrong-token-wrong-token", {}),
            (f"{with_token}/health", {"Authorization": "Bearer nope"}),
        ]:
            async with s.get(url, headers=headers) as r:
                assert r.status == 401 and "token" in await r.text()
        async with s.get(f"{with_token}/?token={TOKEN}") as r:
            assert r.status == 200 and "<h1>fedimint-gw" in await r.text()
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["Cache-Control"] == "no-store"
        async with s.get(f"{with_token}/health", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200 and (await r.json())["state"] == "ok"


async def test_the_dashboard_is_read_only(with_token: str) -> None:
    async with aiohttp.ClientSession() as s:
        for method in ("POST", "PUT", "DELETE"):
            async with s.request(method, f"{with_token}/?token={TOKEN}", data=b"x") as r:
                assert r.status == 405


@pytest.mark.parametrize(
    "failure",
    [
        LightningFailure("lightning-rpc: connection refused"),
        ConnectionRefusedError(111, "Connection refused"),
        RpcError("getinfo", {}, {"code": -32601, "message": "lightningd is shutting down"}),
    ],
    ids=["gateway-error", "socket", "pyln-rpc-error"],
)
async def test_lightningd_down_still_renders_and_says_so(tmp_path: Path, failure: Exception) -> None:
    node = DeadNode()
    gateway = await _gateway(tmp_path, node, "")
    node.dead = failure
    assert gateway.dashboard_server is not None
    url = f"http://127.0.0.1:{gateway.dashboard_server.port}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/health") as r:
                body = await r.json()
                assert r.status == 503 and body["state"] == "down"
                assert any("lightningd does not answer" in p for p in body["problems"])
            async with s.get(f"{url}/") as r:
                assert r.status == 200 and 'data-state="down"' in await r.text()
    finally:
        await gateway.stop()


async def test_no_dashboard_unless_asked(tmp_path: Path) -> None:
    config = build_config(
        {"fedimint-gw-db": str(tmp_path / "gw.sqlite3"), "fedimint-gw-api-bind": "off"},
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: None)
    await gateway.start()
    try:
        assert gateway.dashboard_server is None
    finally:
        await gateway.stop()


async def test_a_busy_dashboard_port_does_not_stop_the_gateway(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    logs: list[tuple[str, str]] = []
    config = build_config(
        {
            "fedimint-gw-db": str(tmp_path / "gw.sqlite3"),
            "fedimint-gw-api-bind": "off",
            "fedimint-gw-dashboard-bind": f"127.0.0.1:{taken.getsockname()[1]}",
        },
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: logs.append((lvl, m)))
    try:
        await gateway.start()
        assert gateway.dashboard_server is None
        assert any(lvl == "warn" and "dashboard cannot listen" in m for lvl, m in logs)
        assert (await gateway.info())["node_id"]  # the gateway itself runs
    finally:
        await gateway.stop()
        taken.close()


async def test_a_restored_database_says_so_on_the_dashboard(tmp_path: Path) -> None:
    from fedimint_gw.store.backup import write_backup

    (tmp_path / "old").mkdir()
    gateway = await _gateway(tmp_path / "old", FakeNode(), "")
    await write_backup(gateway.db, str(tmp_path / "backup.sqlite3"), now=1_700_000_000)
    await gateway.stop()
    (tmp_path / "new").mkdir()
    (tmp_path / "backup.sqlite3").rename(tmp_path / "new" / "gw.sqlite3")  # the restore
    gateway = await _gateway(tmp_path / "new", FakeNode(), "")
    assert gateway.restored_from == 1_700_000_000 and gateway.dashboard_server is not None
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{gateway.dashboard_server.port}/") as r,
        ):
            page = await r.text()
        assert '<p id="restored">Restored from a backup taken 2023-11-14 22:13:20Z' in page
    finally:
        await gateway.stop()
