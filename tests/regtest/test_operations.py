"""Monitoring and controls through the plugin in a real lightningd: metrics over HTTP, health,
custom notifications received by a subscribing plugin, fedimint-setlimits, fedimint-export."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from ephemeral_port_reserve import reserve
from prometheus_client.parser import text_string_to_metric_families
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from contrib.regtest.demo import unroutable_invoice
from tests.regtest.test_payments import _ecash, _fee, settled
from tests.regtest.user import User

pytestmark = pytest.mark.regtest

LISTENER = Path(__file__).resolve().parent / "plugins" / "fedimint_listener.py"


def _setup(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> tuple[Any, Any, Any, User, str]:
    """payer l1 -> gateway l2 (plugin, metrics listener, subscribing plugin), a v1 federation."""
    metrics = f"127.0.0.1:{reserve()}"
    opts = gw_opts(
        **{
            "fedimint-gw-fee-base-msat": 1000,
            "fedimint-gw-fee-ppm": 1000,
            "fedimint-gw-metrics-bind": metrics,
        }
    )
    opts["plugin"] = [opts["plugin"], str(LISTENER)]
    l1, l2 = node_factory.line_graph(2, opts=[{}, opts], wait_for_announce=True, fundamount=10**7)
    inv = l2.rpc.invoice(3_000_000_000, "liquidity", "liquidity")["bolt11"]
    l1.rpc.call("xpay", {"invstring": inv})
    fed = devfeds("fedops", "1")
    joined = l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    assert joined["status"] == "connected"
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(2_000_000)
    notes = treasurer.send_ecash(2_000_000)
    l2.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})
    user = User(Path(directory) / "user.wallet", fed.invite_code)
    return l1, l2, fed, user, f"http://{metrics}"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(f"{base}/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def _heard(node: Any, topic: str) -> list[dict[str, Any]]:
    """Payloads the subscribing plugin received on `topic`. lightningd v26.06 hands subscribers
    the emitted params (the fields, plus a copy under the topic's name) and `origin`."""
    out = []
    for h in node.rpc.call("fedimint-heard")["heard"]:
        if h["topic"] != topic:
            continue
        body = h.get("payload", h)
        out.append(body.get(topic, body) if isinstance(body, dict) else body)
    return out


def _offline(admin_url: str, peer: int) -> None:
    req = urllib.request.Request(
        f"{admin_url}/admin/guardians/{peer}/fault",
        data=json.dumps({"mode": "offline"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def test_metrics_export_notifications_and_health(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str
) -> None:
    l1, l2, fed, user, base = _setup(node_factory, gw_opts, devfeds, directory)
    fid = fed.federation_id
    gw_key = user.gateway_key_v1(l2.info["id"])
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    status, body = _get(f"{base}/health")
    assert status == 200 and json.loads(body)["ready"] is True

    receive = user.receive_v1(gw_key, 100_000)
    l1.rpc.call("xpay", {"invstring": receive.bolt11})
    assert user.claim(receive) == 100_000
    inv = l1.rpc.invoice(40_000, "ops-send", "ops send")["bolt11"]
    assert "preimage" in user.pay(inv, api_url, gw_key, _fee(40_000))
    refused = user.pay(unroutable_invoice(10_000), api_url, gw_key, _fee(10_000))
    assert "preimage" not in refused
    settled(l2)

    m = _metrics(base)

    def v(metric: str, /, **labels: str) -> float:
        return m[(metric, tuple(sorted(labels.items())))]

    assert v("fedimint_gw_payments_total", kind="receive", state="succeeded", federation=fid) == 1
    assert v("fedimint_gw_payments_total", kind="send", state="succeeded", federation=fid) == 1
    assert v("fedimint_gw_payments_total", kind="send", state="refunded", federation=fid) == 1
    assert v("fedimint_gw_payment_amount_msat_total", kind="receive", federation=fid) == 100_000
    assert v("fedimint_gw_payment_amount_msat_total", kind="send", federation=fid) == 40_000
    assert v("fedimint_gw_payment_fees_msat_total", kind="send", federation=fid) == _fee(40_000)
    assert v("fedimint_gw_payment_fees_msat_total", kind="receive", federation=fid) == _fee(100_000)
    ecash = 2_000_000 - 100_000 + 40_000 + _fee(40_000)
    assert v("fedimint_gw_ecash_msat", federation=fid, name="fedops") == ecash == _ecash(l2, fid)
    assert v("fedimint_gw_htlcs_held") == 0
    assert v("fedimint_gw_federation_up", federation=fid) == 1

    # The export is the payments, its sums the summary's.
    export = l2.rpc.call("fedimint-export", {"format": "json"})
    listed = l2.rpc.call("fedimint-payments")["payments"]
    assert sorted(r["payment_id"] for r in export["payments"]) == sorted(p["payment_id"] for p in listed)
    summary = l2.rpc.call("fedimint-summary")["kinds"]
    for kind, t in export["totals"].items():
        assert t["volume_msat"] == summary[kind]["volume_msat"]
        assert t["fees_earned_msat"] == summary[kind]["fees_earned_msat"]
    # The rows line up with CLN's bookkeeper on the payment hash (docs: "Accounting export").
    events = l2.rpc.call("bkpr-listaccountevents")["events"]
    lightning = {e["payment_id"]: e for e in events if e.get("tag") == "invoice" and e.get("payment_id")}
    for row in export["payments"]:
        event = lightning.get(row["payment_hash"])
        if row["state"] != "succeeded":
            assert event is None
        elif row["kind"] == "receive":
            assert event is not None and event["credit_msat"] == row["amount_msat"] + row["fee_msat"]
        else:  # a send over a direct channel: no routing fee
            assert event is not None and event["debit_msat"] == row["amount_msat"]
    csv_text = l2.rpc.call("fedimint-export", {"format": "csv"})["csv"]
    assert len(csv_text.strip().splitlines()) == 1 + len(listed)

    # The subscribing plugin heard every finished payment.
    wait_for(lambda: len(_heard(l2, "fedimint_payment_finished")) == 3)
    finished = sorted((e["kind"], e["state"]) for e in _heard(l2, "fedimint_payment_finished"))
    assert finished == [("receive", "succeeded"), ("send", "refunded"), ("send", "succeeded")]

    # A limit crossed by the operator's own change is reported at once.
    l2.rpc.call("fedimint-setlimits", {"federation_id": fid, "low_water_msat": ecash + 1})
    wait_for(lambda: len(_heard(l2, "fedimint_limit_crossed")) == 1)
    assert _heard(l2, "fedimint_limit_crossed")[0]["limit"] == "low_water"

    # Two of four guardians down: unready, and a status notification.
    _offline(fed.admin_url, 0)
    _offline(fed.admin_url, 1)
    status, body = _get(f"{base}/health")
    report = json.loads(body)
    assert status == 503 and report["ready"] is False and report["checks"]["federations"][0]["ok"] is False
    wait_for(lambda: any(e["up"] is False for e in _heard(l2, "fedimint_federation_status")))


def test_drain_and_cap(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str) -> None:
    l1, l2, fed, user, _base = _setup(node_factory, gw_opts, devfeds, directory)
    fid = fed.federation_id
    gw_key = user.gateway_key_v1(l2.info["id"])
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    user.faucet(200_000)

    # Drain: receives refused before any funding, sends still allowed.
    l2.rpc.call("fedimint-setlimits", {"federation_id": fid, "drain": True})
    info = l2.rpc.call("fedimint-info")["federations"][0]
    assert info["controls"]["mode"] == "drain"
    receive = user.receive_v1(gw_key, 50_000)
    with pytest.raises(RpcError):
        l1.rpc.call("xpay", {"invstring": receive.bolt11, "retry_for": 5})
    assert _ecash(l2, fid) == 2_000_000
    refused = [p for p in l2.rpc.call("fedimint-payments")["payments"] if p["kind"] == "receive"]
    assert refused and all(p["state"] == "failed" and "draining" in p["error"] for p in refused)
    inv = l1.rpc.invoice(30_000, "drain-send", "drain send")["bolt11"]
    assert "preimage" in user.pay(inv, api_url, gw_key, _fee(30_000))
    settled(l2)
    held = _ecash(l2, fid)
    assert held == 2_000_000 + 30_000 + _fee(30_000)

    # Cap: a send that would take the gateway's ecash there past it is refused and refunded.
    l2.rpc.call("fedimint-setlimits", {"federation_id": fid, "drain": False, "max_ecash_msat": held + 1000})
    inv = l1.rpc.invoice(20_000, "cap-send", "over the cap")["bolt11"]
    before = user.balance()
    result = user.pay(inv, api_url, gw_key, _fee(20_000))
    assert "preimage" not in result and user.balance() == before
    settled(l2)
    assert l1.rpc.listinvoices("cap-send")["invoices"][0]["status"] == "unpaid"
    assert _ecash(l2, fid) == held

    # Every bad value refused, nothing changed.
    for bad in ({"max_ecash_msat": "-1"}, {"receives": "perhaps"}, {"low_water_msat": held * 2}):
        with pytest.raises(RpcError) as err:
            l2.rpc.call("fedimint-setlimits", {"federation_id": fid, **bad})
        assert err.value.error["code"] == 2101
    assert l2.rpc.call("fedimint-info")["federations"][0]["controls"]["max_ecash_msat"] == held + 1000
