"""The crash matrix for receives and sends (devfed v1 and v2), in a real lightningd.

Issue 14: the plugin is killed (SIGKILL, under `important-plugin`) right after each persisted
step of a flow, lightningd is started again, and once the flow settled the test checks, with
exact figures: the payer's side, the gateway's Lightning and ecash balances, the user's ecash,
the payment record (terminal state, `lost_msat` only in the documented window), that money is
conserved (devfed charges no transaction fee here, and the payer and the gateway share one
channel, so the four deltas sum to zero), that any loss is the reported `lost_msat`, and that
nothing was paid or claimed twice.

One network per flow; the points run one after the other on it (each with its own invoice).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from coincurve import PrivateKey
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.codec import sign
from contrib.devfed.contracts import SEND_AUTH_PURPOSE
from contrib.devfed.errors import DevfedError
from contrib.devfed.wallet import Wallet
from contrib.regtest.demo import unroutable_invoice
from tests.regtest.crashing import crash_at, crashing_opts
from tests.regtest.user import User

pytestmark = pytest.mark.regtest
T = TypeVar("T")

BASE, PPM = 1000, 1000
AMOUNT = 50_000


def _fee(amount: int) -> int:
    return BASE + amount * PPM // 1_000_000


class End(enum.Enum):
    """How a payment ends after the crash."""

    PAID = "paid"  # the payer paid, the user got the money, the gateway earned its fee
    NOTHING = "nothing"  # nothing moved: the payer's payment failed, no contract was paid for
    LOST = "lost"  # the documented window: the user was paid, the Lightning side failed
    REFUNDED = "refunded"  # a send that could not be paid: the user got its ecash back
    # A receive's funding returns once accepted and its change notes are collected in the
    # background, racing the resolve: killed when they are (`...:done`), the HTLC may already
    # be resolved (paid) or not (the documented loss). Either, never both.
    PAID_OR_LOST = "paid or lost"


# Every persisted step each flow writes, in order, and where a crash there must end.
NO_CRASH = "none"  # the same flow, not killed: the baseline (and the loss window's measure)
RECEIVE_V1 = {
    NO_CRASH: End.PAID,
    "receive:htlc_held": End.NOTHING,
    "ecash:fund_incoming:prepared": End.NOTHING,  # the funding is made impossible, then failed
    "ecash:fund_incoming:done": End.PAID_OR_LOST,  # change notes collected, racing the resolve
    "receive:funded": End.LOST,
    "receive:succeeded": End.LOST,  # preimage written, resolve not yet answered
}
RECEIVE_V2 = {"receive:registered": End.NOTHING, **RECEIVE_V1}
SEND_PAID = {
    NO_CRASH: End.PAID,
    # Resumed at start: the send waits for lightningd's channels, then pays (once).
    "send:paying": End.PAID,  # written, xpay not called yet
    "send:paying:xpay": End.PAID,  # "xpay is being called" written; it never ran (died with lightningd)
    "send:claiming": End.PAID,
    "ecash:claim_outgoing:prepared": End.PAID,
    "ecash:claim_outgoing:done": End.PAID,
    "send:succeeded": End.PAID,
}
SEND_REFUNDED = {
    NO_CRASH: End.REFUNDED,
    "send:paying": End.REFUNDED,
    "send:cancelling": End.REFUNDED,
    "send:refunded": End.REFUNDED,
}


@dataclass(frozen=True)
class Books:
    """Everybody's money at one moment, msat."""

    payer_ln: int
    gw_ln: int
    gw_ecash: int
    user_ecash: int

    def minus(self, other: Books) -> Books:
        return Books(
            self.payer_ln - other.payer_ln,
            self.gw_ln - other.gw_ln,
            self.gw_ecash - other.gw_ecash,
            self.user_ecash - other.user_ecash,
        )


@dataclass
class Net:
    l1: Any  # the external payer (receives) and payee (sends)
    l2: Any  # the gateway
    fed: Any
    user: User
    api_url: str

    def books(self) -> Books:
        def to_us(node: Any) -> int:
            return sum(int(c["to_us_msat"]) for c in node.rpc.listpeerchannels()["channels"])

        feds = self.l2.rpc.call("fedimint-balances")["federations"]
        ecash = next(f["ecash_msat"] for f in feds if f["federation_id"] == self.fed.federation_id)
        return Books(to_us(self.l1), to_us(self.l2), ecash, self.user.balance())

    def quiet(self) -> None:
        """Channel up again and no HTLC in flight (balances are final)."""

        def ok() -> bool:
            chans = self.l1.rpc.listpeerchannels()["channels"]
            return all(
                c["peer_connected"] and c["state"] == "CHANNELD_NORMAL" and not c["htlcs"] for c in chans
            )

        wait_for(ok, timeout=120)

    def record(self, payment_hash: str, kind: str, *states: str) -> dict[str, Any]:
        """The payment's one record, once it is in `state` (a receive answered `resolve` is
        written succeeded first, and failed once lightningd shows it never took the answer)."""

        def rows() -> list[dict[str, Any]]:
            return [
                p
                for p in self.l2.rpc.call("fedimint-payments")["payments"]
                if p["payment_hash"] == payment_hash and p["kind"] == kind
            ]

        with contextlib.suppress(ValueError):  # pyln's timeout: the asserts show what is there
            wait_for(lambda: bool(rows()) and all(p["state"] in states for p in rows()), timeout=240)
        found = rows()
        assert len(found) == 1, found  # one record per payment: nothing done twice
        return found[0]


def _vet(admin_url: str, api_url: str) -> None:
    req = urllib.request.Request(
        f"{admin_url}/admin/gateways",
        data=json.dumps({"url": api_url}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def _net(node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, api: str) -> Net:
    gw = crashing_opts(gw_opts, **{"fedimint-gw-fee-base-msat": BASE, "fedimint-gw-fee-ppm": PPM})
    l1, l2 = node_factory.line_graph(
        2, opts=[{"may_reconnect": True}, gw], wait_for_announce=True, fundamount=10**7
    )
    # Outbound liquidity for sends: l1 pays the gateway a plain invoice.
    l1.rpc.call("xpay", {"invstring": l2.rpc.invoice(3_000_000_000, "liquidity", "liquidity")["bolt11"]})
    fed = devfeds(f"crash{api}", api)
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    if api == "2":
        _vet(fed.admin_url, api_url)
    assert l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})["status"] == "connected"
    treasurer = User(Path(directory) / "treasurer.wallet", fed.invite_code)
    treasurer.faucet(2_000_000)
    notes = treasurer.send_ecash(2_000_000)
    l2.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})
    user = User(Path(directory) / "user.wallet", fed.invite_code)
    return Net(l1, l2, fed, user, api_url)


def _run_at(net: Net, point: str, trigger: Callable[[], T]) -> T:
    """`trigger()` with the plugin killed at `point` (and lightningd restarted), or not killed."""
    if point == NO_CRASH:
        return trigger()
    started = crash_at(net.l2, point, trigger)
    # The payer would reconnect by itself, after its back-off (minutes once it found the gateway
    # down); the matrix does not wait for that.
    net.l1.rpc.connect(net.l2.info["id"], "localhost", net.l2.port)
    return started


def _complete_sendpays(node: Any, payment_hash: str) -> int:
    pays = node.rpc.listsendpays(payment_hash=payment_hash)["payments"]
    return sum(1 for p in pays if p["status"] == "complete")


def _crash_receive(net: Net, executor: Any, point: str, end: End, api: str) -> None:
    """One receive killed at `point`: everything settled and checked with exact figures."""
    before = net.books()
    if point == "receive:registered":
        # The user's invoice request itself is cut short: no invoice, nothing can be paid.
        asked = _run_at(net, point, lambda: executor.submit(net.user.receive_v2, net.api_url, AMOUNT))
        with pytest.raises(DevfedError):
            asked.result(timeout=60)
        net.quiet()
        assert net.books() == before, point
        return
    if api == "1":
        receive = net.user.receive_v1(net.user.gateway_key_v1(net.l2.info["id"]), AMOUNT)
        htlc = AMOUNT + _fee(AMOUNT)  # v1: the payer adds the gateway's fee
        credited = AMOUNT  # what the user's contract holds
    else:
        receive = net.user.receive_v2(net.api_url, AMOUNT)
        htlc, credited = AMOUNT, AMOUNT - _fee(AMOUNT)  # v2: the fee comes out of the invoice
    pay = _run_at(
        net,
        point,
        lambda: executor.submit(net.l1.rpc.call, "xpay", {"invstring": receive.bolt11, "retry_for": 1}),
    )
    try:
        paid = pay.result(timeout=120)
        assert hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest() == receive.payment_hash
        payer_paid = True
    except RpcError:
        payer_paid = False
    if end is End.PAID_OR_LOST:
        rec = net.record(receive.payment_hash, "receive", "succeeded" if payer_paid else "failed")
        end = End.PAID if payer_paid else End.LOST
    else:
        rec = net.record(receive.payment_hash, "receive", "succeeded" if end is End.PAID else "failed")
    net.quiet()
    try:
        claimed = net.user.claim(receive)
    except DevfedError:
        claimed = 0
    with pytest.raises(DevfedError):
        net.user.claim(receive)  # a contract is claimed once
    delta = net.books().minus(before)
    lost = int(rec.get("lost_msat", 0))
    where = f"{point}: {rec} {delta}"
    # Exact figures per outcome.
    if end is End.PAID:
        assert payer_paid and rec["state"] == "succeeded" and lost == 0, where
        assert (delta.payer_ln, delta.gw_ln, delta.gw_ecash, claimed) == (-htlc, htlc, -credited, credited), (
            where
        )
    elif end is End.NOTHING:
        assert not payer_paid and rec["state"] == "failed" and lost == 0, where
        assert delta == Books(0, 0, 0, 0) and claimed == 0, where
    else:
        assert end is End.LOST
        assert not payer_paid and rec["state"] == "failed", where
        assert "never received" in rec.get("error", ""), where
        assert lost == credited == claimed, where  # the loss is reported, to the msat
        assert (delta.payer_ln, delta.gw_ln, delta.gw_ecash) == (0, 0, -credited), where
    # Conservation: no transaction fee, one channel: what one side lost the other got.
    assert delta.user_ecash == claimed, where
    assert delta.payer_ln + delta.gw_ln + delta.gw_ecash + delta.user_ecash == 0, where
    assert delta.gw_ln + delta.gw_ecash == (htlc - credited if payer_paid else 0) - lost, where
    assert _complete_sendpays(net.l1, receive.payment_hash) == (1 if payer_paid else 0), where


async def _resend(w: Wallet, cid: str, invoice: str, api_url: str) -> dict[str, Any]:
    """The user's wallet asks the gateway again about its contract (what a wallet does after
    losing the answer): the same request, answered from the gateway's record."""
    stored = w.store.get_contract(cid)
    assert stored is not None
    data = stored[1]
    key = PrivateKey(bytes.fromhex(str(data["refund_key"])))
    if w.client.major == 1:
        path = "/v1/pay_invoice"
        body: dict[str, Any] = {
            "federation_id": w.federation_id,
            "contract_id": cid,
            "invoice": invoice,
            "preimage_auth": hashlib.sha256(key.secret).hexdigest(),
        }
    else:
        path = "/v1/send_payment"
        body = {
            "federation_id": w.federation_id,
            "contract": data["contract"],
            "contract_id": cid,
            "outpoint": {"txid": str(data["txid"]), "out_idx": 0},
            "invoice": invoice,
            "auth": sign(key, SEND_AUTH_PURPOSE, {"contract_id": cid, "invoice": invoice}),
        }
    answer = await http_json(w.session, "POST", api_url.rstrip("/") + path, body)
    assert isinstance(answer, dict)
    return answer


async def _finish_send(w: Wallet, cid: str, invoice: str, api_url: str) -> dict[str, Any]:
    view = await w.client.contract(cid)
    if view["state"] == "claimed":
        return {"preimage": view["preimage"]}
    answer = await _resend(w, cid, invoice, api_url)
    if "preimage" in answer:
        return {"preimage": answer["preimage"]}
    forfeit = answer.get("forfeit_signature")
    return {"refunded_msat": await wallet_ln.refund_outgoing(w, cid, forfeit)}


# Runs the trigger that starts a send of a payment hash, killing the plugin on the way.
Kill = Callable[[str, Callable[[], T]], T]


def _crash_send(
    net: Net,
    executor: Any,
    point: str,
    end: End,
    label: str,
    *,
    payable: bool | None = None,
    kill: Kill[Any] | None = None,
) -> dict[str, Any]:
    """One send killed at `point` (or by `kill`): settled, the user finishes its side,
    everything checked; returns the send's record. The invoice is the payee's (payable) unless
    the send must end refunded, then one nobody can route to."""
    fee = _fee(AMOUNT)
    if payable is None:
        payable = end is not End.REFUNDED
    if payable:
        invoice = net.l1.rpc.invoice(AMOUNT, label, "paid from a federation")["bolt11"]
    else:
        invoice = unroutable_invoice(AMOUNT)
    payment_hash = net.l1.rpc.decode(invoice)["payment_hash"]
    key = net.user.gateway_key(net.l2.info["id"], net.api_url)
    before = net.books()

    def trigger() -> Any:
        return executor.submit(net.user.pay, invoice, net.api_url, key, fee)

    sent = kill(payment_hash, trigger) if kill is not None else _run_at(net, point, trigger)
    first = sent.result(timeout=240)  # the wallet's own call: preimage, refund, or still pending
    rec = net.record(payment_hash, "send", "succeeded" if end is End.PAID else "refunded")
    net.quiet()
    cid = first["contract_id"]
    if "preimage" not in first and "refunded_msat" not in first:
        first = net.user.run(lambda w: _finish_send(w, cid, invoice, net.api_url))
    delta = net.books().minus(before)
    where = f"{point}: {rec} {first} {delta}"
    assert "lost_msat" not in rec, where
    if end is End.PAID:
        assert rec["state"] == "succeeded" and "preimage" in first, where
        assert hashlib.sha256(bytes.fromhex(first["preimage"])).hexdigest() == payment_hash, where
        assert net.l1.rpc.listinvoices(label)["invoices"][0]["status"] == "paid", where
        assert (delta.payer_ln, delta.gw_ln) == (AMOUNT, -AMOUNT), where  # paid once, one hop
        assert (delta.gw_ecash, delta.user_ecash) == (AMOUNT + fee, -(AMOUNT + fee)), where
        assert _complete_sendpays(net.l2, payment_hash) == 1, where  # never paid twice
    else:
        assert rec["state"] == "refunded" and first.get("refunded_msat") == AMOUNT + fee, where
        assert delta == Books(0, 0, 0, 0), where
        assert _complete_sendpays(net.l2, payment_hash) == 0, where
        if payable:
            assert net.l1.rpc.listinvoices(label)["invoices"][0]["status"] == "unpaid", where
    assert delta.payer_ln + delta.gw_ln + delta.gw_ecash + delta.user_ecash == 0, where
    # A second claim of the contract is refused by the federation (it is spent).
    view = net.user.run(lambda w: w.client.contract(cid))
    assert view["state"] in ("claimed", "refunded", "cancelled"), where
    return rec


def _each(points: dict[str, End], run: Callable[[str, End], None]) -> None:
    for point, end in points.items():
        run(point, end)


@pytest.mark.parametrize("api", ["1", "2"])
def test_crash_matrix_receive(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any, api: str
) -> None:
    net = _net(node_factory, gw_opts, devfeds, directory, api)
    points = RECEIVE_V1 if api == "1" else RECEIVE_V2
    _each(points, lambda point, end: _crash_receive(net, executor, point, end, api))


@pytest.mark.parametrize("api", ["1", "2"])
def test_crash_matrix_send(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str, executor: Any, api: str
) -> None:
    net = _net(node_factory, gw_opts, devfeds, directory, api)
    # The user's ecash comes from the faucet; every send spends AMOUNT + fee of it at most.
    net.user.faucet(1_000_000)
    labels = iter(range(100))
    _each(SEND_PAID, lambda point, end: _crash_send(net, executor, point, end, f"s{api}-{next(labels)}"))
    _each(SEND_REFUNDED, lambda point, end: _crash_send(net, executor, point, end, f"r{api}-{next(labels)}"))
