"""devfed's LNv1 module (`ln`): offers, threshold decryption in consensus, incoming and outgoing
contracts, cancellation, refunds after the timelock, gateway registration with a TTL.

Driven over Fedimint's wire protocol with our own protocol code (no official client here)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import FaucetNotes, faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import DEFAULT_TIERS, MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID, LnError
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.fedimint.encoding import Err, Ok, Reader, decode_whole, encode
from fedimint_gw.fedimint.ln.contracts import (
    DecryptedPreimage,
    IncomingContract,
    IncomingContractOffer,
    OutgoingContract,
    PreimageState,
    payment_hash_of_key,
    preimage_of_key,
)
from fedimint_gw.fedimint.ln.items import (
    CancelOutgoing,
    ContractOutcomeV0,
    ContractOutput,
    LightningClientConfig,
    LightningInputV0,
    ln_input_bytes,
    ln_output_bytes,
    read_ln_outcome,
)
from fedimint_gw.fedimint.mint_api import await_output_outcome, collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input, represent_amount
from fedimint_gw.fedimint.mint_types import MintClientConfig, write_mint_input, write_mint_output
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, OutPoint, Transaction, TransactionError

PARAMS = FedimintParams(name="test-ln", ln=True)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fm(tmp_path: Path) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(tmp_path / "fm", PARAMS)
    running.federation.await_timeout = 5.0
    yield running
    await running.stop()


@pytest.fixture
async def api(fm: RunningFedimint, session: aiohttp.ClientSession) -> AsyncIterator[FederationApi]:
    federation_api = FederationApi.from_config(fm.federation.client_config, session)
    yield federation_api
    await federation_api.close()


def ln_config(fm: RunningFedimint) -> LightningClientConfig:
    return LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)


def mint_config(fm: RunningFedimint) -> MintClientConfig:
    return MintClientConfig.from_bytes(fm.federation.client_config.modules[MINT_INSTANCE_ID].raw)


def ln_out(value: ContractOutput | IncomingContractOffer | CancelOutgoing) -> ModuleItem:
    return ModuleItem(LN_INSTANCE_ID, ln_output_bytes(value))


def mint_inputs(notes: FaucetNotes) -> tuple[list[ModuleItem], list[bytes]]:
    items = [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, n=n: write_mint_input(w, mint_input(n.amount, n.note))))
        for n in notes.notes
    ]
    return items, [n.note.spend_key for n in notes.notes]


def note_outputs(amount: int) -> list[ModuleItem]:
    """Fresh mint outputs (power-of-two tiers) summing to `amount`."""
    outs = [fresh_secrets(a) for a in represent_amount(amount, DEFAULT_TIERS)]
    return [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, o=o: write_mint_output(w, o.output()))) for o in outs
    ]


async def submit(api: FederationApi, tx: Transaction) -> Ok[bytes] | Err[TransactionError]:
    return (await submit_transaction(api, tx)).result


def ln_error(result: Ok[bytes] | Err[TransactionError]) -> int:
    assert isinstance(result, Err), result
    return decode_whole(result.error.data, lambda r: _module_variant(r))


def _module_variant(r: Reader) -> int:
    _instance, body = r.dyn()
    variant = body.varint()
    body.read(body.remaining)
    return variant


def new_offer(fm: RunningFedimint, amount: int) -> tuple[IncomingContractOffer, PrivateKey]:
    """A user's offer: the preimage key is a public key the user holds the secret of."""
    user = PrivateKey()
    key = user.public_key.format()
    pk = tc.PublicKey.decode(ln_config(fm).threshold_pub_key)
    offer = IncomingContractOffer(amount, payment_hash_of_key(key), tc.encrypt(pk, key).to_bytes(), None)
    return offer, user


async def publish_offer(api: FederationApi, offer: IncomingContractOffer) -> None:
    tx = Transaction.signed([], [ln_out(offer)], secrets.token_bytes(8), [])
    assert await submit(api, tx) == Ok(tx.txid())


async def fund_incoming(
    fm: RunningFedimint,
    api: FederationApi,
    session: aiohttp.ClientSession,
    offer: IncomingContractOffer,
    notes: FaucetNotes | None = None,
) -> tuple[Transaction, PrivateKey, Ok[bytes] | Err[TransactionError]]:
    """The gateway funds the offer's incoming contract with notes (from the faucet if not given)."""
    if notes is None:
        notes = await faucet_notes(session, fm.admin_url, fm.federation.client_config, offer.amount)
    gateway = PrivateKey()
    contract = IncomingContract(
        offer.hash,
        offer.encrypted_preimage,
        DecryptedPreimage(PreimageState.PENDING),
        gateway.public_key.format(),
    )
    items, keys = mint_inputs(notes)
    tx = Transaction.signed(
        items, [ln_out(ContractOutput(offer.amount, contract))], secrets.token_bytes(8), keys
    )
    return tx, gateway, await submit(api, tx)


async def test_config_and_versions_serve_ln_at_instance_0(fm: RunningFedimint, api: FederationApi) -> None:
    config = fm.federation.client_config
    assert {i: m.kind for i, m in config.modules.items()} == {0: "ln", 1: "mint"}
    versions = await api.request_peer(0, "version")
    assert isinstance(versions, dict) and sorted(versions["modules"]) == ["0", "1"]
    assert await api.module_threshold_request(LN_INSTANCE_ID, "block_count") == PARAMS.ln_start_block_count


async def test_incoming_contract_is_decrypted_by_the_guardians_and_claimed_by_the_user(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    offer, user = new_offer(fm, 5000)
    await publish_offer(api, offer)
    served = await api.module_threshold_request(LN_INSTANCE_ID, "await_offer", offer.hash.hex())
    assert isinstance(served, dict) and served["amount"] == 5000
    tx, _gw, result = await fund_incoming(fm, api, session, offer)
    assert result == Ok(tx.txid())
    # every guardian reports the same decrypted key for the funding output, and the account too
    item = await await_output_outcome(api, 2, OutPoint(tx.txid(), 0))
    outcome = decode_whole(item.data, read_ln_outcome)
    key = user.public_key.format()
    assert outcome == ContractOutcomeV0(offer.hash, DecryptedPreimage(PreimageState.SOME, key))
    decrypted = await api.module_threshold_request(
        LN_INSTANCE_ID, "await_preimage_decryption", offer.hash.hex()
    )
    assert isinstance(decrypted, list) and bytes(decrypted[1]) == preimage_of_key(key)
    assert hashlib.sha256(bytes(decrypted[1])).digest() == offer.hash
    # the offer is gone, a second funding is refused
    assert await api.module_threshold_request(LN_INSTANCE_ID, "offer", offer.hash.hex()) is None
    # the user claims with the decrypted key into fresh notes
    outputs = [fresh_secrets(a) for a in (4096, 512, 256, 128, 8)]
    out_items = [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, o=o: write_mint_output(w, o.output()))) for o in outputs
    ]
    claim_in = ModuleItem(LN_INSTANCE_ID, ln_input_bytes(LightningInputV0(offer.hash, 5000)))
    claim = Transaction.signed([claim_in], out_items, secrets.token_bytes(8), [user.secret])
    assert await submit(api, claim) == Ok(claim.txid())
    notes = await collect_notes(api, MINT_INSTANCE_ID, mint_config(fm), claim.txid(), outputs)
    assert sum(n.amount for n in notes) == 5000
    # the account is empty now: the gateway cannot take it back
    again = Transaction.signed([claim_in], [], secrets.token_bytes(8), [user.secret])
    assert ln_error(await submit(api, again)) == LnError.INSUFFICIENT_FUNDS.value[0]


async def test_funding_needs_an_offer_of_at_most_the_amount(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    offer, _user = new_offer(fm, 3000)
    _tx, _gw, result = await fund_incoming(fm, api, session, offer)  # never published
    assert ln_error(result) == LnError.NO_OFFER.value[0]
    await publish_offer(api, offer)
    cheaper = IncomingContractOffer(2000, offer.hash, offer.encrypted_preimage, None)
    _tx, _gw, result = await fund_incoming(fm, api, session, cheaper)
    assert ln_error(result) == LnError.INSUFFICIENT_INCOMING_FUNDING.value[0]
    # the same hash or ciphertext cannot be offered twice
    dup = Transaction.signed([], [ln_out(offer)], secrets.token_bytes(8), [])
    assert ln_error(await submit(api, dup)) == LnError.DUPLICATE_ENCRYPTED_PREIMAGE.value[0]


async def test_a_bad_ciphertext_offer_is_refused(fm: RunningFedimint, api: FederationApi) -> None:
    offer, _user = new_offer(fm, 1000)
    raw = bytearray(offer.encrypted_preimage)
    raw[-1] ^= 1  # V changed: W no longer matches
    bad = IncomingContractOffer(1000, offer.hash, bytes(raw), None)
    tx = Transaction.signed([], [ln_out(bad)], secrets.token_bytes(8), [])
    assert ln_error(await submit(api, tx)) == LnError.INVALID_ENCRYPTED_PREIMAGE.value[0]


async def test_an_offer_of_garbage_lets_the_gateway_take_its_funds_back(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    pk = tc.PublicKey.decode(ln_config(fm).threshold_pub_key)
    junk = bytes(33)  # not a public key: the decryption is Invalid
    offer = IncomingContractOffer(1000, payment_hash_of_key(junk), tc.encrypt(pk, junk).to_bytes(), None)
    await publish_offer(api, offer)
    tx, gateway, result = await fund_incoming(fm, api, session, offer)
    assert result == Ok(tx.txid())
    account = await api.module_threshold_request(LN_INSTANCE_ID, "account", offer.hash.hex())
    assert isinstance(account, dict)
    assert account["contract"]["Incoming"]["contract"]["decrypted_preimage"] == "Invalid"
    refund_in = ModuleItem(LN_INSTANCE_ID, ln_input_bytes(LightningInputV0(offer.hash, 1000)))
    refund = Transaction.signed([refund_in], note_outputs(1000), secrets.token_bytes(8), [gateway.secret])
    assert await submit(api, refund) == Ok(refund.txid())


async def test_one_byzantine_guardian_cannot_spoil_decryption_two_offline_delay_it(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    async def fault(peer: int, mode: str) -> None:
        async with session.post(f"{fm.admin_url}/admin/guardians/{peer}/fault", json={"mode": mode}) as r:
            assert r.status == 200

    config = fm.federation.client_config
    funds = [await faucet_notes(session, fm.admin_url, config, 2000) for _ in range(2)]
    offer, user = new_offer(fm, 2000)
    second, _user2 = new_offer(fm, 2000)
    await publish_offer(api, offer)
    await publish_offer(api, second)
    await fault(3, "byzantine")
    _tx, _gw, result = await fund_incoming(fm, api, session, offer, funds[0])
    assert isinstance(result, Ok)
    account = fm.federation.ln.store.account(offer.hash) if fm.federation.ln else None
    assert account is not None
    assert account.to_json()["contract"]["Incoming"]["contract"]["decrypted_preimage"] == {  # type: ignore[index]
        "Some": list(user.public_key.format())
    }
    # with one byzantine and one offline guardian only two good shares exist: pending, not Invalid
    await fault(2, "offline")
    _tx, _gw, result = await fund_incoming(fm, api, session, second, funds[1])
    assert isinstance(result, Ok)
    ln = fm.federation.ln
    assert ln is not None
    pending = ln.store.account(second.hash)
    assert pending is not None and pending.to_json()["contract"]["Incoming"]["contract"][
        "decrypted_preimage"
    ] == (  # type: ignore[index]
        "Pending"
    )
    await fault(3, "honest")  # three honest shares again: the retry decrypts
    done = ln.store.account(second.hash)
    assert done is not None and isinstance(
        done.to_json()["contract"]["Incoming"]["contract"]["decrypted_preimage"],
        dict,  # type: ignore[index]
    )


async def fund_outgoing(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession, timelock: int
) -> tuple[OutgoingContract, PrivateKey, PrivateKey, bytes]:
    preimage = secrets.token_bytes(32)
    user, gateway = PrivateKey(), PrivateKey()
    contract = OutgoingContract(
        hashlib.sha256(preimage).digest(), gateway.public_key.format(), timelock, user.public_key.format()
    )
    notes = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 1000)
    items, keys = mint_inputs(notes)
    tx = Transaction.signed(items, [ln_out(ContractOutput(1000, contract))], secrets.token_bytes(8), keys)
    assert await submit(api, tx) == Ok(tx.txid())
    served = await api.module_threshold_request(LN_INSTANCE_ID, "await_account", contract.contract_id().hex())
    assert served == {"amount": 1000, "contract": {"Outgoing": contract.to_json()}}
    return contract, user, gateway, preimage


def spend(contract: OutgoingContract, key: PrivateKey, witness: bytes | None) -> Transaction:
    item = ModuleItem(LN_INSTANCE_ID, ln_input_bytes(LightningInputV0(contract.contract_id(), 1000, witness)))
    return Transaction.signed([item], note_outputs(1000), secrets.token_bytes(8), [key.secret])


async def test_outgoing_contract_is_claimed_with_the_preimage_only_by_the_gateway(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    contract, user, gateway, preimage = await fund_outgoing(fm, api, session, 200)
    assert ln_error(await submit(api, spend(contract, gateway, None))) == LnError.MISSING_PREIMAGE.value[0]
    wrong = await submit(api, spend(contract, gateway, bytes(32)))
    assert ln_error(wrong) == LnError.INVALID_PREIMAGE.value[0]
    early = await submit(api, spend(contract, user, preimage))  # the user's key before the timelock
    assert isinstance(early, Err) and early.error.variant == 1  # InvalidSignature
    claim = spend(contract, gateway, preimage)
    assert await submit(api, claim) == Ok(claim.txid())


async def test_cancelled_or_expired_outgoing_contracts_refund_the_user(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    contract, user, gateway, _preimage = await fund_outgoing(fm, api, session, 200)
    forged = CancelOutgoing(contract.contract_id(), user.sign_schnorr(contract.cancellation_message()))
    tx = Transaction.signed([], [ln_out(forged)], secrets.token_bytes(8), [])
    assert ln_error(await submit(api, tx)) == LnError.INVALID_CANCELLATION_SIGNATURE.value[0]
    cancel = CancelOutgoing(contract.contract_id(), gateway.sign_schnorr(contract.cancellation_message()))
    tx = Transaction.signed([], [ln_out(cancel)], secrets.token_bytes(8), [])
    assert await submit(api, tx) == Ok(tx.txid())
    served = await api.module_threshold_request(
        LN_INSTANCE_ID, "await_outgoing_contract_cancelled", contract.contract_id().hex()
    )
    assert isinstance(served, dict) and served["contract"]["Outgoing"]["cancelled"] is True
    refund = spend(contract, user, None)
    assert await submit(api, refund) == Ok(refund.txid())

    second, user2, _gw2, _pre2 = await fund_outgoing(fm, api, session, 150)
    assert isinstance(await submit(api, spend(second, user2, None)), Err)  # not yet
    async with session.post(f"{fm.admin_url}/admin/ln/block_count", json={"block_count": 150}) as r:
        assert r.status == 200
    assert isinstance(
        await submit(api, spend(second, user2, None)), Err
    )  # at the timelock: still the gateway's
    async with session.post(f"{fm.admin_url}/admin/ln/block_count", json={"block_count": 151}) as r:
        assert r.status == 200
    await api.module_threshold_request(LN_INSTANCE_ID, "await_block_height", 150)
    late = spend(second, user2, None)
    assert await submit(api, late) == Ok(late.txid())
    async with session.post(f"{fm.admin_url}/admin/ln/block_count", json={"block_count": 149}) as r:
        assert r.status == 400  # never backwards


GATEWAY = {
    "mint_channel_id": 7,
    "gateway_redeem_key": PrivateKey(bytes([1]) * 32).public_key.format().hex(),
    "node_pub_key": PrivateKey(bytes([2]) * 32).public_key.format().hex(),
    "lightning_alias": "gw",
    "api": "http://127.0.0.1:9/",
    "route_hints": [],
    "fees": {"base_msat": 0, "proportional_millionths": 0},
    "gateway_id": PrivateKey(bytes([1]) * 32).public_key.format().hex(),
    "supports_private_payments": False,
}


async def test_gateway_registrations_expire_after_their_ttl(fm: RunningFedimint, api: FederationApi) -> None:
    now = [1_000_000.0]
    fm.federation.clock = lambda: now[0]
    announcement = {"info": GATEWAY, "vetted": True, "ttl": {"secs": 600, "nanos": 0}}
    await api.module_threshold_request(LN_INSTANCE_ID, "register_gateway", announcement)
    now[0] += 100
    listed = await api.module_threshold_request(LN_INSTANCE_ID, "list_gateways")
    # a gateway cannot vet itself
    assert listed == [{"info": GATEWAY, "vetted": False, "ttl": {"secs": 500, "nanos": 0}}]
    now[0] += 501
    assert await api.module_threshold_request(LN_INSTANCE_ID, "list_gateways") == []
    too_long = {"info": GATEWAY, "vetted": False, "ttl": {"secs": 10**9, "nanos": 0}}
    answers = await api.each(f"module_{LN_INSTANCE_ID}_register_gateway", too_long)
    assert all(a.error is not None for a in answers.values())


@pytest.mark.parametrize(
    ("endpoint", "params", "reason"),
    [
        ("account", "zz" * 32, "not hex"),
        ("account", "00" * 31, "32 bytes"),
        ("await_account", 7, "must be a string"),
        ("offer", None, "must be a string"),
        ("await_block_height", -1, "must be an integer"),
        (
            "register_gateway",
            {"info": {**GATEWAY, "gateway_id": "04" + "00" * 32}, "ttl": {"secs": 60}},
            "not a compressed public key",
        ),
        ("register_gateway", {"info": GATEWAY}, "missing 'ttl'"),
        ("register_gateway", [1, 2, 3], "must be a JSON object"),
    ],
)
async def test_bad_ln_requests_get_a_clear_error_and_change_nothing(
    fm: RunningFedimint,
    api: FederationApi,
    endpoint: str,
    params: object,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devfed.fedimint")
    answers = await api.each(f"module_{LN_INSTANCE_ID}_{endpoint}", params)
    for answer in answers.values():
        assert answer.error is not None and reason in answer.error.message, answer
    ln = fm.federation.ln
    assert ln is not None and ln.store.gateways(fm.federation.clock()) == []
    assert [r for r in caplog.records if "bad" in r.getMessage()], "bad input is logged"
    assert not [r for r in caplog.records if r.levelno > logging.INFO], "at info level, not above"
