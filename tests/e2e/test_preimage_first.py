"""After funding, a receive takes the preimage from any guardian first and finishes its change notes
afterwards (issue 14, finding 5): guardians slow to sign notes do not keep the HTLC held, a
guardian's wrong "preimage" is ignored, and the notes are finished later, after a restart too."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

from contrib.devfed import wallet_ln
from contrib.devfed.codec import object_id
from contrib.devfed.contracts import ContractState, contract_view
from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.lightning import bolt11
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import claim_receive, route_hop
from tests.support.fake_node import final_payload, forward_payload

FUNDED = 200_000
HOOK_WAIT = 20.0  # the hook answer must come while two guardians sign nothing (old code: never)


async def _fault(env: Env, fed: RunningFederation, peer: int, **body: object) -> None:
    async with env.session.post(f"{fed.admin_url}/admin/guardians/{peer}/fault", json=body) as resp:
        resp.raise_for_status()


async def _ecash(env: Env, fed: RunningFederation) -> int:
    return (await env.gateway.federations.client(FederationId(fed.federation_id)).balance()).value


async def _unfinished_fundings(env: Env, fed: RunningFederation) -> list[str]:
    wallet = NoteWallet(env.gateway.db, fed.federation_id, env.gateway.clock)
    return [op.operation_id for op in await wallet.unfinished() if op.kind == "fund_incoming"]


async def _v1_receive(env: Env, fed: RunningFederation, amount: int) -> tuple[Wallet, Any, tuple[Any, Any]]:
    """A v1 offer of `amount` from a new user, and the HTLC paying it through the gateway."""
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, FUNDED)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "alice")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, amount, "coffee")
    hop = route_hop(receive.bolt11)
    fee = hop.fee_base_msat + amount * hop.fee_proportional_millionths // 1_000_000
    height = env.node.block_height
    htlc = forward_payload(info["scid"], receive.payment_hash, amount, amount + fee, height + 100, height)
    return user, receive, htlc


async def test_v1_htlc_resolved_while_two_guardians_sign_no_change_notes(env: Env) -> None:
    fed = await env.federation("slowsign1", (1,))
    user, receive, htlc = await _v1_receive(env, fed, 50_000)
    for peer in (2, 3):  # 2 of 4 sign nothing: the change notes cannot be finished (threshold 3)
        await _fault(env, fed, peer, mode="unsigning")
    answer = await asyncio.wait_for(env.htlc(*htlc), HOOK_WAIT)
    assert answer["result"] == "resolve"
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == receive.payment_hash
    # Resolved before its change notes: the funding is still unfinished, its change not counted.
    assert await _unfinished_fundings(env, fed) != []
    assert await _ecash(env, fed) < FUNDED - 50_000
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert rec.state is PaymentState.SUCCEEDED
    for peer in (2, 3):
        await _fault(env, fed, peer, mode="honest")

    async def exact() -> bool:
        return await _ecash(env, fed) == FUNDED - 50_000

    await wait_until(exact)  # the adapter finished the notes on its own, to the msat
    assert await _unfinished_fundings(env, fed) == []
    assert await claim_receive(user, receive) == 50_000
    again = await env.htlc(*htlc)  # a replay funds nothing
    assert again == answer and await _ecash(env, fed) == FUNDED - 50_000


async def test_v1_unfinished_change_notes_are_finished_after_a_restart(env: Env) -> None:
    fed = await env.federation("slowsign1r", (1,))
    _, _receive, htlc = await _v1_receive(env, fed, 30_000)
    for peer in (2, 3):
        await _fault(env, fed, peer, mode="unsigning")
    answer = await asyncio.wait_for(env.htlc(*htlc), HOOK_WAIT)
    assert answer["result"] == "resolve"
    assert await _unfinished_fundings(env, fed) != []
    # A crash: the background finishing is gone, the operation stored; the start finds it, and
    # keeps asking for signature shares while the guardians still sign nothing.
    await env.restart_gateway()
    assert await _unfinished_fundings(env, fed) != []
    for peer in (2, 3):
        await _fault(env, fed, peer, mode="honest")

    async def exact() -> bool:
        return await _ecash(env, fed) == FUNDED - 30_000

    await wait_until(exact)
    assert await _unfinished_fundings(env, fed) == []
    assert await env.htlc(*htlc) == answer  # lightningd's replay: the same preimage, nothing funded
    assert await _ecash(env, fed) == FUNDED - 30_000


async def test_v2_htlc_resolved_on_decryption_before_change_notes(env: Env) -> None:
    fed = await env.federation("slowsign2", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, FUNDED)
    user = await env.wallet(fed, "carol")
    receive = await wallet_ln.receive_v2(user, env.api_url, 40_000, "v2 coffee")
    inv = bolt11.decode(receive.bolt11)
    height = env.node.block_height
    secret = (inv.payment_secret or b"").hex()
    for peer in (2, 3):
        await _fault(env, fed, peer, mode="unsigning")
    answer = await asyncio.wait_for(
        env.htlc(*final_payload(receive.payment_hash, secret, 40_000, 40_000, height + 50, height, 1)),
        HOOK_WAIT,
    )
    assert answer["result"] == "resolve"
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == receive.payment_hash
    assert await _unfinished_fundings(env, fed) != []
    for peer in (2, 3):
        await _fault(env, fed, peer, mode="honest")
    net = await claim_receive(user, receive)
    stored = await fed_repo.get(env.gateway.db.conn, FederationId(fed.federation_id))
    assert stored is not None
    assert net == 40_000 - stored.fees.fee(Msat(40_000)).value > 0  # the receive fee stayed with the gateway

    async def exact() -> bool:
        return await _ecash(env, fed) == FUNDED - net

    await wait_until(exact)
    assert await _unfinished_fundings(env, fed) == []


async def test_a_guardians_wrong_preimage_is_ignored(env: Env) -> None:
    fed = await env.federation("wrongpre", (1,))
    _, receive, htlc = await _v1_receive(env, fed, 20_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    body = {
        "kind": "incoming_contract_v1",
        "payment_hash": receive.payment_hash,
        "amount_msat": 20_000,
        "refund_pubkey": client.gateway_pubkey,
    }
    cid = object_id(body)
    wrong = secrets.token_hex(32)  # does not hash to the payment hash
    lie = contract_view(cid, body, ContractState.PREIMAGE, {"funded_txid": "00" * 32, "preimage": wrong})
    await _fault(env, fed, 0, mode="lying", contracts={cid: lie})
    for peer in (1, 2, 3):  # the liar answers first; the honest guardians a little later
        await _fault(env, fed, peer, mode="slow", delay_ms=200)
    answer = await asyncio.wait_for(env.htlc(*htlc), HOOK_WAIT)
    assert answer["result"] == "resolve"
    assert answer["payment_key"] != wrong
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == receive.payment_hash
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert rec.state is PaymentState.SUCCEEDED and rec.preimage == answer["payment_key"]
