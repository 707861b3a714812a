"""The gateway's LNv1 adapter (fedimint-lnv1) against devfed's Fedimint family serving `ln`:
joining from a `fed11` invite, registration, receive (funding an offer, the preimage decrypted by
the guardians) and send (claiming the user's outgoing contract, or cancelling it)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import pytest
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.errors import GatewayError
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.ln.contracts import (
    IncomingContractOffer,
    OutgoingContract,
    payment_hash_of_key,
    preimage_of_key,
)
from fedimint_gw.fedimint.ln.items import ContractOutput, LightningClientConfig, ln_output_bytes
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input
from fedimint_gw.fedimint.mint_types import write_mint_input
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.support.fake_node import forward_payload


@pytest.fixture
async def fm(env: Env) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(env.tmp / "fm-ln", FedimintParams(name="e2e-ln", ln=True))
    yield running
    await running.stop()


async def joined(env: Env, fm: RunningFedimint, fund_msat: int) -> dict[str, object]:
    info = await env.gateway.federations.connect(fm.invite_code)
    if fund_msat:
        notes = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, fund_msat)
        client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
        assert (await client.receive_ecash(notes.oob.encode())).value == fund_msat
    return info


async def balance(env: Env, fm: RunningFedimint) -> int:
    return (await env.gateway.federations.client(FederationId(fm.federation_id.hex)).balance()).value


async def balance_becomes(env: Env, fm: RunningFedimint, expected: int) -> None:
    """Wait for the gateway's balance to be `expected`: a receive's change notes are finished
    after its HTLC is settled (issue 14, finding 5)."""
    from tests.e2e.conftest import wait_until

    async def there() -> bool:
        return await balance(env, fm) == expected

    await wait_until(there)


async def submit(env: Env, fm: RunningFedimint, tx: Transaction) -> None:
    api = FederationApi.from_config(fm.federation.client_config, env.session)
    try:
        assert (await submit_transaction(api, tx)).accepted
    finally:
        await api.close()


async def test_joins_from_a_fed11_invite_and_registers_its_scid(env: Env, fm: RunningFedimint) -> None:
    info = await joined(env, fm, 0)
    assert info["adapter"] == "fedimint-lnv1" and info["federation_id"] == fm.federation_id.hex
    ln = fm.federation.ln
    assert ln is not None
    [(gateway_json, _vetted, _until)] = ln.store.gateways(fm.federation.clock())
    assert f'"mint_channel_id": {ShortChannelId.parse(info["scid"]).to_int()}' in gateway_json
    assert f'"node_pub_key": "{env.node.node_id}"' in gateway_json


async def test_receive_funds_the_offer_and_resolves_with_the_decrypted_preimage(
    env: Env, fm: RunningFedimint
) -> None:
    info = await joined(env, fm, 20_000)
    user = PrivateKey()
    key = user.public_key.format()
    ln_config = LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)
    pk = tc.PublicKey.decode(ln_config.threshold_pub_key)
    offer = IncomingContractOffer(5000, payment_hash_of_key(key), tc.encrypt(pk, key).to_bytes(), None)
    await submit(
        env, fm, Transaction.signed([], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))], b"\x01" * 8, [])
    )
    height = env.node.block_height
    htlc = forward_payload(str(info["scid"]), offer.hash.hex(), 5000, 5000 + 2015, height + 100, height)
    answer = await env.htlc(*htlc)
    assert answer["result"] == "resolve", (answer, env.logs[-5:])
    assert bytes.fromhex(answer["payment_key"]) == preimage_of_key(key)
    await balance_becomes(env, fm, 15_000)
    account = fm.federation.ln.store.account(offer.hash) if fm.federation.ln else None
    assert account is not None and account.amount == 5000  # the user's to claim with its key
    assert await env.htlc(*htlc) == answer  # a replayed HTLC funds nothing twice
    await balance_becomes(env, fm, 15_000)


async def test_an_htlc_without_an_offer_is_failed_without_funding(env: Env, fm: RunningFedimint) -> None:
    info = await joined(env, fm, 10_000)
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(str(info["scid"]), secrets.token_hex(32), 5000, 7000, height + 100, height)
    )
    assert answer["result"] == "fail"
    await balance_becomes(env, fm, 10_000)


async def outgoing(
    env: Env,
    fm: RunningFedimint,
    payment_hash: bytes,
    amount: int,
    timelock: int,
    gateway_key: bytes | None = None,
) -> str:
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    user = PrivateKey()
    key = gateway_key or bytes.fromhex(client.gateway_pubkey)
    contract = OutgoingContract(payment_hash, key, timelock, user.public_key.format())
    notes = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, amount)
    items = [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, n=n: write_mint_input(w, mint_input(n.amount, n.note))))
        for n in notes.notes
    ]
    out = ModuleItem(LN_INSTANCE_ID, ln_output_bytes(ContractOutput(amount, contract)))
    await submit(
        env, fm, Transaction.signed(items, [out], b"\x02" * 8, [n.note.spend_key for n in notes.notes])
    )
    return contract.contract_id().hex()


def invoice_for(payment_hash: bytes, amount_msat: int) -> str:
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=1_700_000_000 + secrets.randbelow(10**8),
        payment_hash=payment_hash,
        payment_secret=secrets.token_bytes(32),
        description="e2e",
        features=bolt11.DEFAULT_FEATURES,
        expiry=10**9,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey(bytes([9]) * 32))


async def test_send_pays_the_invoice_and_claims_the_outgoing_contract(env: Env, fm: RunningFedimint) -> None:
    await joined(env, fm, 0)
    preimage = secrets.token_bytes(32)
    payment_hash = bytes.fromhex(env.node.add_payee(preimage))
    contract_id = await outgoing(env, fm, payment_hash, 12_030, 100 + 500)  # 10 000 + fee 2000 + 3000 ppm
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "invoice": invoice_for(payment_hash, 10_000),
    }
    async with env.session.post(f"{env.api_url}/v1/pay_invoice", json=body) as resp:
        answer = await resp.json()
    assert answer.get("preimage") == preimage.hex(), answer
    await env.settled(contract_id)
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{contract_id}")
    assert rec is not None and rec.state is PaymentState.SUCCEEDED
    await balance_becomes(env, fm, 12_030)  # claimed into the gateway's notes
    assert hashlib.sha256(preimage).digest() == payment_hash


async def test_a_send_it_refuses_cancels_the_contract_so_the_user_refunds_at_once(
    env: Env, fm: RunningFedimint
) -> None:
    await joined(env, fm, 0)
    payment_hash = bytes.fromhex(env.node.add_payee(secrets.token_bytes(32)))
    contract_id = await outgoing(env, fm, payment_hash, 10_500, 100 + 500)  # too little for the fee
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "invoice": invoice_for(payment_hash, 10_000),
    }
    async with env.session.post(f"{env.api_url}/v1/pay_invoice", json=body) as resp:
        answer = await resp.json()
    assert answer["state"] == "refunded" and "fee" in answer["error"]
    ln = fm.federation.ln
    assert ln is not None
    account = ln.store.account(bytes.fromhex(contract_id))
    assert (
        account is not None and isinstance(account.contract, OutgoingContract) and account.contract.cancelled
    )
    assert account.amount == 10_500 and await balance(env, fm) == 0  # nothing taken by the gateway


async def test_fedimint_routes_at_the_root_answer_bare_json_strings(env: Env, fm: RunningFedimint) -> None:
    await joined(env, fm, 0)
    async with env.session.get(f"{env.api_url}/id") as resp:
        assert resp.status == 200 and await resp.json() == env.node.node_id
    ln = fm.federation.ln
    assert ln is not None
    [(gateway_json, _vetted, _until)] = ln.store.gateways(fm.federation.clock())
    assert f'"gateway_id": "{env.node.node_id}"' in gateway_json  # what GET /id says
    preimage = secrets.token_bytes(32)
    payment_hash = bytes.fromhex(env.node.add_payee(preimage))
    contract_id = await outgoing(env, fm, payment_hash, 12_030, 100 + 500)
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": invoice_for(payment_hash, 10_000)},
        "preimage_auth": secrets.token_hex(32),
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status == 200 and await resp.json() == preimage.hex()


@pytest.mark.parametrize("payment_data", [{"pruned_invoice": {"amount": 1}}, {"invoice": 5}, "lnbcrt1", None])
async def test_pay_invoice_refuses_other_payment_data_and_pays_nothing(
    env: Env, fm: RunningFedimint, payment_data: object
) -> None:
    await joined(env, fm, 0)
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": "00" * 32,
        "payment_data": payment_data,
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["name"] == "InvalidInput"
    assert env.node.pay_calls == []


async def test_pay_invoice_failure_is_not_200_and_the_contract_is_cancelled(
    env: Env, fm: RunningFedimint
) -> None:
    await joined(env, fm, 0)
    payment_hash = bytes.fromhex(env.node.add_payee(secrets.token_bytes(32)))
    contract_id = await outgoing(env, fm, payment_hash, 10_500, 100 + 500)  # too little for the fee
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": invoice_for(payment_hash, 10_000)},
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status != 200 and "fee" in (await resp.json())["error"]["message"]
    ln = fm.federation.ln
    assert ln is not None
    account = ln.store.account(bytes.fromhex(contract_id))
    assert (
        account is not None and isinstance(account.contract, OutgoingContract) and account.contract.cancelled
    )


async def test_a_contract_locked_to_another_gateway_is_refused_and_nothing_is_paid(
    env: Env, fm: RunningFedimint
) -> None:
    await joined(env, fm, 0)
    payment_hash = bytes.fromhex(env.node.add_payee(secrets.token_bytes(32)))
    other = PrivateKey().public_key.format()
    contract_id = await outgoing(env, fm, payment_hash, 12_030, 100 + 500, gateway_key=other)
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": invoice_for(payment_hash, 10_000)},
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status != 200 and "not locked to this gateway" in (await resp.json())["error"]["message"]
    assert env.node.pay_calls == []


async def test_swap_from_a_devfed_v1_federation_into_a_fedimint_lnv1_offer(
    env: Env, fm: RunningFedimint
) -> None:
    """A devfed v1 user pays an invoice that ends in the Fedimint federation on the same gateway:
    no Lightning payment; the gateway funds the LNv1 offer and claims the v1 contract."""
    from contrib.devfed import wallet_ln

    info = await joined(env, fm, 50_000)
    v1 = await env.federation("swap-v1", (1,))
    await env.gateway.federations.connect(v1.invite_code)
    payer = await env.wallet(v1, "payer")
    await payer.faucet(100_000)
    user = PrivateKey()
    key = user.public_key.format()
    ln_config = LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)
    offer = IncomingContractOffer(
        20_000,
        payment_hash_of_key(key),
        tc.encrypt(tc.PublicKey.decode(ln_config.threshold_pub_key), key).to_bytes(),
    )
    await submit(
        env, fm, Transaction.signed([], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))], b"\x03" * 8, [])
    )
    hop = bolt11.RouteHop(
        bytes.fromhex(env.node.node_id), ShortChannelId.parse(info["scid"]).to_int(), 0, 0, 30
    )
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=20_000,
        timestamp=1_700_000_000,
        payment_hash=offer.hash,
        payment_secret=secrets.token_bytes(32),
        description="cross-family swap",
        features=bolt11.DEFAULT_FEATURES,
        expiry=10**9,
        route_hints=((hop,),),
    )
    invoice = bolt11.sign_with_key(
        bolt11.encode_unsigned(content), PrivateKey()
    )  # as the official client does
    v1_client = env.gateway.federations.client(FederationId(v1.federation_id))
    fee = 2000 + 20_000 * 3000 // 1_000_000
    result = await wallet_ln.pay(payer, invoice, env.api_url, v1_client.gateway_pubkey, fee)
    await env.settled(str(result["contract_id"]))
    assert bytes.fromhex(str(result["preimage"])) == preimage_of_key(key)
    assert env.node.pay_calls == []  # no Lightning
    ln = fm.federation.ln
    assert ln is not None
    account = ln.store.account(offer.hash)
    assert account is not None and account.amount == 20_000  # funded for the Fedimint user
    await balance_becomes(env, fm, 30_000)
    assert (await v1_client.balance()).value == 20_000 + fee


async def test_swap_from_a_fedimint_lnv1_contract_into_a_devfed_v1_receive(
    env: Env, fm: RunningFedimint
) -> None:
    """The other direction: a Fedimint LNv1 user's outgoing contract pays a devfed v1 receive."""
    from contrib.devfed import wallet_ln

    await joined(env, fm, 0)
    v1 = await env.federation("swap-v1-in", (1,))
    await env.gateway.federations.connect(v1.invite_code)
    await env.fund_gateway(v1, 100_000)
    v1_client = env.gateway.federations.client(FederationId(v1.federation_id))
    receiver = await env.wallet(v1, "receiver")
    receive = await wallet_ln.receive_v1(receiver, v1_client.gateway_pubkey, 10_000, "from fedimint")
    contract_id = await outgoing(env, fm, bytes.fromhex(receive.payment_hash), 12_030, 100 + 500)
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": receive.bolt11},
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status == 200
        preimage = bytes.fromhex(await resp.json())
    assert hashlib.sha256(preimage).hexdigest() == receive.payment_hash
    await env.settled(contract_id)
    assert env.node.pay_calls == []
    await balance_becomes(env, fm, 12_030)  # the Fedimint contract claimed

    async def funded() -> bool:  # the v1 offer funded (its change notes collected afterwards)
        return (await v1_client.balance()).value == 90_000

    await wait_until(funded)


async def _offer(env: Env, fm: RunningFedimint, amount: int, nonce: bytes) -> IncomingContractOffer:
    key = PrivateKey().public_key.format()
    ln_config = LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)
    pk = tc.PublicKey.decode(ln_config.threshold_pub_key)
    offer = IncomingContractOffer(amount, payment_hash_of_key(key), tc.encrypt(pk, key).to_bytes())
    await submit(
        env, fm, Transaction.signed([], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))], nonce, [])
    )
    return offer


async def _fault(env: Env, fm: RunningFedimint, peer: int, mode: str) -> None:
    async with env.session.post(f"{fm.admin_url}/admin/guardians/{peer}/fault", json={"mode": mode}) as r:
        assert r.status == 200


async def test_a_funding_of_unknown_outcome_is_abandoned_only_by_spending_its_notes_elsewhere(
    env: Env, fm: RunningFedimint
) -> None:
    await joined(env, fm, 20_000)
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    offer = await _offer(env, fm, 5000, b"\x04" * 8)
    request = await client.lookup_incoming(offer.hash.hex())
    assert request is not None
    for peer in (2, 3):
        await _fault(env, fm, peer, "offline")  # no consensus: the funding's fate is unknown
    with pytest.raises(GatewayError):
        await client.fund_incoming(request, "receive:lost")
    assert await balance(env, fm) < 20_000  # its notes stay reserved: not assumed dead
    with pytest.raises(GatewayError):
        await client.abandon_funding("receive:lost")  # still no consensus: a doubt, not a yes
    for peer in (2, 3):
        await _fault(env, fm, peer, "honest")
    assert await client.abandon_funding("receive:lost") is True
    await balance_becomes(env, fm, 20_000)  # the notes came back through the release
    ln = fm.federation.ln
    assert ln is not None and ln.store.account(offer.hash) is None  # and nothing was funded
    assert await client.abandon_funding("receive:lost") is True  # asked again: the same answer


async def test_a_funding_accepted_behind_our_back_is_not_abandoned(env: Env, fm: RunningFedimint) -> None:
    from fedimint_gw.federation.fedimint import module_ops
    from fedimint_gw.fedimint.ln.contracts import DecryptedPreimage, IncomingContract, PreimageState

    await joined(env, fm, 20_000)
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    offer = await _offer(env, fm, 5000, b"\x05" * 8)
    contract = IncomingContract(
        offer.hash,
        offer.encrypted_preimage,
        DecryptedPreimage(PreimageState.PENDING),
        bytes.fromhex(client.gateway_pubkey),
    )
    output = ModuleItem(LN_INSTANCE_ID, ln_output_bytes(ContractOutput(5000, contract)))
    notes = client._notes  # type: ignore[attr-defined]  # the adapter's own store, as a crash leaves it
    op = await module_ops.prepare_fund(notes, "receive:answer-lost", Msat(5000), 0, output)
    await submit(env, fm, op.tx)  # accepted, but the gateway never heard the answer
    assert await client.abandon_funding("receive:answer-lost") is False
    request = await client.lookup_incoming(offer.hash.hex())
    assert request is None  # the offer is consumed by the accepted funding
    ln = fm.federation.ln
    assert ln is not None and ln.store.account(offer.hash) is not None


async def test_after_a_restart_the_gateway_reconnects_and_a_replayed_htlc_funds_nothing_twice(
    env: Env, fm: RunningFedimint
) -> None:
    info = await joined(env, fm, 20_000)
    offer = await _offer(env, fm, 5000, b"\x06" * 8)
    height = env.node.block_height
    htlc = forward_payload(str(info["scid"]), offer.hash.hex(), 5000, 5000 + 2015, height + 100, height)
    answer = await env.htlc(*htlc)
    assert answer["result"] == "resolve"
    await env.gateway.stop()
    from fedimint_gw.clock import SystemClock
    from fedimint_gw.services.gateway import Gateway
    from tests.e2e.conftest import wait_until

    env.gateway = Gateway(env.gateway.config, env.node, SystemClock(), env.log)
    await env.gateway.start()
    fid = FederationId(fm.federation_id.hex)

    def connected() -> bool:
        try:
            env.gateway.federations.client(fid)
        except GatewayError:
            return False
        return True

    await wait_until(connected)  # reconnected from the stored config (Fedimint's rediscovery)
    assert await env.htlc(*htlc) == answer
    await balance_becomes(env, fm, 15_000)  # the change notes were finished after the restart


async def test_health_probes_a_fedimint_federation_over_its_own_transport(
    env: Env, fm: RunningFedimint
) -> None:
    """Health and metrics probe guardians; a Fedimint federation answers over WebSocket JSON-RPC,
    not devfed's HTTP `GET /version`, so the probe must speak its protocol (it once reported a
    healthy Fedimint federation as unreachable)."""
    await joined(env, fm, 0)
    fid = FederationId(fm.federation_id.hex)
    rec = next(r for r in await fed_repo.list_all(env.gateway.db.conn) if r.federation_id == fid)
    probe = await env.gateway.federations.guardian_probe(rec, 3.0)
    assert (probe.guardians, probe.answering, probe.threshold) == (4, 4, 3) and probe.reachable
    for peer in (0, 1):
        async with env.session.post(
            f"{fm.admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            r.raise_for_status()
    probe = await env.gateway.federations.guardian_probe(rec, 3.0)
    assert probe.answering == 2 and not probe.reachable


async def test_receive_resolves_before_two_unsigning_guardians_finish_its_change_notes(
    env: Env, fm: RunningFedimint
) -> None:
    """Issue 14, finding 5: once the funding is accepted the decrypted preimage settles the HTLC;
    the change notes, which 2 of 4 guardians do not sign yet, are finished afterwards."""
    from contrib.devfed.fedimint.mint import FaultMode
    from fedimint_gw.domain.payment import PaymentKind

    info = await joined(env, fm, 20_000)
    user = PrivateKey()
    key = user.public_key.format()
    ln_config = LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)
    pk = tc.PublicKey.decode(ln_config.threshold_pub_key)
    offer = IncomingContractOffer(5000, payment_hash_of_key(key), tc.encrypt(pk, key).to_bytes(), None)
    await submit(
        env, fm, Transaction.signed([], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))], b"\x02" * 8, [])
    )
    for peer in (2, 3):
        await _fault(env, fm, peer, FaultMode.UNSIGNING.value)
    height = env.node.block_height
    htlc = forward_payload(str(info["scid"]), offer.hash.hex(), 5000, 5000 + 2015, height + 100, height)
    answer = await asyncio.wait_for(env.htlc(*htlc), 20.0)  # the old code never answered here
    assert answer["result"] == "resolve", (answer, env.logs[-5:])
    assert bytes.fromhex(answer["payment_key"]) == preimage_of_key(key)
    assert await balance(env, fm) < 15_000  # the change is not finished yet
    [rec] = await pay_repo.by_hash(env.gateway.db.conn, offer.hash.hex(), PaymentKind.RECEIVE)
    assert rec.state is PaymentState.SUCCEEDED
    for peer in (2, 3):
        await _fault(env, fm, peer, FaultMode.HONEST.value)

    await balance_becomes(env, fm, 15_000)  # finished by the adapter afterwards, to the msat
    assert await env.htlc(*htlc) == answer
    await balance_becomes(env, fm, 15_000)


async def test_the_preimage_one_guardian_shows_is_enough(env: Env, fm: RunningFedimint) -> None:
    """A decrypted preimage proves itself: one guardian showing it settles the receive, while no
    threshold answers the contract read (issue 14, finding 5)."""
    from tests.e2e.conftest import wait_until

    await joined(env, fm, 20_000)
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    offer = await _offer(env, fm, 5000, b"\x07" * 8)
    request = await client.lookup_incoming(offer.hash.hex())
    assert request is not None
    contract_id = await client.fund_incoming(request, "receive:one-guardian")
    ln = fm.federation.ln
    assert ln is not None

    def decrypted() -> bool:
        from fedimint_gw.fedimint.ln import contracts as lc

        account = ln.store.account(offer.hash)
        return (
            account is not None
            and isinstance(account.contract, lc.FundedIncoming)
            and account.contract.contract.decrypted_preimage.state is lc.PreimageState.SOME
        )

    await wait_until(decrypted)
    for peer in (1, 2, 3):  # one guardian left: no threshold read can answer
        await _fault(env, fm, peer, "offline")
    outcome = await client.await_preimage(contract_id, 5.0)
    assert outcome.state.value == "preimage" and outcome.preimage is not None
    assert hashlib.sha256(outcome.preimage).digest() == offer.hash
    for peer in (1, 2, 3):
        await _fault(env, fm, peer, "honest")


async def test_a_silent_guardian_does_not_hold_the_preimage_look_past_its_deadline(
    env: Env, fm: RunningFedimint
) -> None:
    """Found in review: the any-guardian preimage look waited for every guardian's answer with
    the transport's own timeout, so one silent guardian held `await_preimage(…, 0.5)` for the whole
    request timeout (10 s). It is now bounded by the caller's deadline (floor 1 s)."""
    from fedimint_gw.errors import NotFound

    await joined(env, fm, 20_000)
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    await _fault(env, fm, 3, "silent")
    with pytest.raises(NotFound):  # no such contract: the threshold read says so
        await asyncio.wait_for(client.await_preimage("ab" * 32, 0.5), 4.0)
    await _fault(env, fm, 3, "honest")
