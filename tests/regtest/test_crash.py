"""HTLCs held by the plugin survive a lightningd restart and a plugin crash (important-plugin)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def _fault(admin_url: str, peer: int, mode: str, **params: Any) -> None:
    req = urllib.request.Request(
        f"{admin_url}/admin/guardians/{peer}/fault",
        data=json.dumps({"mode": mode, **params}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def _held(l2: Any) -> bool:
    payments = l2.rpc.call("fedimint-payments")["payments"]
    return any(p["kind"] == "receive" and p["state"] == "htlc_held" for p in payments)


def _setup(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, important: bool, fault: str = "dropping"
) -> Any:
    opts = gw_opts(important=important, may_reconnect=True)
    if important:
        opts.update(may_fail=True, broken_log=r"fedimint-gw|plugin-fedimint|important plugin|Plugin")
    l1, l2 = node_factory.line_graph(2, opts=[{"may_reconnect": True}, opts], wait_for_announce=True)
    fed = devfeds("held", "1")
    l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(300_000)
    l2.rpc.call(
        "fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": treasurer.send_ecash(300_000)}
    )
    user = User(Path(directory) / "user.wallet", fed.invite_code)
    receive = user.receive_v1(user.gateway_key_v1(l2.info["id"]), 50_000)
    if fault == "dropping":
        # Every guardian loses submissions (reads still agree): the funding never gets an answer
        # and never lands, so the gateway holds the HTLC. (With guardians offline the gateway could
        # not read the offer on a threshold of guardians, and would fail the HTLC before funding.)
        for peer in range(4):
            _fault(fed.admin_url, peer, "dropping", discard=True)
    else:
        # Two of four guardians give bad shares: the federation cannot finish the funding's notes
        # and decryption, so the gateway holds the HTLC.
        for peer in (0, 1):
            _fault(fed.admin_url, peer, fault)
    return l1, l2, fed, user, receive


def _finish(l1: Any, l2: Any, fed: Any, user: User, receive: Any, pay: Any) -> None:
    for peer in range(4):
        _fault(fed.admin_url, peer, "honest")
    paid = pay.result(timeout=180)
    assert paid["payment_preimage"]
    assert user.claim(receive) == 50_000
    balance = l2.rpc.call("fedimint-balances")["federations"][0]["ecash_msat"]
    assert balance == 300_000 - 50_000  # funded exactly once, despite the interruption
    states = [p["state"] for p in l2.rpc.call("fedimint-payments")["payments"] if p["kind"] == "receive"]
    assert states == ["succeeded"]


def test_lightningd_restart_while_an_htlc_is_held(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any
) -> None:
    l1, l2, fed, user, receive = _setup(node_factory, gw_opts, devfeds, directory, important=False)
    pay = executor.submit(l1.rpc.call, "xpay", {"invstring": receive.bolt11})
    wait_for(lambda: _held(l2))
    l2.restart()
    wait_for(lambda: l2.daemon.is_in_log("Replaying old unprocessed HTLC"))
    _finish(l1, l2, fed, user, receive, pay)
    # Issue 14 finding 12: stop() closed the HTTP session and the database under the running
    # flow, and the hook answered `fail` during the clean shutdown.
    assert not l2.daemon.is_in_log(r"Session is closed")
    assert not l2.daemon.is_in_log(r"hook handler failed")
    assert l2.daemon.is_in_log(r"hook left unanswered")


def test_lightningd_restart_while_a_submitted_funding_waits_for_its_guardians(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any
) -> None:
    """Issue 14 findings 4 and 12 in lightningd: the funding is submitted, and refused while two
    byzantine guardians' evaluations leave too few valid ones; the gateway keeps retrying. A
    clean restart must not fail the HTLC: it is replayed, and resolved once the guardians are
    honest again. (A contract funded but not yet decrypted across a restart is tested in e2e.)"""
    l1, l2, fed, user, receive = _setup(node_factory, gw_opts, devfeds, directory, False, "byzantine")
    pay = executor.submit(l1.rpc.call, "xpay", {"invstring": receive.bolt11})
    wait_for(lambda: _held(l2))
    wait_for(lambda: l2.daemon.is_in_log(r"receive recv:.*(retrying|valid)"))
    l2.restart()
    wait_for(lambda: l2.daemon.is_in_log("Replaying old unprocessed HTLC"))
    _finish(l1, l2, fed, user, receive, pay)
    assert not l2.daemon.is_in_log(r"Session is closed")
    assert not l2.daemon.is_in_log(r"hook handler failed")


def test_plugin_killed_while_holding_an_htlc_loses_nothing(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any
) -> None:
    """Seen on lightningd v26.06.6: when an important plugin dies, lightningd first answers its
    pending htlc_accepted calls as `continue` (the HTLC to the fake scid fails back), then
    exits. The held HTLC is therefore NOT replayed. The gateway must notice on restart and
    settle its record without losing money."""
    l1, l2, fed, user, receive = _setup(node_factory, gw_opts, devfeds, directory, important=True)
    pay = executor.submit(l1.rpc.call, "xpay", {"invstring": receive.bolt11, "retry_for": 1})
    wait_for(lambda: _held(l2))
    lightningd = psutil.Process(l2.daemon.proc.pid)
    plugin = next(
        p for p in lightningd.children(recursive=True) if any("fedimint_gateway.py" in a for a in p.cmdline())
    )
    plugin.kill()
    l2.daemon.proc.wait(timeout=60)  # an important plugin dying takes lightningd down
    l2.start()
    with pytest.raises(RpcError):
        pay.result(timeout=120)  # the payer's payment failed: nothing was taken from it
    for peer in range(4):
        _fault(fed.admin_url, peer, "honest")

    def settled() -> bool:
        receives = [p for p in l2.rpc.call("fedimint-payments")["payments"] if p["kind"] == "receive"]
        return bool(receives) and all(p["state"] == "failed" for p in receives)

    wait_for(settled, timeout=180)
    receives = [p for p in l2.rpc.call("fedimint-payments")["payments"] if p["kind"] == "receive"]
    assert all("plugin was down" in p["error"] for p in receives)
    assert l2.rpc.call("fedimint-balances")["federations"][0]["ecash_msat"] == 300_000  # nothing lost
    assert user.balance() == 0


def test_crash_point_fires_inside_lightningd(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any
) -> None:
    """The crash matrix's mechanism in real lightningd: a v1 receive killed right after FUNDED is
    committed. lightningd fails the held HTLC back; the gateway reports the documented loss."""
    from tests.regtest.crashing import crash_at, crashing_opts

    l1, l2 = node_factory.line_graph(
        2, opts=[{"may_reconnect": True}, crashing_opts(gw_opts)], wait_for_announce=True
    )
    fed = devfeds("crashpt", "1")
    l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(300_000)
    l2.rpc.call(
        "fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": treasurer.send_ecash(300_000)}
    )
    user = User(Path(directory) / "user.wallet", fed.invite_code)
    receive = user.receive_v1(user.gateway_key_v1(l2.info["id"]), 50_000)
    pay = crash_at(
        l2,
        "receive:funded",
        lambda: executor.submit(l1.rpc.call, "xpay", {"invstring": receive.bolt11, "retry_for": 1}),
    )
    with pytest.raises(RpcError):
        pay.result(timeout=120)

    def settled() -> list[dict[str, Any]]:
        receives = [p for p in l2.rpc.call("fedimint-payments")["payments"] if p["kind"] == "receive"]
        return receives if receives and all(p["state"] in ("failed", "succeeded") for p in receives) else []

    receives = wait_for(settled, timeout=180) or settled()
    assert [p["state"] for p in receives] == ["failed"]
    assert "never received" in receives[0]["error"]
    assert user.claim(receive) == 50_000  # the receiver was paid: the documented loss
    assert l2.rpc.call("fedimint-balances")["federations"][0]["ecash_msat"] == 300_000 - 50_000
