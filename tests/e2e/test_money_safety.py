"""Issue 14 (money safety): each test here failed on the code before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.errors import InvalidInput
from fedimint_gw.services.gateway import Gateway
from tests.support.fake_node import FakeNode


async def test_the_gateway_refuses_to_start_unless_xpay_waits_for_every_part(tmp_path: Path) -> None:
    config = build_config(
        {"fedimint-gw-db": str(tmp_path / "gw.sqlite3"), "fedimint-gw-api-bind": "off"},
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(slow_mode=False), SystemClock(), lambda m, lvl: None)
    with pytest.raises(InvalidInput, match="xpay-slow-mode=true"):
        await gateway.start()
    await gateway.stop()
    assert not (tmp_path / "gw.sqlite3").exists()  # refused before anything was opened
