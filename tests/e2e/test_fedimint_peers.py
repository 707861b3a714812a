"""Fedimint-family federations across gateways: peer forwards (a user of gateway A pays an
invoice that ends in a federation on peer gateway B, no Lightning) and `fedimint-migrate` out of
and into a Fedimint-family federation (exchange with a peer serving both). Two in-process
gateways, each on its fake node; Fedimint federations joined with their `fed11` invites.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.fedimint.ln.contracts import preimage_of_key
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.services.liquidity.exchange import ExchangeService
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as peer_repo
from tests.e2e.conftest import Env
from tests.e2e.fedimint_helpers import (
    AMOUNT,
    bal,
    join,
    join_scid,
    lnv1_offer_invoice,
    lnv1_pay,
    lnv2_claim,
    lnv2_invoice,
    lnv2_send,
)
from tests.e2e.helpers import default_fee
from tests.support.lnv2_wallet import Lnv2Wallet

StartFedimint = Callable[[str, str], Awaitable[RunningFedimint]]


@pytest.fixture
async def fedimint(env: Env) -> AsyncIterator[StartFedimint]:
    """start(name, module): a devfed Fedimint federation serving mint + `ln` or `lnv2`."""
    running: list[RunningFedimint] = []

    async def start(name: str, module: str) -> RunningFedimint:
        params = FedimintParams(name=name, ln=module == "ln", lnv2=module == "lnv2")
        fm = await start_fedimint(env.tmp / name, params)
        running.append(fm)
        return fm

    yield start
    for fm in running:
        await fm.stop()


async def link(a: Env, b: Env) -> None:
    assert (await a.gateway.peer_add(b.node.node_id, b.api_url, 1_000_000))["status"] == "pending"
    assert (await b.gateway.peer_add(a.node.node_id, a.api_url, 1_000_000))["status"] == "active"
    await a.gateway.peers.hello(b.node.node_id)


async def ledger(e: Env, peer: Env) -> int:
    return await peer_repo.balance(e.gateway.db.conn, peer.node.node_id)


async def peer_records(e: Env) -> list[dict[str, Any]]:
    return [p for p in (await e.gateway.payments(None, None, 50, None))["payments"] if p["kind"] == "peer"]


async def assert_forwarded(a: Env, b: Env, payment_id: str, fee: int, forwarded: int, received: int) -> None:
    """A's record is a succeeded peer forward of the invoice's AMOUNT earning `fee`; B's is the
    inbound side (its amount what B's receiver got: `received`); the ledgers agree that A owes B
    `forwarded`; no node paid anything over Lightning."""
    await a.settled(payment_id.removeprefix("send:"))
    rec = await pay_repo.get(a.gateway.db.conn, payment_id)
    assert rec is not None and (rec.kind, rec.state) == (PaymentKind.PEER, PaymentState.SUCCEEDED), rec
    assert (rec.amount_msat, rec.fee_msat) == (AMOUNT, fee)
    [inbound] = await peer_records(b)
    assert (inbound["state"], inbound["direction"], inbound["amount_msat"]) == ("succeeded", "in", received)
    assert await ledger(a, b) == -forwarded and await ledger(b, a) == forwarded
    assert (await a.gateway.peers.check_ledger(b.node.node_id))["agreed"] is True
    assert a.node.pay_calls == [] and b.node.pay_calls == []


async def test_an_lnv2_user_of_a_pays_an_lnv1_receiver_of_b(
    env: Env, env_b: Env, fedimint: StartFedimint
) -> None:
    src_fm, dst_fm = await fedimint("fwd-lnv2", "lnv2"), await fedimint("fwd-ln", "ln")
    src = await join(env, src_fm, "fedimint-lnv2", 0)
    dst, scid = await join_scid(env_b, dst_fm, "fedimint-lnv1", 100_000)
    await link(env, env_b)
    # the invoice's route hint charges B's fees, as the official client's does (from the
    # gateway's registration): B needs them on top of the offer, or it refuses the forward
    invoice, offer, key = await lnv1_offer_invoice(env_b, dst_fm, scid, (2000, 3000))
    forwarded = AMOUNT + default_fee(AMOUNT)
    api = FederationApi.from_config(src_fm.federation.client_config, env.session)
    try:
        sender = Lnv2Wallet(src_fm, api, env.session)
        total = forwarded + default_fee(AMOUNT)  # plus A's fee
        payment_id, _ = await lnv2_send(env, src_fm, src, sender, invoice, total)
    finally:
        await api.close()
    await assert_forwarded(env, env_b, payment_id, default_fee(AMOUNT), forwarded, AMOUNT)
    ln = dst_fm.federation.ln
    assert ln is not None
    account = ln.store.account(offer.hash)
    assert account is not None and account.amount == AMOUNT  # the LNv1 receiver's to claim
    assert hashlib.sha256(preimage_of_key(key)).digest() == offer.hash
    assert await bal(src) == total  # A claimed the user's contract: AMOUNT + its fee
    assert await bal(dst) == 100_000 - AMOUNT  # B funded the offer; A owes B AMOUNT + B's fee


@pytest.mark.parametrize("src_module", ["ln", "lnv2"])
async def test_a_fedimint_user_of_a_pays_an_lnv2_receiver_of_b(
    env: Env, env_b: Env, fedimint: StartFedimint, src_module: str
) -> None:
    src_fm, dst_fm = await fedimint(f"fwd-{src_module}", src_module), await fedimint("fwd-lnv2-b", "lnv2")
    src = await join(env, src_fm, "fedimint-lnv1" if src_module == "ln" else "fedimint-lnv2", 0)
    dst = await join(env_b, dst_fm, "fedimint-lnv2", 100_000)
    await link(env, env_b)
    api = FederationApi.from_config(dst_fm.federation.client_config, env.session)
    src_api = FederationApi.from_config(src_fm.federation.client_config, env.session)
    try:
        receiver = Lnv2Wallet(dst_fm, api, env.session)
        invoice, preimage, contract = await lnv2_invoice(env_b, dst_fm, dst, receiver)
        paid = AMOUNT + default_fee(AMOUNT)
        if src_module == "ln":
            contract_id, answered = await lnv1_pay(env, src_fm, invoice, paid)
            assert answered == preimage
            payment_id = f"send:{contract_id}"
        else:
            sender = Lnv2Wallet(src_fm, src_api, env.session)
            payment_id, _ = await lnv2_send(env, src_fm, src, sender, invoice, paid)
        net = AMOUNT - default_fee(AMOUNT)  # the receiver's contract: B's receive fee is inside
        await assert_forwarded(env, env_b, payment_id, default_fee(AMOUNT), AMOUNT, net)
        await lnv2_claim(api, receiver, contract)  # the receiver: AMOUNT less B's receive fee
    finally:
        await api.close()
        await src_api.close()
    assert await bal(src) == paid
    assert await bal(dst) == 100_000 - net  # B earned its receive fee


# ----- migration --------------------------------------------------------------------------

PAIR_FEE = FeeSchedule(1000, 2000)  # what the peer charges for the migration's direction
MOVED = 100_000


@dataclass(frozen=True)
class Fed:
    federation_id: str
    fund: Callable[[Env, int], Awaitable[None]]


async def make_fed(env: Env, p: Env, fedimint: StartFedimint, kind: str, name: str) -> Fed:
    """A federation of `kind` (lnv1, lnv2: Fedimint family; v1, v2: devfed) both gateways joined."""
    if kind in ("lnv1", "lnv2"):
        fm = await fedimint(name, "ln" if kind == "lnv1" else "lnv2")

        async def fund_fm(e: Env, amount: int) -> None:
            notes = await faucet_notes(e.session, fm.admin_url, fm.federation.client_config, amount)
            client = e.gateway.federations.client(FederationId(fm.federation_id.hex))
            assert (await client.receive_ecash(notes.oob.encode())).value == amount

        for e in (env, p):
            await join(e, fm, f"fedimint-{kind}", 0)
        return Fed(fm.federation_id.hex, fund_fm)
    fed = await env.federation(name, (int(kind[1]),))
    async with p.session.post(f"{fed.admin_url}/admin/gateways", json={"url": p.api_url}) as r:
        r.raise_for_status()
    for e in (env, p):
        await e.gateway.federations.connect(fed.invite_code)

    async def fund_devfed(e: Env, amount: int) -> None:
        await e.fund_gateway(fed, amount)

    return Fed(fed.federation_id, fund_devfed)


async def balance(e: Env, fed: Fed) -> int:
    return (await e.gateway.federations.client(FederationId(fed.federation_id)).balance()).value


@pytest.mark.parametrize(("src_kind", "dst_kind"), [("lnv1", "v2"), ("v1", "lnv2"), ("lnv2", "lnv1")])
async def test_migration_out_of_and_into_fedimint_federations(
    env: Env, env_b: Env, fedimint: StartFedimint, src_kind: str, dst_kind: str
) -> None:
    g, p = env, env_b
    fed_a = await make_fed(g, p, fedimint, src_kind, f"mig-a-{src_kind}")
    fed_b = await make_fed(g, p, fedimint, dst_kind, f"mig-b-{dst_kind}")
    await fed_a.fund(g, 400_000)
    await fed_b.fund(p, 400_000)
    await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
    await link(g, p)

    result = await g.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, MOVED, None, None)

    fee = PAIR_FEE.fee(Msat(MOVED)).value
    assert result["state"] == "succeeded", result
    assert (result["moved_msat"], result["received_msat"], result["fee_msat"]) == (MOVED, MOVED - fee, fee)
    assert await balance(g, fed_a) == 400_000 - MOVED
    assert await balance(g, fed_b) == MOVED - fee
    assert await balance(p, fed_a) == MOVED
    assert await balance(p, fed_b) == 400_000 - (MOVED - fee)
    assert g.node.pay_calls == [] and p.node.pay_calls == []
    mine = [r for r in (await g.gateway.payments(None, None, 50, None))["payments"] if r["kind"] == "migrate"]
    assert [(r["state"], r["direction"], r["fee_msat"]) for r in mine] == [("succeeded", "out", fee)]
    assert (mine[0]["federation_id"], mine[0]["target_federation_id"]) == (
        fed_a.federation_id,
        fed_b.federation_id,
    )
    theirs = [
        r for r in (await p.gateway.payments(None, None, 50, None))["payments"] if r["kind"] == "migrate"
    ]
    assert [(r["state"], r["direction"], r["fee_msat"]) for r in theirs] == [("succeeded", "in", fee)]
    assert (await g.gateway.summary(None, None))["kinds"]["migrate"]["fees_paid_msat"] == fee
    assert (await p.gateway.summary(None, None))["kinds"]["migrate"]["fees_earned_msat"] == fee


async def mint_fee_federations(g: Env, p: Env, into_fedimint: bool) -> tuple[RunningFedimint, Fed, Fed]:
    """(source, target): a Fedimint LNv2 federation charging upstream's default mint fee (100
    msat per note input and output) and a devfed v2 one, in that order unless `into_fedimint`;
    both gateways joined, G holding 400,000 msat in the source and P in the target."""
    fm = await start_fedimint(g.tmp / "fees", FedimintParams(name="fees", lnv2=True, fee_base_msat=100))
    v2 = await g.federation("fees-v2", (2,))
    async with p.session.post(f"{v2.admin_url}/admin/gateways", json={"url": p.api_url}) as r:
        r.raise_for_status()
    for e in (g, p):
        await join(e, fm, "fedimint-lnv2", 0)
        await e.gateway.federations.connect(v2.invite_code)

    async def fund_fm(e: Env, amount: int) -> None:
        notes = await faucet_notes(e.session, fm.admin_url, fm.federation.client_config, amount)
        await e.gateway.federations.client(FederationId(fm.federation_id.hex)).receive_ecash(
            notes.oob.encode()
        )

    async def fund_v2(e: Env, amount: int) -> None:
        await e.fund_gateway(v2, amount)

    feds = (Fed(fm.federation_id.hex, fund_fm), Fed(v2.federation_id, fund_v2))
    source, target = reversed(feds) if into_fedimint else feds
    await source.fund(g, 400_000)
    await target.fund(p, 400_000)
    return fm, source, target


@pytest.mark.parametrize("into_fedimint", [False, True], ids=["out-of-fedimint", "into-fedimint"])
async def test_migration_with_mint_fees_records_what_it_really_cost(
    env: Env, env_b: Env, into_fedimint: bool
) -> None:
    """Upstream's default mint fee is 100 msat per note: an honest peer must not look short (out
    of such a federation it did, before the quote knew per-note fees), and both gateways' records
    say what the exchange really cost or earned them."""
    g, p = env, env_b
    fm, fed_a, fed_b = await mint_fee_federations(g, p, into_fedimint)
    try:
        await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
        await link(g, p)
        before = [await balance(e, f) for e in (g, p) for f in (fed_a, fed_b)]
        result = await g.gateway.migrations.migrate(
            fed_a.federation_id, fed_b.federation_id, MOVED, None, None
        )
        after = [await balance(e, f) for e in (g, p) for f in (fed_a, fed_b)]
        assert result["state"] == "succeeded", result
        assert "lost_msat" not in result and result["moved_msat"] == MOVED
        g_a, g_b, p_a, p_b = (x - y for x, y in zip(after, before, strict=True))
        # G's fee is exactly what it lost across both federations; it received what arrived in B.
        assert result["received_msat"] == g_b
        assert result["fee_msat"] == -g_a - g_b
        # The mint fees are real: G paid more than the peer's pair fee.
        assert result["fee_msat"] > PAIR_FEE.fee(Msat(MOVED)).value
        theirs = [
            r for r in (await p.gateway.payments(None, None, 50, None))["payments"] if r["kind"] == "migrate"
        ]
        assert [(r["state"], r["direction"]) for r in theirs] == [("succeeded", "in")]
        # P's recorded earning is exactly what it gained across both federations.
        assert theirs[0]["fee_msat"] == p_a + p_b
    finally:
        await fm.stop()


async def test_a_peer_paying_one_msat_short_is_caught_in_a_federation_with_mint_fees(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quote now allows for the mint's per-note fees, and only for them: a peer keeping a
    single msat more than its quote is still taken for short-paying (and the shortfall recorded)."""
    g, p = env, env_b
    fm, fed_a, fed_b = await mint_fee_federations(g, p, into_fedimint=False)

    async def shaving_give(self: ExchangeService, rec: Any, *a: Any) -> Any:
        give = rec.amount_msat - int(rec.data["fee_quoted_msat"]) - 1
        target = FederationId(str(rec.target_federation_id))
        notes = await self._ctx.federations.client(target).spend_ecash(Msat(give), "shaving")
        return await self._ctx.advance(
            rec, PaymentState.SUCCEEDED, data={"notes_out": notes.notes, "given_msat": give}
        )

    try:
        await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
        await link(g, p)
        monkeypatch.setattr(ExchangeService, "_give", shaving_give)
        result = await g.gateway.migrations.migrate(
            fed_a.federation_id, fed_b.federation_id, MOVED, None, None
        )
        reissue = (
            await g.gateway.federations.client(FederationId(fed_a.federation_id)).ecash_fees(Msat(MOVED))
        ).reissue
        assert (
            reissue.value > 0
        )  # the peer's reissue of our notes pays mint fees, and the quote allows for them
        quoted = MOVED - PAIR_FEE.fee(Msat(MOVED)).value - reissue.value
        assert result["state"] == "failed" and f"quoted at {quoted} msat" in result["error"], result
        assert result["lost_msat"] == 1
        assert any(lvl == "error" and "quoted at" in m for lvl, m in g.logs)
    finally:
        await fm.stop()


SPLIT_EXTRA = 5_000  # what a split into many small notes adds to their reissue (100 msat a note)


def _split_notes(monkeypatch: pytest.MonkeyPatch, e: Env, fid: str) -> None:
    """`e` now sees notes of `fid` as split into many small notes: worth the same, but costing
    SPLIT_EXTRA msat more to reissue than a spend's few notes (what a dishonest peer can hand
    over, since the total alone looks right)."""
    client = e.gateway.federations.client(FederationId(fid))
    real = client.inspect_ecash

    async def inspect(notes: str) -> Any:
        summary = await real(notes)
        return dataclasses.replace(summary, reissue_fee=Msat(summary.reissue_fee.value + SPLIT_EXTRA))

    monkeypatch.setattr(client, "inspect_ecash", inspect)


async def test_a_peer_paying_in_notes_dear_to_reissue_is_caught(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the migrating gateway checked only the total of the peer's notes. Notes
    split small cost more mint fees to reissue; that difference was ours to lose, unnoticed."""
    g, p = env, env_b
    fm, fed_a, fed_b = await mint_fee_federations(g, p, into_fedimint=True)
    try:
        await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
        await link(g, p)
        _split_notes(monkeypatch, g, fed_b.federation_id)
        result = await g.gateway.migrations.migrate(
            fed_a.federation_id, fed_b.federation_id, MOVED, None, None
        )
        assert result["state"] == "failed" and "to reissue" in result["error"], result
        assert result["lost_msat"] == SPLIT_EXTRA
        assert any(lvl == "error" and "to reissue" in m for lvl, m in g.logs)
    finally:
        await fm.stop()


async def test_an_exchange_offered_in_notes_dear_to_reissue_is_refused(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer side of the same: notes worth the amount but dear to reissue are refused before
    anything is given (the migrating gateway gets its notes back: nothing is lost)."""
    g, p = env, env_b
    fm, fed_a, fed_b = await mint_fee_federations(g, p, into_fedimint=False)
    try:
        await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
        await link(g, p)
        given_before = await balance(p, fed_b)
        _split_notes(monkeypatch, p, fed_a.federation_id)
        result = await g.gateway.migrations.migrate(
            fed_a.federation_id, fed_b.federation_id, MOVED, None, None
        )
        assert result["state"] == "refunded" and "reissuing these notes costs" in result["error"], result
        assert result.get("lost_msat", 0) == 0 and result["received_msat"] == 0, result
        assert await balance(p, fed_b) == given_before  # the peer gave nothing
    finally:
        await fm.stop()
