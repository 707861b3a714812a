"""Operations of the Fedimint family a crash cut short (issue 14, finding 16; fundings resumed
without their flow): both adapters (LNv1, LNv2) as the links build them, "crashed" by dropping
the adapter after an operation is stored (and maybe submitted) and before it completes, then
restarted on the same database with `resume_operations`, as `federations/links.py` does at
connect. Every operation ends: its notes come back or its outputs are collected, never both,
never twice. No mint fees here, so every balance is exact."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import VOLATILE_PREFIX, ApiVersion
from fedimint_gw.federation.fedimint import lnv1, lnv2_factory, module_ops
from fedimint_gw.federation.fedimint.lnv2 import FUND
from fedimint_gw.federation.fedimint.mint import MintClient, receive_operation_id
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOperation, MintOpState
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.ln.contracts import OutgoingContract
from fedimint_gw.fedimint.ln.items import (
    CancelOutgoing,
    ContractOutput,
    LightningInputV0,
    ln_input_bytes,
    ln_output_bytes,
)
from fedimint_gw.fedimint.lnv2.transactions import lnv2_output
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input
from fedimint_gw.fedimint.mint_types import write_mint_input
from fedimint_gw.fedimint.oob import parse_oob_notes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from fedimint_gw.services import gateway as gateway_module
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store.db import Database
from tests.e2e.conftest import Env, wait_until
from tests.e2e.fedimint_helpers import AMOUNT, join, lnv2_invoice
from tests.e2e.helpers import Crash
from tests.support.fake_node import final_payload
from tests.support.lnv2_wallet import Lnv2Wallet

FUNDS = 50_000
SECRET = bytes([5]) * 32
FAMILIES = {
    "lnv1": (FedimintParams(name="e2e-recover-ln", ln=True), lnv1.FACTORY),
    "lnv2": (FedimintParams(name="e2e-recover-lnv2", lnv2=True), lnv2_factory.FACTORY),
}


@dataclass
class Gateways:
    """Adapters on one database: `start()` again is the gateway after a crash."""

    fm: RunningFedimint
    session: aiohttp.ClientSession
    start: Callable[[], Awaitable[object]]

    async def submit(self, tx: Transaction) -> bool:
        api = FederationApi.from_config(self.fm.federation.client_config, self.session)
        try:
            return (await submit_transaction(api, tx)).accepted
        finally:
            await api.close()

    def sessions(self) -> int:
        return self.fm.federation.store.session_count()


def notes_of(client: object) -> FedimintNotes:
    found = client._notes  # type: ignore[attr-defined]  # the adapter's own store, as a crash leaves it
    assert isinstance(found, FedimintNotes)
    return found


async def balance(client: object) -> int:
    return (await client.balance()).value  # type: ignore[attr-defined]


@pytest.fixture(params=sorted(FAMILIES))
async def gws(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gateways]:
    params, factory = FAMILIES[request.param]
    fm = await start_fedimint(tmp_path / "fm", params)
    db = await Database.open(str(tmp_path / "gw.sqlite"))
    made: list[object] = []
    async with aiohttp.ClientSession() as session:
        raw = await factory.fetch_config(session, fm.guardian_urls[0], 5.0)

        async def start() -> object:
            ctx = AdapterContext(
                federation_id=fm.federation_id.hex,
                config=raw,
                guardian_urls=fm.guardian_urls,
                api_version=ApiVersion(factory.major, 0),
                session=session,
                clock=SystemClock(),
                wallet=NoteWallet(db, fm.federation_id.hex, SystemClock()),
                gateway_secret=SECRET,
                request_timeout=5.0,
            )
            client = factory.create(ctx)
            made.append(client)
            return client

        yield Gateways(fm, session, start)
        for client in made:
            await client.close()  # type: ignore[attr-defined]
    await db.close()
    await fm.stop()


async def funded(gws: Gateways) -> object:
    client = await gws.start()
    got = await faucet_notes(gws.session, gws.fm.admin_url, gws.fm.federation.client_config, FUNDS)
    assert (await client.receive_ecash(got.oob.encode())).value == FUNDS  # type: ignore[attr-defined]
    return client


async def test_a_retried_ecash_send_cut_short_is_finished_once_and_spends_once(gws: Gateways) -> None:
    before = await funded(gws)
    notes = notes_of(before)
    await notes.prepare_spend("cli-id-a", Msat(4_000))  # crash: stored, never sent
    sent = await notes.prepare_spend("cli-id-b", Msat(3_000))  # crash: accepted, notes never collected
    assert await gws.submit(sent.tx)
    sessions = gws.sessions()
    after = await gws.start()
    assert await after.resume_operations() == 2  # type: ignore[attr-defined]
    assert gws.sessions() == sessions + 1  # only the one never sent was submitted now
    assert await balance(after) == FUNDS - 7_000
    for op_id, amount in (("cli-id-a", 4_000), ("cli-id-b", 3_000)):
        again = await after.spend_ecash(Msat(amount), op_id)  # type: ignore[attr-defined]
        done = await notes.get(op_id)
        assert done is not None and done.state is MintOpState.DONE
        assert again.notes == done.result["oob"] and again.amount == Msat(amount)
    assert await balance(after) == FUNDS - 7_000  # the retries spent nothing more
    assert gws.sessions() == sessions + 1
    assert await after.resume_operations() == 0  # type: ignore[attr-defined]


async def test_a_volatile_ecash_send_cut_short_gives_every_note_back(gws: Gateways) -> None:
    before = await funded(gws)
    notes = notes_of(before)
    never = await notes.prepare_spend(f"{VOLATILE_PREFIX}cli-1", Msat(4_000))  # stored, never sent
    landed = await notes.prepare_spend(f"{VOLATILE_PREFIX}cli-2", Msat(3_000))  # accepted, never collected
    assert await gws.submit(landed.tx)
    after = await gws.start()
    assert await after.resume_operations() == 2  # type: ignore[attr-defined]
    assert await balance(after) == FUNDS  # nobody can ask for those notes: they are ours again
    first = await notes.get(never.operation_id)
    assert first is not None and first.state is MintOpState.FAILED
    assert not await gws.submit(never.tx)  # its inputs are spent by the release: it can never land
    second = await notes.get(landed.operation_id)
    assert second is not None and second.state is MintOpState.DONE
    reissue = await notes.get(str(second.result["reclaimed"]))  # its handed-out notes, reissued to us
    assert reissue is not None and reissue.state is MintOpState.DONE
    assert reissue.result["received_msat"] == 3_000
    assert await after.resume_operations() == 0  # type: ignore[attr-defined]
    assert await balance(after) == FUNDS


async def test_an_ecash_receive_cut_short_is_finished(gws: Gateways) -> None:
    before = await funded(gws)
    got = await faucet_notes(gws.session, gws.fm.admin_url, gws.fm.federation.client_config, 6_000)
    await notes_of(before).prepare_receive(receive_operation_id(got.oob), got.oob)  # crash: never sent
    after = await gws.start()
    assert (await after.inspect_ecash(got.oob.encode())).received  # type: ignore[attr-defined]
    assert await after.resume_operations() == 1  # type: ignore[attr-defined]
    assert await balance(after) == FUNDS + 6_000


# LNv1 fundings need an offer: tests/e2e/test_fedimint_ln.py covers them.
@pytest.mark.parametrize("gws", ["lnv2"], indirect=True)
async def test_a_funding_never_accepted_is_left_to_its_flow_and_released_by_it(gws: Gateways) -> None:
    before = await funded(gws)
    more = await faucet_notes(gws.session, gws.fm.admin_url, gws.fm.federation.client_config, 30_000)
    assert (await before.receive_ecash(more.oob.encode())).value == 30_000  # type: ignore[attr-defined]
    api = FederationApi.from_config(gws.fm.federation.client_config, gws.session)
    user = Lnv2Wallet(gws.fm, api, gws.session)
    pubkey = bytes.fromhex(before.gateway_pubkey)  # type: ignore[attr-defined]
    lost = user.incoming_contract(pubkey, 20_000, int(time.time()) + 3600, secrets.token_bytes(32))
    landed = user.incoming_contract(pubkey, 10_000, int(time.time()) + 3600, secrets.token_bytes(32))
    notes = notes_of(before)
    fund = await notes.prepare_fund(  # crash: stored, never sent (the HTLC may be gone)
        "recv-lost", FUND, Msat(20_000), Msat(0), lnv2_output(LNV2_INSTANCE_ID, lost)
    )
    accepted = await notes.prepare_fund(  # crash: accepted, change never collected
        "recv-landed", FUND, Msat(10_000), Msat(0), lnv2_output(LNV2_INSTANCE_ID, landed)
    )
    assert await gws.submit(accepted.tx)
    sessions = gws.sessions()
    after = await gws.start()
    assert await after.resume_operations() == 1  # type: ignore[attr-defined]
    assert gws.sessions() == sessions  # the funding never accepted was not submitted
    stored = await notes.get("recv-lost")
    assert stored is not None and stored.state is MintOpState.PREPARED  # its flow decides
    assert await after.abandon_funding("recv-landed") is False  # type: ignore[attr-defined]
    assert await after.abandon_funding("recv-lost") is True  # type: ignore[attr-defined]
    assert not await gws.submit(fund.tx)  # the release spent its notes: it can never land
    assert await balance(after) == FUNDS + 30_000 - 10_000
    assert await after.resume_operations() == 0  # type: ignore[attr-defined]
    await api.close()


async def test_an_lnv2_receive_killed_before_its_funding_was_sent_pays_nobody_when_its_htlc_is_gone(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1 through the services: the funding is stored, the plugin dies before sending it,
    lightningd fails the HTLC meanwhile. At the restart neither the adapter's recovery nor the
    receive's own recovery may fund the contract (the receiver would be paid for nothing): the
    receive fails, every note of the gateway is back, and the contract can never be funded."""
    fm = await start_fedimint(env.tmp / "fm-orphan", FedimintParams(name="e2e-orphan-lnv2", lnv2=True))
    try:
        gw = await join(env, fm, "fedimint-lnv2", FUNDS)
        api = FederationApi.from_config(fm.federation.client_config, env.session)
        invoice, _preimage, contract = await lnv2_invoice(env, fm, gw, Lnv2Wallet(fm, api, env.session))
        inv = bolt11.decode(invoice)
        real_run = MintClient.run

        async def die_before_sending(self: MintClient, op: MintOperation, **kw: bool) -> MintOperation:
            if op.kind == FUND:
                raise Crash()
            return await real_run(self, op, **kw)

        monkeypatch.setattr(MintClient, "run", die_before_sending)
        height = env.node.block_height
        secret = (inv.payment_secret or b"").hex()
        with contextlib.suppress(Crash):
            await env.htlc(
                *final_payload(inv.payment_hash.hex(), secret, AMOUNT, AMOUNT, height + 50, height, 1)
            )
        monkeypatch.undo()
        fid = FederationId(fm.federation_id.hex)
        [fund] = await notes_of(env.gateway.federations.client(fid)).unfinished((FUND,))
        monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
        env.node.held.clear()  # lightningd failed the HTLC when the plugin died; it is not replayed
        sessions = fm.federation.store.session_count()
        await env.restart_gateway()

        async def settled() -> bool:
            recs = await pay_repo.by_hash(env.gateway.db.conn, inv.payment_hash.hex(), PaymentKind.RECEIVE)
            return bool(recs) and all(r.state.terminal for r in recs)

        await wait_until(settled, timeout=60)
        [rec] = await pay_repo.by_hash(env.gateway.db.conn, inv.payment_hash.hex(), PaymentKind.RECEIVE)
        assert rec.state is PaymentState.FAILED and "never received" not in str(rec.error)
        client = env.gateway.federations.client(fid)
        assert await balance(client) == FUNDS  # the release brought every reserved note back
        assert fm.federation.store.session_count() == sessions + 1  # the release, and nothing else
        lnv2 = fm.federation.lnv2
        assert lnv2 is not None and lnv2.incoming_outpoint(contract.contract_id()) is None  # never funded
        assert not (await submit_transaction(api, fund.tx)).accepted  # and never can be
        await api.close()
    finally:
        await fm.stop()


async def lnv1_outgoing(gws: Gateways, gateway_key: bytes, payment_hash: bytes, amount: int) -> bytes:
    """A user's LNv1 outgoing contract locked to `gateway_key`, funded with faucet notes."""
    contract = OutgoingContract(payment_hash, gateway_key, 10_000, PrivateKey().public_key.format())
    got = await faucet_notes(gws.session, gws.fm.admin_url, gws.fm.federation.client_config, amount)
    inputs = [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, n=n: write_mint_input(w, mint_input(n.amount, n.note))))
        for n in got.notes
    ]
    out = ModuleItem(LN_INSTANCE_ID, ln_output_bytes(ContractOutput(amount, contract)))
    tx = Transaction.signed(inputs, [out], secrets.token_bytes(8), [n.note.spend_key for n in got.notes])
    assert await gws.submit(tx)
    return contract.contract_id()


# LNv2 claims: test_fedimint_lnv2_gateway.py; LNv2 cancels move no money (forfeit).
@pytest.mark.parametrize("gws", ["lnv1"], indirect=True)
async def test_lnv1_claims_and_cancels_cut_short_are_finished(gws: Gateways) -> None:
    before = await funded(gws)
    key = bytes.fromhex(before.gateway_pubkey)  # type: ignore[attr-defined]
    preimage = secrets.token_bytes(32)
    claimed = await lnv1_outgoing(gws, key, hashlib.sha256(preimage).digest(), 12_000)
    cancelled = await lnv1_outgoing(gws, key, secrets.token_bytes(32), 9_000)
    notes = notes_of(before)
    claim = LightningInputV0(claimed, 12_000, preimage)  # crash: the claim stored, never sent
    await module_ops.prepare_redeem(
        notes, f"ln-claim:{claimed.hex()}", 12_000, ModuleItem(LN_INSTANCE_ID, ln_input_bytes(claim)), SECRET
    )
    message = OutgoingContract.cancellation_message  # crash: the cancel stored, never sent
    ln = gws.fm.federation.ln
    assert ln is not None
    account = ln.store.account(cancelled)
    assert account is not None and isinstance(account.contract, OutgoingContract)
    signature = PrivateKey(SECRET).sign_schnorr(message(account.contract))
    cancel = ModuleItem(LN_INSTANCE_ID, ln_output_bytes(CancelOutgoing(cancelled, signature)))
    await module_ops.prepare_plain(notes, f"ln-cancel:{cancelled.hex()}", [cancel])
    after = await gws.start()
    assert await after.resume_operations() == 2  # type: ignore[attr-defined]
    assert await balance(after) == FUNDS + 12_000  # claimed once
    assert (await after.claim_outgoing(claimed.hex(), preimage)).value == 12_000  # type: ignore[attr-defined]
    assert await balance(after) == FUNDS + 12_000  # the flow's retry takes nothing twice
    account = ln.store.account(cancelled)
    assert account is not None and isinstance(account.contract, OutgoingContract)
    assert account.contract.cancelled and account.amount == 9_000  # the user may refund it now
    assert await after.resume_operations() == 0  # type: ignore[attr-defined]
