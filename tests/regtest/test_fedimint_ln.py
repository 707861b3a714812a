"""The official Fedimint client (v0.7-era WASM build, under Node) paying and being paid through
the plugin in a real lightningd, with a devfed federation speaking Fedimint's protocol (ln+mint).

l1 (payer) -- l2 (gateway: the plugin) -- l3 (payee). The client joins the federation, finds our
gateway in its list, (a) receives an LNv1 invoice l1 pays with xpay, (b) pays l3's invoice
through l2, (c) has a payment nobody can route refunded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.official_client.driver import OfficialClient, missing_requirements
from contrib.regtest.demo import unroutable_invoice
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code

pytestmark = pytest.mark.regtest
T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a thread, for the async official client inside pyln-testing's sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def official() -> Iterator[tuple[LoopThread, OfficialClient]]:
    missing = missing_requirements()
    if missing:
        pytest.skip(
            f"OFFICIAL CLIENT MISSING, Fedimint e2e NOT RUN: {'; '.join(missing)} (make interop-deps)"
        )
    runner = LoopThread()
    client = runner.run(OfficialClient.start())
    try:
        yield runner, client
    finally:
        runner.run(client.close())
        runner.stop()


async def _faucet_oob(invite: str, admin_url: str, amount: int) -> str:
    async with aiohttp.ClientSession() as session:
        config = await bootstrap_client_config(parse_invite_code(invite), session)
        return (await faucet_notes(session, admin_url, config, amount)).oob.encode()


async def _states(client: OfficialClient, method: str, operation_id: str, done: set[str]) -> list[Any]:
    states = []
    for state in await client.rpc(
        "ln", method, {"operation_id": operation_id}, client_name="user", timeout=120
    ):
        states.append(state)
        key = state if isinstance(state, str) else next(iter(state), "")
        if key in done:
            break
    return states


def _balance(runner: LoopThread, client: OfficialClient) -> int:
    value = runner.run(client.rpc_one("", "get_balance", {}, client_name="user"))
    assert isinstance(value, int)
    return value


def _gateway_info(runner: LoopThread, client: OfficialClient) -> dict[str, Any]:
    runner.run(client.rpc("ln", "update_gateway_cache", client_name="user"))
    [listed] = runner.run(client.rpc_one("ln", "list_gateways", client_name="user"))
    info = listed["info"]
    assert isinstance(info, dict)
    return info


def test_official_client_receives_pays_and_is_refunded_through_lightningd(
    official: tuple[LoopThread, OfficialClient],
    node_factory: Any,
    gw_opts: Any,
    fedimint_devfed: dict[str, Any],
) -> None:
    runner, client = official
    fees0 = {"fedimint-gw-fee-base-msat": 0, "fedimint-gw-fee-ppm": 0}
    l1, l2, l3 = node_factory.line_graph(
        3, opts=[{}, gw_opts(**fees0), {}], wait_for_announce=True, fundamount=10**7
    )
    invite, admin = fedimint_devfed["invite_code"], fedimint_devfed["admin_url"]
    joined = l2.rpc.call("fedimint-connect", {"invite_code": invite})
    assert joined["status"] == "connected" and joined["adapter"] == "fedimint-lnv1"
    fid = joined["federation_id"]
    got = l2.rpc.call(
        "fedimint-ecash-receive",
        {"federation_id": fid, "notes": runner.run(_faucet_oob(invite, admin, 300_000))},
    )
    assert got["received_msat"] == 300_000

    runner.run(client.join("user", invite, timeout=60))
    info = _gateway_info(runner, client)
    assert info["node_pub_key"] == l2.info["id"] and info["gateway_id"] == l2.info["id"]
    assert info["api"].rstrip("/") == l2.rpc.call("fedimint-info")["api_url"].rstrip("/")

    # (a) receive: the client's invoice routes through l2's scid; l1 pays it with xpay. The
    # client's LNv1 invoices carry no gateway fee (route hint 0/0, offer = invoice amount), so
    # the gateway serves this federation at 0/0 here: the client gets exactly the invoice amount.
    created = runner.run(
        client.rpc_one(
            "ln",
            "create_bolt11_invoice",
            {
                "amount": 50_000,
                "description": "regtest receive",
                "expiry_time": None,
                "extra_meta": {},
                "gateway": info,
            },
            client_name="user",
        )
    )
    paid = l1.rpc.call("xpay", {"invstring": created["invoice"]})
    assert paid["amount_msat"] == 50_000
    states = runner.run(
        _states(client, "subscribe_ln_receive", created["operation_id"], {"claimed", "canceled"})
    )
    assert states[-1] == "claimed", states
    assert _balance(runner, client) == 50_000

    # (b) send: l3's invoice through the gateway, now charging 1000 msat + 1000 ppm.
    l2.rpc.call("fedimint-setfees", {"federation_id": fid, "base_msat": 1000, "ppm": 1000})
    info = _gateway_info(runner, client)
    assert info["fees"] == {"base_msat": 1000, "proportional_millionths": 1000}
    invoice = l3.rpc.invoice(20_000, "from-fedimint", "paid by the official client")["bolt11"]
    answer = runner.run(
        client.rpc_one(
            "ln",
            "pay_bolt11_invoice",
            {"maybe_gateway": info, "invoice": invoice, "extra_meta": {}},
            client_name="user",
        )
    )
    states = runner.run(
        _states(
            client, "subscribe_ln_pay", answer["payment_type"]["lightning"], {"success", "refunded", "failed"}
        )
    )
    assert "success" in states[-1], states
    assert l3.rpc.listinvoices("from-fedimint")["invoices"][0]["status"] == "paid"
    assert answer["fee"] == 1000 + 20
    assert _balance(runner, client) == 50_000 - 20_000 - 1020

    # (c) nobody can route this invoice: the gateway cancels, the client is refunded.
    before = _balance(runner, client)
    answer = runner.run(
        client.rpc_one(
            "ln",
            "pay_bolt11_invoice",
            {"maybe_gateway": info, "invoice": unroutable_invoice(5_000), "extra_meta": {}},
            client_name="user",
        )
    )
    states = runner.run(
        _states(
            client, "subscribe_ln_pay", answer["payment_type"]["lightning"], {"success", "refunded", "failed"}
        )
    )
    assert "refunded" in states[-1], states
    assert _balance(runner, client) == before
