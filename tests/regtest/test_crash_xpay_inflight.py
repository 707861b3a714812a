"""The plugin killed while xpay is in flight for a send, in a real lightningd.

No persisted step separates a send's xpay call from its answer, so the crash matrix
(test_crash_matrix_payments.py) cannot stop the plugin there. Here the payee's test plugin
(plugins/htlc_holder.py) holds the send's HTLC in its `htlc_accepted` hook; once the HTLC is
there, the test kills the gateway's plugin by pid (SIGKILL; `important-plugin`, so lightningd
exits with it), starts lightningd again and checks that, while the part is still in flight, the
gateway neither pays a second time nor refunds. Then the payee settles the HTLC (the send must
end `succeeded` with exactly an uncrashed send's figures) or fails it (`refunded`, the user gets
its ecash back, nothing paid). The figures are checked by the matrix's `_crash_send`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyln.testing.utils import wait_for

from tests.regtest.crashing import kill_plugin
from tests.regtest.test_crash_matrix_payments import AMOUNT, End, Kill, Net, _crash_send, _net

pytestmark = pytest.mark.regtest
T = TypeVar("T")

HOLDER = Path(__file__).resolve().parent / "plugins" / "htlc_holder.py"
HELD_AFTER_RESTART = 6.0  # s the HTLC stays held with the gateway back: a few of its status polls


def _send_records(net: Net, payment_hash: str) -> list[dict[str, Any]]:
    return [p for p in net.l2.rpc.call("fedimint-payments")["payments"] if p["payment_hash"] == payment_hash]


def _reconnected(net: Net) -> bool:
    chans = net.l1.rpc.listpeerchannels()["channels"]
    return all(c["peer_connected"] and c["state"] == "CHANNELD_NORMAL" for c in chans)


def _kill_in_flight(net: Net, action: str) -> Kill[Any]:
    """Hold the send's HTLC at the payee, kill the plugin once it is there, start lightningd
    again, check that the gateway waits, then let the payee `action` (resolve, fail) it."""

    def kill(payment_hash: str, trigger: Callable[[], T]) -> T:
        net.l1.rpc.call("hold-htlc", {"payment_hash": payment_hash})
        started = trigger()
        wait_for(lambda: bool(net.l1.rpc.call("held-htlcs")["held"].get(payment_hash)))
        kill_plugin(net.l2)
        net.l1.rpc.connect(net.l2.info["id"], "localhost", net.l2.port)
        wait_for(lambda: _reconnected(net), timeout=60)
        time.sleep(HELD_AFTER_RESTART)
        # The part is in flight: the send waits (no second payment, no refund).
        records = _send_records(net, payment_hash)
        assert [r["state"] for r in records] == ["paying"], records
        parts = net.l2.rpc.listsendpays(payment_hash=payment_hash)["payments"]
        assert {p["status"] for p in parts} == {"pending"}, parts
        # xpay not called again: the resume's "paying" branch never ran. (Forced to run, it made
        # no second attempt in lightningd v26.06.6 while this part was in flight: only the
        # gateway's log tells.)
        assert not net.l2.daemon.is_in_log("sent nothing; paying")
        assert net.l1.rpc.call("release-htlc", {"payment_hash": payment_hash, "action": action})["released"]
        return started

    return kill


def _one_attempt(net: Net, rec: dict[str, Any], status: str) -> None:
    """lightningd shows the parts of one xpay attempt, each ended in `status`."""
    parts = net.l2.rpc.listsendpays(payment_hash=rec["payment_hash"])["payments"]
    assert len({p["groupid"] for p in parts}) == 1, parts
    assert {p["status"] for p in parts} == {status}, parts
    if status == "complete":
        assert sum(int(p["amount_msat"]) for p in parts) == AMOUNT, parts


def test_crash_with_xpay_in_flight(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any
) -> None:
    # One API version: the Lightning side measured here is the same for v1 and v2 (their claim
    # and refund after a crash are the matrix's).
    api = "2"
    net = _net(node_factory, gw_opts, devfeds, directory, api)
    net.l1.rpc.plugin_start(str(HOLDER))
    net.user.faucet(1_000_000)

    label = f"inflight-settled-{api}"
    rec = _crash_send(
        net, executor, "xpay in flight, settled", End.PAID, label, kill=_kill_in_flight(net, "resolve")
    )
    _one_attempt(net, rec, "complete")
    invoice = net.l1.rpc.listinvoices(label)["invoices"][0]
    assert int(invoice["amount_received_msat"]) == AMOUNT, invoice  # paid once

    rec = _crash_send(
        net,
        executor,
        "xpay in flight, failed",
        End.REFUNDED,
        f"inflight-failed-{api}",
        payable=True,
        kill=_kill_in_flight(net, "fail"),
    )
    _one_attempt(net, rec, "failed")
