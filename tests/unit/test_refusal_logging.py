"""Bad operator input is an info-level event, never an error (lightningd shows error as
BROKEN): issue 15, finding 7."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.runtime import Bridge, Runtime
from fedimint_gw.services.gateway import Gateway
from tests.support.fake_node import FakeNode
from tests.unit.test_runtime import FakeRequest, FakeRpcException

FID = "ab" * 32


@pytest.fixture
def bridged() -> Iterator[tuple[Bridge, Gateway, list[tuple[str, str]]]]:
    runtime = Runtime()
    runtime.start()
    logs: list[tuple[str, str]] = []
    config = build_config({"fedimint-gw-api-bind": "off"}, {"lightning-dir": "/nonexistent"})
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: logs.append((lvl, m)))
    yield Bridge(runtime, lambda m, lvl: logs.append((lvl, m)), FakeRpcException), gateway, logs
    runtime.stop()


@pytest.mark.parametrize(
    "call",
    [
        lambda gw: gw.leave(FID, "maybe"),
        lambda gw: gw.set_fees(FID, "१२३", 0),
        lambda gw: gw.set_fees(FID, 2**63, 0),
        lambda gw: gw.ecash_send(FID + "\n", 1000),
        lambda gw: gw.peer_add("02" + "ab" * 32, "http://[::1", None),
    ],
)
def test_bad_input_answers_2101_and_logs_at_info(bridged: Any, call: Any) -> None:
    bridge, gateway, logs = bridged
    req = FakeRequest()
    bridge.answer(req, lambda: call(gateway))
    kind, answer = req.wait()
    assert kind == "error" and answer.code == 2101
    assert [lvl for lvl, _ in logs] == ["info"]
