"""The crash matrix for the Fedimint family (LNv1), in a real lightningd (issue 17 item 5).

The gateway plugin (l2, `important-plugin`) kills itself with SIGKILL right after each persisted
step of a flow (tests/regtest/crashing.py), lightningd exits with it and is started again
cleanly; then the flow must end with exact figures: no msat lost beyond the documented and
reported window between a receive's funding and its HTLC's `resolve`, nothing paid or claimed
twice, the ecash conserved.

- Receive, with the official Fedimint client (WASM, under Node) as the receiver: its LNv1
  invoice is paid by l1 through l2. Steps: `receive:htlc_held`, the funding's ecash operation
  (`ecash:fm_module_fund:prepared`, `...:done`), `receive:funded`, `receive:succeeded`.
- Send, with our own client code (the user's outgoing contract built and funded as
  tests/e2e/test_fedimint_ln.py does, the gateway asked on its `/v1/pay_invoice` route): the
  official client cannot be driven step by step through a gateway that dies under its HTTP
  call. Steps of a paid send: `send:paying`, `send:claiming`, the claim's ecash operation
  (`ecash:fm_module_redeem:prepared`, `...:done`), `send:succeeded`; of an unroutable one:
  `send:cancelling`, the cancellation (`ecash:fm_module_plain:prepared`, `...:done`),
  `send:refunded`.
The devfed federation charges no fees here, so every figure is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from typing import Any

import aiohttp
import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.regtest.demo import unroutable_invoice
from fedimint_gw.fedimint.config import ClientConfig
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code
from fedimint_gw.fedimint.ln import contracts as lc
from fedimint_gw.fedimint.ln.items import LN_KIND, ContractOutput, ln_output_bytes
from fedimint_gw.fedimint.ln.json_forms import account_from_json
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input
from fedimint_gw.fedimint.mint_types import MINT_KIND, write_mint_input
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from tests.regtest.crashing import crash_at, crashing_opts
from tests.regtest.test_fedimint_ln import (  # fixtures and helpers, deduplicated at the merge
    LoopThread,
    _balance,
    _faucet_oob,
    _gateway_info,
    _states,
    official,
)

pytestmark = pytest.mark.regtest

RECEIVE_MSAT = 40_000
GATEWAY_ECASH = 300_000
NOTHING_FUNDED = "nothing funded"
FUNDED_AND_LOST = "funded, HTLC failed back: the documented loss"
# The funding returns once accepted; its change notes are collected in the background, racing
# the resolve. Killed when they are (`..._fund:done`), the HTLC may already be resolved (paid,
# nothing lost) or not (the documented loss). Either, never both.
FUNDED_PAID_OR_LOST = "funded; paid or the documented loss"
FUNDED_AND_PAID = "funded and resolved before the kill: nothing lost"

# Every step a LNv1 receive writes, and what a crash right after it costs.
RECEIVE_STEPS = (
    ("receive:htlc_held", NOTHING_FUNDED),
    ("ecash:fm_module_fund:prepared", NOTHING_FUNDED),
    ("ecash:fm_module_fund:done", FUNDED_PAID_OR_LOST),
    ("receive:funded", FUNDED_AND_LOST),
    ("receive:succeeded", FUNDED_AND_LOST),
)
SEND_PAID_STEPS = (
    "send:paying",
    "send:claiming",
    "ecash:fm_module_redeem:prepared",
    "ecash:fm_module_redeem:done",
    "send:succeeded",
)
SEND_REFUNDED_STEPS = (
    "send:cancelling",
    "ecash:fm_module_plain:prepared",
    "ecash:fm_module_plain:done",
    "send:refunded",
)


def _payments(node: Any, kind: str) -> list[dict[str, Any]]:
    return [p for p in node.rpc.call("fedimint-payments")["payments"] if p["kind"] == kind]


def _ecash_becomes(node: Any, expected: int, point: str) -> None:
    """The gateway's ecash reaches `expected` (a funding's change notes are collected after the
    funding is accepted, in the background or at the next connect)."""
    with contextlib.suppress(ValueError):  # pyln's timeout: the assert shows the figure
        wait_for(lambda: _ecash(node) == expected, timeout=60)
    assert _ecash(node) == expected, point


def _ecash(node: Any) -> int:
    [fed] = node.rpc.call("fedimint-balances")["federations"]
    value = fed["ecash_msat"]
    assert isinstance(value, int)
    return value


def _finished(node: Any, kind: str, payment_hash: str, states: tuple[str, ...]) -> dict[str, Any] | None:
    for p in _payments(node, kind):
        if p["payment_hash"] == payment_hash and p["state"] in states:
            return p
    return None


def _reconnected(node: Any, peer: Any) -> None:
    """Connect `node` to `peer` again if the restart left them apart, and wait until their
    channel is usable (a payment started before finds no route)."""

    def usable() -> bool:
        chans = node.rpc.listpeerchannels(peer.info["id"])["channels"]
        return bool(chans) and all(c["peer_connected"] and c["state"] == "CHANNELD_NORMAL" for c in chans)

    if not usable():
        node.rpc.connect(peer.info["id"], "localhost", peer.port)
    wait_for(usable)


def _lost(node: Any, payment_hash: str) -> int:
    """The loss the accounting export reports for this payment (0 when none)."""
    rows = [
        r
        for r in node.rpc.call("fedimint-export", {"format": "json"})["payments"]
        if r["payment_hash"] == payment_hash
    ]
    assert len(rows) == 1, rows
    return int(rows[0]["lost_msat"] or 0)


def _payer_paid(pay: Any) -> bool:
    """Whether the payer's xpay (a future) succeeded; False when it failed."""
    try:
        pay.result(timeout=120)
    except RpcError:
        return False
    return True


def _one(node: Any, kind: str, payment_hash: str, *states: str) -> dict[str, Any]:
    """The one payment of `kind` for `payment_hash`, once it reached one of `states`."""
    got = wait_for(lambda: _finished(node, kind, payment_hash, states), timeout=180) or _finished(
        node, kind, payment_hash, states
    )
    assert got is not None
    assert [p["payment_hash"] for p in _payments(node, kind)].count(payment_hash) == 1
    return got


def test_lnv1_receive_crash_matrix_with_the_official_client(
    official: tuple[LoopThread, Any],
    node_factory: Any,
    gw_opts: Any,
    fedimint_devfed: dict[str, Any],
    executor: Any,
) -> None:
    runner, client = official
    fees0 = {"fedimint-gw-fee-base-msat": 0, "fedimint-gw-fee-ppm": 0}
    l1, l2 = node_factory.line_graph(
        2,
        opts=[{"may_reconnect": True}, crashing_opts(gw_opts, **fees0)],
        wait_for_announce=True,
        fundamount=10**7,
    )
    invite, admin = fedimint_devfed["invite_code"], fedimint_devfed["admin_url"]
    fid = l2.rpc.call("fedimint-connect", {"invite_code": invite})["federation_id"]
    notes = runner.run(_faucet_oob(invite, admin, GATEWAY_ECASH))
    l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": notes})
    runner.run(client.join("user", invite, timeout=60))
    info = _gateway_info(runner, client)

    gateway, user, lost_total = GATEWAY_ECASH, 0, 0
    for point, outcome in RECEIVE_STEPS:
        created = runner.run(
            client.rpc_one(
                "ln",
                "create_bolt11_invoice",
                {
                    "amount": RECEIVE_MSAT,
                    "description": f"crash at {point}",
                    "expiry_time": None,
                    "extra_meta": {},
                    "gateway": info,
                },
                client_name="user",
            )
        )
        payment_hash = l1.rpc.decode(created["invoice"])["payment_hash"]
        _reconnected(l1, l2)
        pay = crash_at(
            l2,
            point,
            lambda inv=created["invoice"]: executor.submit(
                l1.rpc.call, "xpay", {"invstring": inv, "retry_for": 1}
            ),
        )
        # lightningd answered the pending hook `continue` as the plugin died: the HTLC to the
        # fake scid failed back (unless it was resolved before the kill). The payer paid nothing.
        paid = _payer_paid(pay)
        if outcome == FUNDED_PAID_OR_LOST:
            outcome = FUNDED_AND_PAID if paid else FUNDED_AND_LOST
        assert paid == (outcome == FUNDED_AND_PAID), (point, paid)
        assert len(
            [
                p
                for p in l1.rpc.listsendpays(payment_hash=payment_hash)["payments"]
                if p["status"] == "complete"
            ]
        ) == (1 if paid else 0)
        rec = _one(l2, "receive", payment_hash, "succeeded" if paid else "failed", "refunded")
        if outcome == FUNDED_AND_PAID:
            states = runner.run(
                _states(client, "subscribe_ln_receive", created["operation_id"], {"claimed", "canceled"})
            )
            assert states[-1] == "claimed", (point, states)
            assert rec["state"] == "succeeded" and _lost(l2, payment_hash) == 0, (point, rec)
            gateway -= RECEIVE_MSAT
            user += RECEIVE_MSAT
        elif outcome == NOTHING_FUNDED:
            assert rec["state"] == "failed", (point, rec)
            assert "plugin was down" in rec["error"] and _lost(l2, payment_hash) == 0, (point, rec)
        else:
            # The receiver's contract was funded and its preimage decrypted: the official client
            # claims it; the gateway reports exactly that loss.
            states = runner.run(
                _states(client, "subscribe_ln_receive", created["operation_id"], {"claimed", "canceled"})
            )
            assert states[-1] == "claimed", (point, states)
            assert rec["state"] == "failed" and "never received" in rec["error"], (point, rec)
            assert _lost(l2, payment_hash) == RECEIVE_MSAT, (point, rec)
            gateway -= RECEIVE_MSAT
            user += RECEIVE_MSAT
            lost_total += RECEIVE_MSAT
        _ecash_becomes(l2, gateway, point)
        assert _balance(runner, client) == user, point
        assert l2.rpc.call("fedimint-summary")  # the plugin answers after every crash
    totals = l2.rpc.call("fedimint-export", {"format": "json"})["totals"]
    assert totals["receive"]["lost_msat"] == lost_total >= 2 * RECEIVE_MSAT
    assert _ecash(l2) + user == GATEWAY_ECASH  # every msat is the gateway's or the user's


# ----- sends: our own client code ------------------------------------------------------------


class Sender:
    """A federation user paying through the gateway: funds outgoing contracts with faucet notes."""

    def __init__(self, invite: str, admin_url: str) -> None:
        self._invite = invite
        self._admin = admin_url
        self._config: ClientConfig | None = None

    async def _config_and(self, session: aiohttp.ClientSession) -> ClientConfig:
        if self._config is None:
            self._config = await bootstrap_client_config(parse_invite_code(self._invite), session)
        return self._config

    async def _load(self) -> None:
        async with aiohttp.ClientSession() as session:
            await self._config_and(session)

    async def _ask(self, method: str, params: object = None) -> object:
        async with aiohttp.ClientSession() as session:
            config = await self._config_and(session)
            api = FederationApi.from_config(config, session)
            try:
                return await api.threshold_request(method, params)
            finally:
                await api.close()

    def _ln(self) -> int:
        assert self._config is not None
        module = self._config.module_by_kind(LN_KIND)
        assert module is not None
        return module.instance_id

    def gateway_key(self) -> bytes:
        asyncio.run(self._load())
        gateways = asyncio.run(self._ask(f"module_{self._ln()}_list_gateways"))
        assert isinstance(gateways, list) and len(gateways) == 1
        return bytes.fromhex(gateways[0]["info"]["gateway_redeem_key"])

    def fund_outgoing(self, gateway_key: bytes, payment_hash: bytes, amount: int) -> str:
        """Fund an outgoing contract of `amount` msat for `payment_hash`, locked to the gateway."""

        async def run() -> str:
            async with aiohttp.ClientSession() as session:
                config = await self._config_and(session)
                api = FederationApi.from_config(config, session)
                try:
                    height = await api.threshold_request(f"module_{self._ln()}_block_count")
                    assert isinstance(height, int)
                    refund = secrets.token_bytes(32)
                    from coincurve import PrivateKey

                    contract = lc.OutgoingContract(
                        payment_hash, gateway_key, height + 1000, PrivateKey(refund).public_key.format()
                    )
                    notes = await faucet_notes(session, self._admin, config, amount)
                    mint = config.module_by_kind(MINT_KIND)
                    assert mint is not None
                    items = [
                        ModuleItem(
                            mint.instance_id,
                            encode(lambda w, n=n: write_mint_input(w, mint_input(n.amount, n.note))),
                        )
                        for n in notes.notes
                    ]
                    out = ModuleItem(self._ln(), ln_output_bytes(ContractOutput(amount, contract)))
                    tx = Transaction.signed(
                        items, [out], secrets.token_bytes(8), [n.note.spend_key for n in notes.notes]
                    )
                    assert (await submit_transaction(api, tx)).accepted
                    return contract.contract_id().hex()
                finally:
                    await api.close()

        return asyncio.run(run())

    def account(self, contract_id: str) -> lc.ContractAccount:
        answer = asyncio.run(self._ask(f"module_{self._ln()}_account", contract_id))
        return account_from_json(answer)


def _pay_request(api_url: str, federation_id: str, contract_id: str, invoice: str) -> Any:
    async def run() -> Any:
        body = {"federation_id": federation_id, "contract_id": contract_id, "invoice": invoice}
        url = f"{api_url.rstrip('/')}/v1/pay_invoice"
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
            return await resp.json()

    return asyncio.run(run())


def test_lnv1_send_crash_matrix_with_our_client(
    node_factory: Any,
    gw_opts: Any,
    fedimint_devfed: dict[str, Any],
    executor: Any,
) -> None:
    fees = {"fedimint-gw-fee-base-msat": 1000, "fedimint-gw-fee-ppm": 1000}
    l2, l3 = node_factory.line_graph(
        2,
        opts=[crashing_opts(gw_opts, **fees), {"may_reconnect": True}],
        wait_for_announce=True,
        fundamount=10**7,
    )
    invite = fedimint_devfed["invite_code"]
    fid = l2.rpc.call("fedimint-connect", {"invite_code": invite})["federation_id"]
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    sender = Sender(invite, fedimint_devfed["admin_url"])
    key = sender.gateway_key()
    gateway = 0
    steps = [(p, True) for p in SEND_PAID_STEPS] + [(p, False) for p in SEND_REFUNDED_STEPS]
    for n, (point, routable) in enumerate(steps):
        amount = 20_000 + n * 1000
        contract_amount = amount + 1000 + amount // 1000  # the invoice plus the gateway's fee
        label = f"crash-{n}"
        invoice = l3.rpc.invoice(amount, label, point)["bolt11"] if routable else unroutable_invoice(amount)
        payment_hash = l3.rpc.decode(invoice)["payment_hash"]
        contract_id = sender.fund_outgoing(key, bytes.fromhex(payment_hash), contract_amount)
        _reconnected(l2, l3)
        crash_at(
            l2,
            point,
            lambda inv=invoice, cid=contract_id: executor.submit(_pay_request, api_url, fid, cid, inv),
        )
        rec = _one(l2, "send", payment_hash, "succeeded" if routable else "refunded")
        account = sender.account(contract_id)
        assert isinstance(account.contract, lc.OutgoingContract)
        if routable:
            assert rec["state"] == "succeeded", (point, rec)
            [inv] = l3.rpc.listinvoices(label)["invoices"]
            assert inv["status"] == "paid" and inv["amount_received_msat"] == amount, point
            parts = l2.rpc.listsendpays(payment_hash=payment_hash)["payments"]
            assert sum(p["amount_msat"] for p in parts if p["status"] == "complete") == amount, point
            assert account.amount == 0 and not account.contract.cancelled, point  # claimed once
            [done] = [p for p in parts if p["status"] == "complete"]
            assert hashlib.sha256(bytes.fromhex(done["payment_preimage"])).hexdigest() == payment_hash
            gateway += contract_amount
        else:
            assert rec["state"] == "refunded", (point, rec)
            assert not l2.rpc.listsendpays(payment_hash=payment_hash)["payments"] or all(
                p["status"] == "failed" for p in l2.rpc.listsendpays(payment_hash=payment_hash)["payments"]
            )
            # Cancelled, the contract's money intact for its owner's refund.
            assert account.contract.cancelled and account.amount == contract_amount, point
        assert _lost(l2, payment_hash) == 0, (point, rec)
        _ecash_becomes(l2, gateway, point)
    assert [p["state"] for p in _payments(l2, "send")].count("succeeded") == len(SEND_PAID_STEPS)


# ----- LNv2: our own LNv2 wallet (tests/support/lnv2_wallet.py) --------------------------------

LNV2_RECEIVE_STEPS = (
    ("receive:registered", NOTHING_FUNDED),
    ("receive:htlc_held", NOTHING_FUNDED),
    ("ecash:lnv2_fund:prepared", NOTHING_FUNDED),
    ("ecash:lnv2_fund:done", FUNDED_PAID_OR_LOST),
    ("receive:funded", FUNDED_AND_LOST),
    # Killed between writing the preimage and answering `resolve`: lightningd fails the
    # final-hop HTLC and the receiver claims; the receive stays `resolving` until lightningd
    # shows the HTLC removed with no channel credit, and is then recorded as the loss.
    ("receive:succeeded", FUNDED_AND_LOST),
)
LNV2_SEND_PAID_STEPS = (
    "send:paying",
    "send:claiming",
    "ecash:lnv2_claim:prepared",
    "ecash:lnv2_claim:done",
    "send:succeeded",
)
LNV2_SEND_FORFEIT_STEPS = ("send:cancelling", "send:refunded")


class Lnv2User:
    """Our LNv2 wallet against a devfed process, each call on a session of its own."""

    def __init__(self, invite: str, admin_url: str) -> None:
        from types import SimpleNamespace

        from tests.support.lnv2_wallet import secret_key

        async def load() -> ClientConfig:
            async with aiohttp.ClientSession() as session:
                return await bootstrap_client_config(parse_invite_code(invite), session)

        self.config = asyncio.run(load())
        self._fm = SimpleNamespace(admin_url=admin_url, federation=SimpleNamespace(client_config=self.config))
        self.key = secret_key()

    def run(self, action: Any) -> Any:
        """`await action(wallet)` with a wallet (our key) on a fresh session."""
        from tests.support.lnv2_wallet import Lnv2Wallet

        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                api = FederationApi.from_config(self.config, session)
                try:
                    wallet = Lnv2Wallet(self._fm, api, session)  # type: ignore[arg-type]
                    wallet.key = self.key
                    return await action(wallet, api)
                finally:
                    await api.close()

        return asyncio.run(go())


def _post(url: str, body: object) -> Any:
    async def run() -> Any:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
            return await resp.json()

    return asyncio.run(run())


def test_lnv2_crash_matrix_with_our_wallet(
    node_factory: Any, gw_opts: Any, lnv2_devfed: dict[str, Any], executor: Any
) -> None:
    import time

    from fedimint_gw.fedimint.lnv2 import api as lnv2_api
    from fedimint_gw.fedimint.lnv2 import items
    from fedimint_gw.fedimint.lnv2.keys import sign_schnorr

    fees0 = {"fedimint-gw-fee-base-msat": 0, "fedimint-gw-fee-ppm": 0}
    l1, l2, l3 = node_factory.line_graph(
        3,
        opts=[{"may_reconnect": True}, crashing_opts(gw_opts, **fees0), {"may_reconnect": True}],
        wait_for_announce=True,
        fundamount=10**7,
    )
    invite, admin = lnv2_devfed["invite_code"], lnv2_devfed["admin_url"]
    joined = l2.rpc.call("fedimint-connect", {"invite_code": invite})
    assert joined["adapter"] == "fedimint-lnv2", joined
    fid = joined["federation_id"]
    l2.rpc.call(
        "fedimint-ecash-receive",
        {"federation_id": fid, "notes": asyncio.run(_faucet_oob(invite, admin, GATEWAY_ECASH))},
    )
    api_url = l2.rpc.call("fedimint-info")["api_url"].rstrip("/")
    routing = _post(f"{api_url}/routing_info", fid)
    gateway_pk = bytes.fromhex(routing["module_public_key"])
    user = Lnv2User(invite, admin)
    gateway, lost_total = GATEWAY_ECASH, 0

    # Receives: the user's incoming contract, an invoice of l2's node, paid by l1.
    for point, outcome in LNV2_RECEIVE_STEPS:
        preimage = secrets.token_bytes(32)
        contract = user.run(
            lambda w, _api, p=preimage: _sync(
                w.incoming_contract(gateway_pk, RECEIVE_MSAT, int(time.time()) + 3600, p)
            )
        )
        body = {
            "federation_id": fid,
            "contract": contract.to_json(),
            "amount": RECEIVE_MSAT,
            "description": {"Direct": point},
            "expiry_secs": 3600,
        }
        if point == "receive:registered":
            crash_at(l2, point, lambda b=body: executor.submit(_post, f"{api_url}/create_bolt11_invoice", b))
            assert _payments(l2, "receive") == [] or all(
                p["state"] == "registered" for p in _payments(l2, "receive")
            )
            _ecash_becomes(l2, gateway, point)
            continue
        invoice = _post(f"{api_url}/create_bolt11_invoice", body)
        assert isinstance(invoice, str), invoice
        payment_hash = hashlib.sha256(preimage).hexdigest()
        _reconnected(l1, l2)
        pay = crash_at(
            l2,
            point,
            lambda inv=invoice: executor.submit(l1.rpc.call, "xpay", {"invstring": inv, "retry_for": 1}),
        )
        paid = _payer_paid(pay)
        if outcome == FUNDED_PAID_OR_LOST:
            outcome = FUNDED_AND_PAID if paid else FUNDED_AND_LOST
        assert paid == (outcome == FUNDED_AND_PAID), (point, paid)
        rec = _one(l2, "receive", payment_hash, "succeeded" if paid else "failed", "refunded")
        assert rec["state"] == ("succeeded" if paid else "failed"), (point, rec)
        if outcome == NOTHING_FUNDED:
            assert _lost(l2, payment_hash) == 0, (point, rec)
        else:
            if paid:
                assert _lost(l2, payment_hash) == 0, (point, rec)
            else:
                assert "never received" in rec["error"], (point, rec)
                assert _lost(l2, payment_hash) == RECEIVE_MSAT, (point, rec)

            async def claim(w: Any, api: Any, c: Any = contract) -> bool:
                found = await lnv2_api.await_incoming_contract(
                    api, lnv2_instance(user), c.contract_id(), 2**40
                )
                agg = await lnv2_api.aggregate_decryption_key(api, lnv2_instance(user), w.config, c, found)
                return bool((await w.spend(items.IncomingInput(found, agg), RECEIVE_MSAT)).accepted)

            assert user.run(claim), point  # the receiver was paid (a loss unless the payer paid)
            gateway -= RECEIVE_MSAT
            lost_total += 0 if paid else RECEIVE_MSAT
        _ecash_becomes(l2, gateway, point)
    totals = l2.rpc.call("fedimint-export", {"format": "json"})["totals"]
    assert totals["receive"]["lost_msat"] == lost_total >= 2 * RECEIVE_MSAT

    # Sends: the user's outgoing contract pays l3's invoice (or an unroutable one) through l2.
    steps = [(p, True) for p in LNV2_SEND_PAID_STEPS] + [(p, False) for p in LNV2_SEND_FORFEIT_STEPS]
    for n, (point, routable) in enumerate(steps):
        amount = 20_000 + n * 1000
        label = f"lnv2-{n}"
        invoice = l3.rpc.invoice(amount, label, point)["bolt11"] if routable else unroutable_invoice(amount)
        payment_hash = l3.rpc.decode(invoice)["payment_hash"]

        async def fund(w: Any, _api: Any, h: str = payment_hash, a: int = amount) -> Any:
            contract = w.outgoing_contract(gateway_pk, a, 1000, bytes.fromhex(h))
            submitted, outpoint = await w.fund(contract, a)
            assert submitted.accepted
            return contract, outpoint

        contract, outpoint = user.run(fund)
        body = {
            "federation_id": fid,
            "outpoint": outpoint.to_json(),
            "contract": contract.to_json(),
            "invoice": {"Bolt11": invoice},
            "auth": sign_schnorr(user.key, items.invoice_auth_message(invoice)).hex(),
        }
        _reconnected(l2, l3)
        crash_at(l2, point, lambda b=body: executor.submit(_post, f"{api_url}/send_payment", b))
        rec = _one(l2, "send", payment_hash, "succeeded" if routable else "refunded")
        again = _post(f"{api_url}/send_payment", body)  # the user's client asks again after the crash
        if routable:
            assert again == {
                "Ok": list(bytes.fromhex(l3.rpc.listinvoices(label)["invoices"][0]["payment_preimage"]))
            }
            [inv] = l3.rpc.listinvoices(label)["invoices"]
            assert inv["status"] == "paid" and inv["amount_received_msat"] == amount, point
            parts = l2.rpc.listsendpays(payment_hash=payment_hash)["payments"]
            assert sum(p["amount_msat"] for p in parts if p["status"] == "complete") == amount, point
            gateway += amount
        else:
            forfeit = bytes.fromhex(str(again["Err"]))
            assert contract.verify_forfeit_signature(forfeit), point
            cancel = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, forfeit))

            async def refund(w: Any, _api: Any, c: Any = cancel, a: int = amount) -> bool:
                return bool((await w.spend(c, a)).accepted)

            assert user.run(refund), point  # the sender takes its money back at once
        assert _lost(l2, payment_hash) == 0, (point, rec)
        _ecash_becomes(l2, gateway, point)


def lnv2_instance(user: Lnv2User) -> int:
    from fedimint_gw.fedimint.lnv2.config import LNV2_KIND

    module = user.config.module_by_kind(LNV2_KIND)
    assert module is not None
    return module.instance_id


async def _sync(value: Any) -> Any:
    return value
