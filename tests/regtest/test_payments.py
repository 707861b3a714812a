"""Lightning payments into and out of devfed federations through the plugin in a real lightningd."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from contrib.regtest.demo import unroutable_invoice
from tests.regtest.user import User

pytestmark = pytest.mark.regtest

FEES = {"base_msat": 1000, "ppm": 1000}


def _fee(amount: int) -> int:
    return FEES["base_msat"] + amount * FEES["ppm"] // 1_000_000


def _vet(admin_url: str, api_url: str) -> None:
    req = urllib.request.Request(
        f"{admin_url}/admin/gateways",
        data=json.dumps({"url": api_url}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def _setup(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, api: str
) -> tuple[Any, Any, Any, User]:
    """payer l1 -> gateway l2 (plugin), a federation, the gateway funded with ecash, a user."""
    l1, l2 = node_factory.line_graph(
        2,
        opts=[{}, gw_opts(**{"fedimint-gw-fee-base-msat": 1000, "fedimint-gw-fee-ppm": 1000})],
        wait_for_announce=True,
        fundamount=10**7,
    )
    # Give the gateway outbound liquidity for sends: l1 pays it a plain invoice.
    inv = l2.rpc.invoice(3_000_000_000, "liquidity", "liquidity")["bolt11"]
    l1.rpc.call("xpay", {"invstring": inv})
    fed = devfeds(f"fed{api.replace(',', '')}", api)
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    if "2" in api:
        _vet(fed.admin_url, api_url)
    joined = l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    assert joined["status"] == "connected"
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(2_000_000)
    notes = treasurer.send_ecash(2_000_000)
    got = l2.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})
    assert got["received_msat"] == 2_000_000
    user = User(Path(directory) / "user.wallet", fed.invite_code)
    return l1, l2, fed, user


def settled(node: Any) -> None:
    """Wait until no payment of `node` is still moving (claims finish after the user's answer)."""
    from pyln.testing.utils import wait_for

    open_states = {"htlc_held", "funded", "paying", "claiming", "cancelling"}
    wait_for(
        lambda: not any(p["state"] in open_states for p in node.rpc.call("fedimint-payments")["payments"])
    )


def _ecash(l2: Any, fid: str) -> int:
    feds = l2.rpc.call("fedimint-balances")["federations"]
    return next(f["ecash_msat"] for f in feds if f["federation_id"] == fid)


def _resolve_confirmed(gw: Any, payment_hash: str) -> None:
    """The receive's answer was confirmed from lightningd's own records: the channel-moves
    index was read before answering (`wait channelmoves`), and the follow-up found the HTLC
    fulfilled from its channel's `listhtlcs id=` and the moves since (the record leaves
    `resolving`)."""
    db = os.path.join(gw.daemon.lightning_dir, "regtest", "fedimint-gw.sqlite3")

    def data() -> dict[str, Any]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            (raw,) = conn.execute(
                "SELECT data_json FROM payments WHERE kind = 'receive' AND payment_hash = ?", (payment_hash,)
            ).fetchone()
        return dict(json.loads(raw))

    assert "moves_from" in data()
    assert not gw.daemon.is_in_log("channel moves index unknown")  # lightningd answered `wait`
    wait_for(lambda: data().get("lightning") == "fulfilled")
    assert not gw.daemon.is_in_log("checking its HTLC")


def test_v1_receive_send_and_refund(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> None:
    l1, l2, fed, user = _setup(node_factory, gw_opts, devfeds, directory, "1")
    gw_key = user.gateway_key_v1(l2.info["id"])

    # Receive: an external payer pays the user's invoice; the route hint ends in the fake scid.
    receive = user.receive_v1(gw_key, 100_000)
    assert l1.rpc.decode(receive.bolt11)["valid"]
    paid = l1.rpc.call("xpay", {"invstring": receive.bolt11})
    assert hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest() == receive.payment_hash
    assert paid["amount_sent_msat"] >= 100_000 + _fee(100_000)
    assert user.claim(receive) == 100_000
    assert user.balance() == 100_000
    assert _ecash(l2, fed.federation_id) == 2_000_000 - 100_000
    _resolve_confirmed(l2, receive.payment_hash)

    # Send: the user pays an external invoice through the gateway.
    inv = l1.rpc.invoice(40_000, "from-fed-v1", "paid from a federation")["bolt11"]
    result = user.pay(inv, l2.rpc.call("fedimint-info")["api_url"], gw_key, _fee(40_000))
    assert "preimage" in result
    settled(l2)
    assert l1.rpc.listinvoices("from-fed-v1")["invoices"][0]["status"] == "paid"
    assert user.balance() == 100_000 - 40_000 - _fee(40_000)
    assert _ecash(l2, fed.federation_id) == 2_000_000 - 100_000 + 40_000 + _fee(40_000)

    # A send that cannot be paid: the user is refunded in full.
    unpayable = unroutable_invoice(10_000)
    before = user.balance()
    result = user.pay(unpayable, l2.rpc.call("fedimint-info")["api_url"], gw_key, _fee(10_000))
    assert "preimage" not in result and result["refunded_msat"] == 10_000 + _fee(10_000)
    assert user.balance() == before

    settled(l2)
    kinds = {p["kind"]: p for p in l2.rpc.call("fedimint-payments")["payments"]}
    assert {"receive", "send"} <= set(kinds)
    summary = l2.rpc.call("fedimint-summary")["kinds"]
    assert summary["receive"]["succeeded"] == 1 and summary["send"]["succeeded"] == 1
    assert summary["send"]["failed"] == 1


def test_v2_receive_send_and_refund(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> None:
    l1, l2, fed, user = _setup(node_factory, gw_opts, devfeds, directory, "2")
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    info = user.routing_info(api_url)
    assert info["lightning_pubkey"] == l2.info["id"]

    receive = user.receive_v2(api_url, 100_000)
    decoded = l1.rpc.decode(receive.bolt11)
    assert decoded["valid"] and decoded["payee"] == l2.info["id"]
    paid = l1.rpc.call("xpay", {"invstring": receive.bolt11})
    assert hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest() == receive.payment_hash
    net = 100_000 - _fee(100_000)
    assert user.claim(receive) == net
    assert _ecash(l2, fed.federation_id) == 2_000_000 - net

    inv = l1.rpc.invoice(40_000, "from-fed-v2", "paid from a v2 federation")["bolt11"]
    result = user.pay(inv, api_url, info["module_pubkey"], _fee(40_000))
    assert "preimage" in result
    assert user.balance() == net - 40_000 - _fee(40_000)

    before = user.balance()
    result = user.pay(unroutable_invoice(10_000), api_url, info["module_pubkey"], _fee(10_000))
    assert "preimage" not in result and user.balance() == before


def test_http_api_refuses_garbage(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    api_url = l1.rpc.call("fedimint-info")["api_url"]
    for path, body in [("/v1/pay_invoice", b"not json"), ("/v1/routing_info", b'{"federation_id": 5}')]:
        req = urllib.request.Request(
            api_url + path, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        answer = json.loads(err.value.read())
        assert (
            err.value.code == 400
            and answer["error"]["code"] == 2101
            and "Traceback" not in json.dumps(answer)
        )
    # A form (what a web page can post without asking) is refused before it is read.
    form = urllib.request.Request(api_url + "/v1/routing_info", data=b"federation_id=5", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(form, timeout=10)
    assert err.value.code == 415 and json.loads(err.value.read())["error"]["code"] == 2161
    with pytest.raises(RpcError):
        l1.rpc.call("fedimint-ecash-receive", {"federation_id": "00" * 32, "notes": "x"})
