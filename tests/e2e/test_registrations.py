"""v2 invoice registrations cannot be abused by strangers (issue 15, finding 1): an HTLC that
does not match its registration is passed on, hashes lightningd knows are refused,
registrations expire and are pruned, and identical concurrent requests get one invoice."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.wallet import Wallet
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.htlc import HtlcEvent
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import AlreadyExists
from fedimint_gw.lightning import bolt11
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.support.fake_node import final_payload

AMOUNT = 40_000
LONG_AGO = 86_400  # seconds: past the pruning grace (10 minutes)


async def _v2(env: Env, name: str) -> tuple[str, Wallet]:
    fed = await env.federation(name, (2,))
    await env.gateway.federations.connect(fed.invite_code)
    return fed.federation_id, await env.wallet(fed, f"{name}-user")


async def _body(env: Env, user: Wallet, preimage: bytes, expiry_secs: int = 3600) -> dict[str, Any]:
    """A create_bolt11_invoice request for a contract paying to `preimage`'s hash."""
    info = await wallet_ln.routing_info(user, env.api_url)
    fee = info["receive_fee"]
    net = AMOUNT - int(fee["base_msat"]) - AMOUNT * int(fee["ppm"]) // 1_000_000
    height = await user.client.block_height()
    contract = wallet_ln.build_v2_contract(
        user, net, preimage, PrivateKey(), str(info["module_pubkey"]), height + 144
    )
    return {
        "federation_id": user.federation_id,
        "contract": contract,
        "amount_msat": AMOUNT,
        "description": "x",
        "expiry_secs": expiry_secs,
    }


def _final(payment_hash: str) -> HtlcEvent:
    return HtlcEvent.from_hook(*final_payload(payment_hash, "00" * 32, AMOUNT, AMOUNT, 300, 200))


async def _rows(env: Env) -> int:
    async with env.gateway.db.conn.execute("SELECT COUNT(*) FROM payments") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_htlcs_not_matching_their_registration_are_passed_on(env: Env) -> None:
    _, user = await _v2(env, "passon")
    preimage = secrets.token_bytes(32)
    answer = await env.gateway.public.create_bolt11_invoice(await _body(env, user, preimage))
    inv = bolt11.decode(answer["invoice"])
    h, secret, height = inv.payment_hash.hex(), (inv.payment_secret or b"").hex(), env.node.block_height
    rows = await _rows(env)
    for n, (sec, amount, total) in enumerate(
        [("00" * 32, AMOUNT, AMOUNT), (secret, AMOUNT - 1, AMOUNT - 1), (secret, AMOUNT // 2, AMOUNT)]
    ):
        got = await env.htlc(*final_payload(h, sec, amount, total, height + 50, height, 10 + n))
        assert got == {"result": "continue"}
    assert await _rows(env) == rows  # nothing recorded for HTLCs that were not ours
    reg = await pay_repo.get(env.gateway.db.conn, f"v2:{h}")
    assert reg is not None and reg.state.value == "registered"


async def test_a_hash_lightningd_knows_is_refused(env: Env) -> None:
    _, user = await _v2(env, "known")
    invoice = await env.node.create_invoice(Msat(AMOUNT), "settle-1", "peer settlement")
    payment_hash = bolt11.decode(invoice).payment_hash.hex()
    preimage = env.node.payees[payment_hash]
    try:
        await env.gateway.public.create_bolt11_invoice(await _body(env, user, preimage))
    except AlreadyExists:
        pass
    else:
        raise AssertionError("a hash of the node's own invoice was registered")
    assert await pay_repo.get(env.gateway.db.conn, f"v2:{payment_hash}") is None
    assert env.gateway.router.classify(_final(payment_hash)).federation_id is None


async def test_identical_concurrent_requests_get_one_invoice(env: Env) -> None:
    _, user = await _v2(env, "burst")
    body = await _body(env, user, secrets.token_bytes(32))
    answers = await asyncio.gather(*(env.gateway.public.create_bolt11_invoice(body) for _ in range(20)))
    assert len({a["invoice"] for a in answers}) == 1
    h = bolt11.decode(answers[0]["invoice"]).payment_hash.hex()
    reg = await pay_repo.get(env.gateway.db.conn, f"v2:{h}")
    assert reg is not None and reg.data["invoice"] == answers[0]["invoice"]


async def _expire(env: Env, payment_hash: str, seconds_ago: int) -> None:
    """Make a registration's invoice have expired `seconds_ago` (as time passing would)."""
    async with env.gateway.db.transaction() as conn:
        await conn.execute(
            "UPDATE payments SET data_json = json_set(data_json, '$.invoice_expires_at', ?) "
            "WHERE payment_id = ?",
            (env.gateway.clock.now() - seconds_ago, f"v2:{payment_hash}"),
        )


async def test_expired_registrations_do_not_block_leaving_and_are_pruned_at_start(env: Env) -> None:
    fid, user = await _v2(env, "expiry")
    hashes = []
    for _ in range(3):
        preimage = secrets.token_bytes(32)
        await env.gateway.public.create_bolt11_invoice(await _body(env, user, preimage, expiry_secs=60))
        hashes.append(hashlib.sha256(preimage).hexdigest())
    live = hashes[2]
    await _expire(env, hashes[0], LONG_AGO)  # past the grace: pruned at start
    await _expire(env, hashes[1], 5)  # expired, still within the grace
    await env.restart_gateway()
    assert await pay_repo.get(env.gateway.db.conn, f"v2:{hashes[0]}") is None
    assert await pay_repo.get(env.gateway.db.conn, f"v2:{hashes[1]}") is not None
    assert len([h for h in hashes if env.gateway.router.classify(_final(h)).federation_id]) == 2
    await _expire(env, live, 1)
    # Expired registrations are not payments in flight: leaving is not refused for them.
    left = await env.gateway.leave(fid, False)
    assert left["left"] is True and FederationId(fid).hex == left["federation_id"]


async def test_expired_registrations_are_pruned_while_running(env: Env, monkeypatch: Any) -> None:
    from fedimint_gw.services import gateway as gateway_module

    monkeypatch.setattr(gateway_module, "PRUNE_INTERVAL", 0.05)
    await env.restart_gateway()  # its pruner now runs every 50 ms
    _, user = await _v2(env, "pruner")
    preimage = secrets.token_bytes(32)
    await env.gateway.public.create_bolt11_invoice(await _body(env, user, preimage, expiry_secs=60))
    h = hashlib.sha256(preimage).hexdigest()
    assert env.gateway.router.classify(_final(h)).federation_id is not None
    await _expire(env, h, LONG_AGO)

    async def pruned() -> bool:
        return await pay_repo.get(env.gateway.db.conn, f"v2:{h}") is None

    await wait_until(pruned)
    assert env.gateway.router.classify(_final(h)).federation_id is None


async def test_live_registrations_are_capped(env: Env, monkeypatch: Any) -> None:
    from fedimint_gw.errors import NotReady
    from fedimint_gw.services.payments import invoices

    monkeypatch.setattr(invoices, "MAX_REGISTRATIONS", 2)
    _, user = await _v2(env, "cap")
    for _ in range(2):
        await env.gateway.public.create_bolt11_invoice(await _body(env, user, secrets.token_bytes(32)))
    rows = await _rows(env)
    try:
        await env.gateway.public.create_bolt11_invoice(await _body(env, user, secrets.token_bytes(32)))
    except NotReady:
        pass
    else:
        raise AssertionError("a registration beyond the cap was accepted")
    assert await _rows(env) == rows


async def test_live_registrations_do_not_block_leaving(env: Env) -> None:
    """Anyone can register invoices, so they must not keep the operator from leaving; the
    answer says how many users' unpaid invoices were dropped (nothing was paid to them)."""
    fid, user = await _v2(env, "leaver")
    preimage = secrets.token_bytes(32)
    await env.gateway.public.create_bolt11_invoice(await _body(env, user, preimage))
    left = await env.gateway.leave(fid, False)
    assert left["left"] is True and left["unpaid_invoices_dropped"] == 1
    h = hashlib.sha256(preimage).hexdigest()
    assert env.gateway.router.classify(_final(h)).federation_id is None
