"""Fedimint LNv2 through the plugin in a real lightningd (v26.06), with our own LNv2 client code
(tests/support/lnv2_wallet.py: no official LNv2 client runs here) as the federation's user and
devfed's Fedimint family serving mint + lnv2 (no ln, so `fedimint-connect` picks fedimint-lnv2).

l1 (payer) -- l2 (gateway: the plugin) -- l3 (payee):
(a) receive: the user's incoming contract becomes an invoice of l2 via /create_bolt11_invoice;
    l1 pays it with xpay; the guardians' decryption shares give the preimage; the user claims.
(b) send: the user's outgoing contract; /send_payment makes l2 pay l3's invoice and claim.
(c) nobody can route the invoice: /send_payment answers a forfeit signature, the user cancels
    its contract and gets everything back; the gateway gains and loses nothing.
Every balance is asserted exactly, and so is the payments log (kind, state, fee) and summary.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID
from contrib.regtest.demo import unroutable_invoice
from fedimint_gw.fedimint.config import ClientConfig
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract, OutgoingContract
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint
from fedimint_gw.lightning import bolt11
from tests.regtest.test_fedimint_ln import LoopThread
from tests.regtest.test_payments import _vet, settled
from tests.regtest.user import User as RegtestUser
from tests.support.lnv2_wallet import Lnv2Wallet, RemoteConfig, RemoteFedimint

pytestmark = pytest.mark.regtest
BASE, PPM = 1000, 2000


def fee_of(amount: int) -> int:
    """The gateway's fee for `amount` under BASE and PPM (the fees these tests give l2)."""
    return BASE + amount * PPM // 1_000_000


class User:
    """Our LNv2 client code on its own loop thread (pyln-testing's tests are synchronous)."""

    def __init__(self, runner: LoopThread, invite: str, admin_url: str) -> None:
        self.runner = runner
        self.session = runner.run(self._session())
        self.config: ClientConfig = runner.run(
            bootstrap_client_config(parse_invite_code(invite), self.session)
        )
        self.api = FederationApi.from_config(self.config, self.session)
        self.wallet = Lnv2Wallet(RemoteFedimint(admin_url, RemoteConfig(self.config)), self.api, self.session)

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def oob(self, amount: int) -> str:
        return self.runner.run(
            faucet_notes(self.session, self.wallet.fm.admin_url, self.config, amount)
        ).oob.encode()

    def post(self, url: str, body: object) -> tuple[int, Any]:
        async def go() -> tuple[int, Any]:
            async with self.session.post(url, json=body) as resp:
                return resp.status, await resp.json()

        return self.runner.run(go())

    def receive_invoice(
        self, api_url: str, fid: str, gateway_pk: bytes, amount: int
    ) -> tuple[str, bytes, IncomingContract]:
        """An incoming contract worth `amount` less the gateway's fee, as the gateway's invoice."""
        preimage = secrets.token_bytes(32)
        contract = self.wallet.incoming_contract(
            gateway_pk, amount - fee_of(amount), int(time.time()) + 3600, preimage
        )
        body = {
            "federation_id": fid,
            "contract": contract.to_json(),
            "amount": amount,
            "description": {"Direct": "regtest lnv2 receive"},
            "expiry_secs": 3600,
        }
        status, invoice = self.post(api_url + "/create_bolt11_invoice", body)
        assert status == 200 and isinstance(invoice, str), invoice
        return invoice, preimage, contract

    def claim(self, contract: IncomingContract) -> None:
        """Take the funded contract with the guardians' aggregate key: notes worth exactly it."""
        outpoint = self.runner.run(
            lnv2_api.await_incoming_contract(self.api, LNV2_INSTANCE_ID, contract.contract_id(), 2**40)
        )
        assert outpoint is not None
        agg = self.runner.run(
            lnv2_api.aggregate_decryption_key(
                self.api, LNV2_INSTANCE_ID, self.wallet.config, contract, outpoint
            )
        )
        value = items.IncomingInput(outpoint, agg)
        assert self.runner.run(self.wallet.spend(value, contract.commitment.amount)).accepted

    def send(
        self, api_url: str, fid: str, gateway_pk: bytes, invoice: str, total: int
    ) -> tuple[int, Any, OutgoingContract, OutPoint]:
        """Fund an outgoing contract worth `total` for `invoice` and ask the gateway to pay it."""
        contract = self.wallet.outgoing_contract(gateway_pk, total, 1000, bolt11.decode(invoice).payment_hash)
        submitted, outpoint = self.runner.run(self.wallet.fund(contract, total))
        assert submitted.accepted
        body = {
            "federation_id": fid,
            "outpoint": outpoint.to_json(),
            "contract": contract.to_json(),
            "invoice": {"Bolt11": invoice},
            "auth": sign_schnorr(self.wallet.key, items.invoice_auth_message(invoice)).hex(),
        }
        status, answer = self.post(api_url + "/send_payment", body)
        return status, answer, contract, outpoint

    def close(self) -> None:
        self.runner.run(self.api.close())
        self.runner.run(self.session.close())


@pytest.fixture
def user_loop() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


def _ecash(node: Any, fid: str) -> int:
    [fed] = [f for f in node.rpc.call("fedimint-balances")["federations"] if f["federation_id"] == fid]
    return int(fed["ecash_msat"])


def _payments(node: Any) -> list[dict[str, Any]]:
    return list(node.rpc.call("fedimint-payments", {"limit": 1000})["payments"])


def test_lnv2_receive_send_and_refund_through_lightningd(
    node_factory: Any, gw_opts: Any, lnv2_devfed: dict[str, Any], user_loop: LoopThread
) -> None:
    fees = {"fedimint-gw-fee-base-msat": BASE, "fedimint-gw-fee-ppm": PPM}
    l1, l2, l3 = node_factory.line_graph(
        3, opts=[{}, gw_opts(**fees), {}], wait_for_announce=True, fundamount=10**7
    )
    invite, admin = lnv2_devfed["invite_code"], lnv2_devfed["admin_url"]
    joined = l2.rpc.call("fedimint-connect", {"invite_code": invite})
    assert joined["status"] == "connected" and joined["adapter"] == "fedimint-lnv2", joined
    fid = joined["federation_id"]
    user = User(user_loop, invite, admin)
    try:
        got = l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": user.oob(300_000)})
        assert got["received_msat"] == 300_000
        api_url = l2.rpc.call("fedimint-info")["api_url"].rstrip("/")
        status, routing = user.post(api_url + "/routing_info", fid)
        assert status == 200 and routing["lightning_public_key"] == l2.info["id"], routing
        assert routing["receive_fee"] == {"base": BASE, "parts_per_million": PPM}
        gateway_pk = bytes.fromhex(routing["module_public_key"])
        lnv2_fee = user.wallet.config.fee  # devfed's LNv2 module fee: zero here
        assert lnv2_fee.fee(10**6) == 0

        # (a) receive: l1 pays the invoice amount; the user's contract is that less our fee
        amount = 50_000
        invoice, preimage, contract = user.receive_invoice(api_url, fid, gateway_pk, amount)
        decoded = bolt11.decode(invoice)
        assert decoded.payee.hex() == l2.info["id"] and decoded.amount_msat == amount
        paid = l1.rpc.call("xpay", {"invstring": invoice})
        assert paid["amount_msat"] == amount
        assert bytes.fromhex(paid["payment_preimage"]) == preimage
        assert _ecash(l2, fid) == 300_000 - (amount - fee_of(amount))
        assert contract.commitment.amount == amount - fee_of(amount)
        user.claim(contract)  # spend() checks the notes issued are worth exactly the contract

        # (b) send: l3's invoice; the contract carries the invoice amount plus our fee
        invoice = l3.rpc.invoice(20_000, "from-lnv2", "paid by our LNv2 client")["bolt11"]
        total = 20_000 + fee_of(20_000)
        before = _ecash(l2, fid)
        status, answer, out, _ = user.send(api_url, fid, gateway_pk, invoice, total)
        assert status == 200 and set(answer) == {"Ok"}, answer
        assert hashlib.sha256(bytes(answer["Ok"])).digest() == bolt11.decode(invoice).payment_hash
        assert l3.rpc.listinvoices("from-lnv2")["invoices"][0]["status"] == "paid"
        deadline = time.monotonic() + 30
        while _ecash(l2, fid) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ecash(l2, fid) == before + total  # the user's contract, claimed

        # (c) unroutable: a forfeit signature back, the user cancels and has everything back
        invoice = unroutable_invoice(5_000)
        total_c = 5_000 + fee_of(5_000)
        before = _ecash(l2, fid)
        status, answer, out_c, out_point_c = user.send(api_url, fid, gateway_pk, invoice, total_c)
        assert status == 200 and set(answer) == {"Err"}, answer
        forfeit = bytes.fromhex(str(answer["Err"]))
        assert out_c.verify_forfeit_signature(forfeit)
        cancel = items.OutgoingInput(out_point_c, items.OutgoingWitness(items.WitnessKind.CANCEL, forfeit))
        refunded = user_loop.run(user.wallet.spend(cancel, total_c))
        assert refunded.accepted  # notes worth the whole contract back to the user
        assert _ecash(l2, fid) == before

        # the payments log and the summary
        by_hash = {p["payment_hash"]: p for p in _payments(l2)}
        recv = by_hash[hashlib.sha256(preimage).hexdigest()]
        assert (recv["kind"], recv["state"], recv["fee_msat"]) == ("receive", "succeeded", fee_of(amount))
        assert recv["amount_msat"] == amount - fee_of(amount)  # what the receiver's contract holds
        send = by_hash[out.terms.payment_image.value.hex()]
        assert (send["kind"], send["state"], send["fee_msat"]) == ("send", "succeeded", fee_of(20_000))
        failed = by_hash[out_c.terms.payment_image.value.hex()]
        assert (failed["kind"], failed["state"], failed["amount_msat"]) == ("send", "refunded", 5_000)
        assert "Lightning payment failed" in failed["error"]
        kinds = l2.rpc.call("fedimint-summary")["kinds"]
        assert kinds["receive"]["succeeded"] == 1 and kinds["receive"]["volume_msat"] == amount - fee_of(
            amount
        )
        assert kinds["send"]["succeeded"] == 1 and kinds["send"]["failed"] == 1
        assert kinds["receive"]["fees_earned_msat"] + kinds["send"]["fees_earned_msat"] == (
            fee_of(amount) + fee_of(20_000)
        )
        # What the federation took (no mint fees here: the ecash figures above are exact), and so
        # the margin, through lightningd: the funding, the claim; the cancel cost nothing.
        assert (recv["federation_fee_msat"], recv["margin_msat"]) == (0, fee_of(amount))
        assert (send["federation_fee_msat"], send["margin_msat"]) == (0, fee_of(20_000))
        assert "federation_fee_msat" not in failed  # never claimed, nothing funded
        assert kinds["receive"]["margin_msat"] == fee_of(amount) and kinds["send"]["margin_msat"] == fee_of(
            20_000
        )
    finally:
        user.close()


def test_swaps_between_lnv2_and_a_devfed_v2_federation_in_lightningd(
    node_factory: Any,
    gw_opts: Any,
    devfeds: Any,
    directory: str,
    lnv2_devfed: dict[str, Any],
    user_loop: LoopThread,
) -> None:
    """Both directions between families on one gateway, no HTLC: a devfed v2 user pays an LNv2
    receiver's invoice, and an LNv2 user pays a devfed v2 receiver's invoice."""
    fees = {"fedimint-gw-fee-base-msat": BASE, "fedimint-gw-fee-ppm": PPM}
    l2 = node_factory.get_node(options=gw_opts(**fees))
    api_url = l2.rpc.call("fedimint-info")["api_url"].rstrip("/")
    v2 = devfeds("lnv2x-v2", "2")
    _vet(v2.admin_url, api_url)
    l2.rpc.call("fedimint-connect", {"invite_code": v2.invite_code})
    treasurer = RegtestUser(Path(directory) / "treasurer.wallet", v2.invite_code)
    treasurer.faucet(300_000)
    notes = treasurer.send_ecash(300_000)
    l2.rpc.call("fedimint-ecash-receive", {"federation_id": v2.federation_id, "notes": notes})
    invite, admin = lnv2_devfed["invite_code"], lnv2_devfed["admin_url"]
    fid = l2.rpc.call("fedimint-connect", {"invite_code": invite})["federation_id"]
    user = User(user_loop, invite, admin)
    try:
        l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": user.oob(300_000)})
        gateway_pk = bytes.fromhex(user.post(api_url + "/routing_info", fid)[1]["module_public_key"])
        amount = 30_000

        # devfed v2 -> LNv2: the sender pays the invoice + our swap fee; the receiver's contract is
        # the invoice less our receive fee
        sender = RegtestUser(Path(directory) / "sender.wallet", v2.invite_code)
        sender.faucet(200_000)
        invoice, preimage, contract = user.receive_invoice(api_url, fid, gateway_pk, amount)
        key = sender.routing_info(api_url)["module_pubkey"]
        result = sender.pay(invoice, api_url, key, fee_of(amount))
        assert bytes.fromhex(result["preimage"]) == preimage
        user.claim(contract)
        settled(l2)
        assert sender.balance() == 200_000 - amount - fee_of(amount)
        assert _ecash(l2, v2.federation_id) == 300_000 + amount + fee_of(amount)
        assert _ecash(l2, fid) == 300_000 - (amount - fee_of(amount))

        # LNv2 -> devfed v2: the LNv2 contract is the invoice + our swap fee
        receiver = RegtestUser(Path(directory) / "receiver.wallet", v2.invite_code)
        receive = receiver.receive_v2(api_url, amount)
        status, answer, _, _ = user.send(api_url, fid, gateway_pk, receive.bolt11, amount + fee_of(amount))
        assert status == 200 and set(answer) == {"Ok"}, answer
        assert hashlib.sha256(bytes(answer["Ok"])).hexdigest() == receive.payment_hash
        assert receiver.claim(receive) == amount - fee_of(amount)
        settled(l2)
        assert _ecash(l2, fid) == 300_000 - (amount - fee_of(amount)) + amount + fee_of(amount)
        assert _ecash(l2, v2.federation_id) == 300_000 + amount + fee_of(amount) - (amount - fee_of(amount))
    finally:
        user.close()

    # no HTLC anywhere: l2 has no channel at all, and forwarded nothing
    assert l2.rpc.listpeerchannels()["channels"] == [] and l2.rpc.listforwards()["forwards"] == []
    swaps = [p for p in _payments(l2) if p["kind"] == "swap"]
    assert sorted(
        (p["federation_id"], p["target_federation_id"], p["state"], p["fee_msat"]) for p in swaps
    ) == sorted(
        [
            (v2.federation_id, fid, "succeeded", fee_of(amount)),
            (fid, v2.federation_id, "succeeded", fee_of(amount)),
        ]
    )
    kinds = l2.rpc.call("fedimint-summary")["kinds"]
    assert kinds["swap"]["succeeded"] == 2 and kinds["swap"]["fees_earned_msat"] == 2 * fee_of(amount)
    # the receive halves (the receivers' contracts) carry our receive fee: 4 fees earned in all
    assert kinds["receive"]["fees_earned_msat"] == 2 * fee_of(amount)
