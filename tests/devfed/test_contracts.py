"""Lightning contracts against a live federation; the test plays the gateway."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path

import aiohttp
import pytest
from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.codec import object_id, sign
from contrib.devfed.contracts import CANCEL_PURPOSE, FORFEIT_PURPOSE, GATEWAY_REGISTRATION_PURPOSE
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.server import RunningFederation
from contrib.devfed.transactions import offer_context, v2_contract_context
from fedimint_gw.crypto.threshold_elgamal import Ciphertext, decrypt, encrypt
from fedimint_gw.lightning import bolt11

from .conftest import WalletFactory, set_fault


def _key() -> PrivateKey:
    return PrivateKey(secrets.token_bytes(32))


def _pub(key: PrivateKey) -> str:
    return key.public_key.format().hex()


async def _post(session: aiohttp.ClientSession, url: str, body: object) -> tuple[int, dict[str, object]]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("how", ["cancel", "forfeit", "timelock"])
async def test_outgoing_refunds(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession, how: str
) -> None:
    user = await make_wallet(fed, "user")
    await user.faucet(10_000)
    gw = _key()
    cid, _contract, _ = await wallet_ln.fund_outgoing(user, "aa" * 32, 4_000, _pub(gw))
    assert user.balance_msat() == 6_000
    forfeit = None
    if how == "cancel":
        url = f"{fed.guardian_urls[0]}/v1/contracts/{cid}/cancel"
        status, body = await _post(
            session, url, {"signature": sign(_key(), CANCEL_PURPOSE, {"contract_id": cid})}
        )
        assert status == 422 and body["error"]["name"] == "bad_signature"
        status, body = await _post(
            session, url, {"signature": sign(gw, CANCEL_PURPOSE, {"contract_id": cid})}
        )
        assert status == 200 and body["state"] == "cancelled"
    elif how == "forfeit":
        with pytest.raises(DevfedError) as err:
            await wallet_ln.refund_outgoing(user, cid, sign(_key(), FORFEIT_PURPOSE, {"contract_id": cid}))
        assert err.value.code is ErrorCode.BAD_SIGNATURE
        forfeit = sign(gw, FORFEIT_PURPOSE, {"contract_id": cid})
    else:
        with pytest.raises(DevfedError) as err:
            await wallet_ln.refund_outgoing(user, cid)
        assert err.value.code is ErrorCode.TIMELOCK
        status, _ = await _post(session, f"{fed.admin_url}/admin/block_height", {"advance": 144})
        assert status == 200
    assert await wallet_ln.refund_outgoing(user, cid, forfeit) == 4_000
    assert user.balance_msat() == 10_000
    assert (await user.client.contract(cid))["state"] == "refunded"


async def test_outgoing_claim_by_gateway(fed: RunningFederation, make_wallet: WalletFactory) -> None:
    user = await make_wallet(fed, "user")
    gateway = await make_wallet(fed, "gateway", 2)
    await user.faucet(5_000)
    gw = _key()
    preimage = secrets.token_bytes(32)
    cid, _, _ = await wallet_ln.fund_outgoing(user, hashlib.sha256(preimage).hexdigest(), 3_000, _pub(gw))
    wrong = {"kind": "outgoing_claim", "contract_id": cid, "preimage": "00" * 32}
    with pytest.raises(DevfedError) as err:
        await gateway.transact([(wrong, gw)], [], receive_msat=3_000)
    assert err.value.code is ErrorCode.CONTRACT_STATE
    claim = {"kind": "outgoing_claim", "contract_id": cid, "preimage": preimage.hex()}
    with pytest.raises(DevfedError) as err:
        await gateway.transact([(claim, _key())], [], receive_msat=3_000)
    assert err.value.code is ErrorCode.BAD_SIGNATURE
    await gateway.transact([(claim, gw)], [], receive_msat=3_000)
    assert gateway.balance_msat() == 3_000
    view = await user.client.contract(cid)
    assert view["state"] == "claimed" and view["preimage"] == preimage.hex()
    with pytest.raises(DevfedError) as err:
        await wallet_ln.refund_outgoing(user, cid)
    assert err.value.code is ErrorCode.CONTRACT_STATE


async def _register_gateway(session: aiohttp.ClientSession, fed: RunningFederation, gw: PrivateKey) -> None:
    reg = {
        "node_pubkey": _pub(_key()),
        "gateway_pubkey": _pub(gw),
        "scid": 1,
        "api_url": "http://gw.invalid",
        "fees": {"base_msat": 1000, "ppm": 100},
        "ttl": 600,
    }
    status, body = await _post(
        session,
        f"{fed.guardian_urls[0]}/v1/gateways",
        {"registration": reg, "signature": sign(_key(), GATEWAY_REGISTRATION_PURPOSE, reg)},
    )
    assert status == 422 and body["error"]["name"] == "bad_signature"
    status, _ = await _post(
        session,
        f"{fed.guardian_urls[0]}/v1/gateways",
        {"registration": reg, "signature": sign(gw, GATEWAY_REGISTRATION_PURPOSE, reg)},
    )
    assert status == 200


async def test_incoming_v1_offer_decrypted_in_consensus(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession
) -> None:
    receiver = await make_wallet(fed, "receiver", 1)
    gateway = await make_wallet(fed, "gateway", 1)
    await gateway.faucet(10_000)
    gw = _key()
    await _register_gateway(session, fed, gw)
    receive = await wallet_ln.receive_v1(receiver, _pub(gw), 2_000, "coffee")
    invoice = bolt11.decode(receive.bolt11)
    assert (
        invoice.payment_hash.hex() == receive.payment_hash and invoice.route_hints[0][0].short_channel_id == 1
    )
    status, _offer = await _post(
        session, f"{fed.guardian_urls[0]}/v1/offers", {"payment_hash": receive.payment_hash}
    )
    assert status == 400
    output = {
        "kind": "incoming_contract_v1",
        "payment_hash": receive.payment_hash,
        "amount_msat": 1_999,
        "refund_pubkey": _pub(gw),
    }
    with pytest.raises(DevfedError) as err:
        await gateway.transact([], [output], spend_msat=1_999)
    assert err.value.code is ErrorCode.UNBALANCED
    output["amount_msat"] = 2_000
    await gateway.transact([], [output], spend_msat=2_000)
    cid = object_id(output)
    view = await gateway.client.contract(cid)
    assert view["state"] == "preimage"
    assert hashlib.sha256(bytes.fromhex(str(view["preimage"]))).hexdigest() == receive.payment_hash
    stored = receiver.store.get_contract(receive.payment_hash)
    assert stored is not None
    claim_key = PrivateKey(bytes.fromhex(str(stored[1]["claim_key"])))
    assert await wallet_ln.claim_incoming(receiver, cid, claim_key) == 2_000
    assert receiver.balance_msat() == 2_000


async def test_incoming_v1_invalid_preimage_refunds_gateway(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession
) -> None:
    receiver = await make_wallet(fed, "receiver", 1)
    gateway = await make_wallet(fed, "gateway", 1)
    await gateway.faucet(1_000)
    gw, claim = _key(), _key()
    offer = wallet_ln.build_offer(receiver, 500, int(time.time()) + 600, secrets.token_bytes(32), claim)
    bogus = dict(offer, payment_hash="ee" * 32)  # a hash the encrypted preimage does not match
    # re-encrypt under the bogus offer's context: well formed, but the preimage is wrong
    bogus["encrypted_preimage"] = encrypt(
        receiver.config.ln_pubkey, secrets.token_bytes(32), offer_context(bogus)
    ).to_dict()
    status, _ = await _post(session, f"{fed.guardian_urls[0]}/v1/offers", bogus)
    assert status == 200
    output = {
        "kind": "incoming_contract_v1",
        "payment_hash": "ee" * 32,
        "amount_msat": 500,
        "refund_pubkey": _pub(gw),
    }
    await gateway.transact([], [output], spend_msat=500)
    cid = object_id(output)
    assert (await gateway.client.contract(cid))["state"] == "refund"
    with pytest.raises(DevfedError) as err:
        await wallet_ln.claim_incoming(receiver, cid, claim)
    assert err.value.code is ErrorCode.CONTRACT_STATE
    await gateway.transact([({"kind": "incoming_refund", "contract_id": cid}, gw)], [], receive_msat=500)
    assert gateway.balance_msat() == 1_000


@pytest.mark.parametrize("valid", [True, False])
async def test_incoming_v2_gateway_combines_shares(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession, valid: bool
) -> None:
    receiver = await make_wallet(fed, "receiver", 2)
    gateway = await make_wallet(fed, "gateway", 2)
    await gateway.faucet(4_000)
    gw, claim = _key(), _key()
    preimage = secrets.token_bytes(32)
    contract = wallet_ln.build_v2_contract(receiver, 3_000, preimage, claim, _pub(gw), 500)
    if not valid:
        contract["payment_hash"] = "ab" * 32
        contract["encrypted_preimage"] = encrypt(
            receiver.config.ln_pubkey, preimage, v2_contract_context(contract)
        ).to_dict()
    cid = object_id(contract)
    with pytest.raises(DevfedError) as err:
        await gateway.client.guardians[0].decryption_share(cid)
    assert err.value.code is ErrorCode.UNKNOWN_CONTRACT  # nothing before funding
    await gateway.transact([], [contract], spend_msat=3_000)
    await set_fault(session, fed, 2, "byzantine")
    ciphertext = Ciphertext.from_dict(contract["encrypted_preimage"])
    shares, rejected = await gateway.client.decryption_shares(cid, ciphertext)
    assert rejected == (2,) and len(shares) == 3
    config = gateway.config
    got = decrypt(config.ln_pubkey, ciphertext, v2_contract_context(contract), shares, config.ln_shares(), 3)
    assert got == preimage
    await set_fault(session, fed, 2, "honest")
    if valid:
        assert await wallet_ln.claim_incoming(receiver, cid, claim) == 3_000
        assert (await receiver.client.contract(cid))["preimage"] == preimage.hex()
    else:
        with pytest.raises(DevfedError) as err:
            await wallet_ln.claim_incoming(receiver, cid, claim)
        assert err.value.code is ErrorCode.CONTRACT_STATE
        await gateway.transact(
            [({"kind": "incoming_refund", "contract_id": cid}, gw)], [], receive_msat=3_000
        )
        assert gateway.balance_msat() == 4_000


async def test_v1_only_federation_refuses_v2(
    tmp_path: Path, session: aiohttp.ClientSession, make_wallet: WalletFactory
) -> None:
    from contrib.devfed.federation import FederationParams
    from contrib.devfed.server import start_federation

    running = await start_federation(tmp_path / "v1", FederationParams(name="v1only", majors=(1,)))
    try:
        wallet = await make_wallet(running, "w")
        assert wallet.client.major == 1
        await wallet.faucet(100)
        async with session.get(f"{running.guardian_urls[0]}/v2/ws") as resp:
            assert resp.status == 404
        contract = wallet_ln.build_v2_contract(wallet, 50, secrets.token_bytes(32), _key(), _pub(_key()), 500)
        with pytest.raises(DevfedError) as err:
            await wallet.transact([], [contract], spend_msat=50)
        assert err.value.code is ErrorCode.UNSUPPORTED
        assert wallet.balance_msat() == 100
    finally:
        await running.stop()
