"""The FederationClient contract, one suite run over every built-in adapter against live devfed.

Each test runs once per adapter (`major` = 1: devfed-v1 REST, 2: devfed-v2 WebSocket). A
devfed user wallet plays the user; the gateway's ecash comes from the faucet through the
user (`send_ecash` → adapter `receive_ecash`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass

import aiohttp
import pytest
from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.codec import object_id
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.server import RunningFederation
from contrib.devfed.transactions import offer_context, v2_contract_context
from contrib.devfed.wallet import Wallet, decode_notes, encode_notes
from fedimint_gw.clock import SystemClock
from fedimint_gw.crypto.threshold_elgamal import encrypt
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.errors import (
    FederationRejected,
    FederationUnreachable,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.client import (
    EcashFees,
    Feature,
    GatewayRegistration,
    IncomingRequest,
    IncomingState,
    OutgoingState,
    RegistrationStatus,
)
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.federation.registry import federation_id_of
from fedimint_gw.store.db import Database
from tests.contract.conftest import (
    PARAMS,
    FedFactory,
    Gateway,
    GatewayFactory,
    UserFactory,
    admin,
    balance_becomes,
    factory_for,
    fund_gateway,
    set_fault,
)

HANG_GUARD = 20.0  # a safety net against hangs, not a timing assertion


def _registration(api_url: str = "http://gateway.test/api") -> GatewayRegistration:
    return GatewayRegistration(
        node_id=PrivateKey(b"\x01" * 32).public_key.format().hex(),
        scid=ShortChannelId(800_000, 1, 0),
        api_url=api_url,
        fees=FeeSchedule(1000, 100),
        ttl_secs=600,
    )


@dataclass
class Receive:
    """An incoming payment as the gateway sees it, and the receiver's secrets."""

    request: IncomingRequest
    preimage: bytes
    claim_key: PrivateKey


async def publish_offer(user: Wallet, offer: dict[str, object]) -> None:
    """POST the offer to the first guardian that is online (as a receiver's wallet would)."""
    for guardian in user.config.guardians:
        try:
            await http_json(user.session, "POST", f"{guardian.url}/v1/offers", offer)
            return
        except DevfedError as exc:
            if exc.code is not ErrorCode.GUARDIAN_OFFLINE:
                raise
    raise AssertionError("no guardian took the offer")


async def new_receive(gw: Gateway, user: Wallet, amount: int, valid: bool = True) -> Receive:
    """The receiver's side of a receive in the adapter's version: a published offer (v1) or a
    contract handed to the gateway (v2). `valid=False` encrypts a preimage of another hash."""
    preimage, claim_key = os.urandom(32), PrivateKey()
    encrypted = preimage if valid else os.urandom(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    client = gw.client
    if Feature.CONSENSUS_DECRYPTION in client.features:
        offer: dict[str, object] = {
            "payment_hash": payment_hash,
            "amount_msat": amount,
            "claim_pubkey": claim_key.public_key.format().hex(),
            "expiry": int(time.time()) + 3600,
        }
        if valid:
            offer = wallet_ln.build_offer(user, amount, int(str(offer["expiry"])), preimage, claim_key)
        else:
            offer["encrypted_preimage"] = encrypt(
                user.config.ln_pubkey, encrypted, offer_context(offer)
            ).to_dict()
        await publish_offer(user, offer)
        request = await client.lookup_incoming(payment_hash)
        assert request is not None
    else:
        assert await client.lookup_incoming(payment_hash) is None
        height = await client.block_height()
        contract = wallet_ln.build_v2_contract(
            user, amount, preimage, claim_key, client.gateway_pubkey, height + 144
        )
        if not valid:
            contract["encrypted_preimage"] = encrypt(
                user.config.ln_pubkey, encrypted, v2_contract_context(contract)
            ).to_dict()
        request = await client.accept_incoming_contract(contract, Msat(amount))
    assert request.payment_hash == payment_hash and request.amount == Msat(amount)
    return Receive(request, preimage, claim_key)


async def outgoing(user: Wallet, gw: Gateway, amount: int, key: str | None = None) -> tuple[str, bytes]:
    """The user locks `amount` to the gateway for a payment hash; returns (contract id, preimage)."""
    preimage = os.urandom(32)
    cid, _, _ = await wallet_ln.fund_outgoing(
        user, hashlib.sha256(preimage).hexdigest(), amount, key or gw.client.gateway_pubkey
    )
    return cid, preimage


# ---- factory, info, registration ------------------------------------------------------------
async def test_factory_serves_the_config_exactly(
    major: int, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    factory = factory_for(major)
    assert (factory.major, factory.min_minor, factory.name) == (major, 0, f"devfed-v{major}")
    config = await factory.fetch_config(session, fed.guardian_urls[2], 2.0)
    assert config == fed.federation.config.to_dict()
    assert federation_id_of(config) == fed.federation_id
    desc = factory.describe(config)
    assert (desc.name, desc.threshold, desc.guardian_urls) == ("contract", 3, fed.guardian_urls)
    with pytest.raises(ValueError):
        factory.describe({"name": "x"})


async def test_create_refuses_a_config_of_another_federation(gateway: Gateway) -> None:
    import dataclasses

    with pytest.raises(InvalidInput, match="does not hash"):
        gateway.factory.create(dataclasses.replace(gateway.ctx, federation_id="00" * 32))


async def test_info_block_height_and_features(
    gateway: Gateway, fed: RunningFederation, session: aiohttp.ClientSession, major: int
) -> None:
    client = gateway.client
    info = await client.info()
    assert info.federation_id.hex == fed.federation_id
    assert (info.name, info.guardians, info.threshold, info.tx_fee) == ("contract", 4, 3, Msat(0))
    assert info.api_version.major == major
    start = await client.block_height()
    assert info.block_height == start
    await admin(session, fed, "/admin/block_height", {"advance": 5})
    assert await client.block_height() == start + 5
    expected = (
        {Feature.SELF_REGISTRATION, Feature.CANCEL_OUTGOING, Feature.CONSENSUS_DECRYPTION}
        if major == 1
        else {
            Feature.VETTED_GATEWAYS,
            Feature.INVOICE_BY_GATEWAY,
            Feature.FORFEIT_OUTGOING,
            Feature.GATEWAY_DECRYPTION,
        }
    )
    assert client.features == expected
    assert len(client.gateway_pubkey) == 66 and client.gateway_pubkey[:2] in ("02", "03")
    await client.close()
    await client.close()  # closing twice is harmless


async def test_register(gateway: Gateway, fed: RunningFederation, session: aiohttp.ClientSession) -> None:
    client = gateway.client
    reg = _registration()
    if Feature.SELF_REGISTRATION in client.features:
        before = int(time.time())
        result = await client.register(reg)
        assert result.status is RegistrationStatus.REGISTERED
        assert result.expires_at is not None and before + 600 <= result.expires_at <= int(time.time()) + 601
        listed = await http_json(session, "GET", f"{fed.guardian_urls[1]}/v1/gateways")
        assert isinstance(listed, dict)
        (ours,) = [g for g in listed["gateways"] if g["gateway_pubkey"] == client.gateway_pubkey]
        assert ours["scid"] == reg.scid.to_int() and ours["fees"] == {"base_msat": 1000, "ppm": 100}
        again = await client.register(reg)  # re-registering extends, never fails
        assert again.status is RegistrationStatus.REGISTERED
    else:
        assert (await client.register(reg)).status is RegistrationStatus.NOT_VETTED
        await admin(session, fed, "/admin/gateways", {"url": reg.api_url})
        assert (await client.register(reg)).status is RegistrationStatus.VETTED


# ---- ecash -----------------------------------------------------------------------------------
async def test_ecash_moves_between_adapter_and_devfed_wallet(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    assert await client.balance() == Msat(0)
    assert await fund_gateway(user, client, 50_000) == Msat(50_000)
    assert await client.balance() == Msat(50_000)
    notes = await client.spend_ecash(Msat(12_345), "payout-1")
    assert notes.amount == Msat(12_345)
    assert await client.balance() == Msat(50_000 - 12_345)
    again = await client.spend_ecash(Msat(12_345), "payout-1")  # a retry: same notes, no new spend
    assert again == notes and await client.balance() == Msat(50_000 - 12_345)
    before = user.balance_msat()
    assert await user.receive_ecash(notes.notes) == 12_345
    assert user.balance_msat() == before + 12_345


async def test_receive_ecash_is_idempotent(gateway: Gateway, user: Wallet) -> None:
    ecash = await user.send_ecash(4_096)
    assert await gateway.client.receive_ecash(ecash) == Msat(4_096)
    assert await gateway.client.receive_ecash(ecash) == Msat(4_096)
    assert await gateway.client.balance() == Msat(4_096)


async def test_inspect_ecash_reads_notes_offline_and_knows_what_was_received(
    gateway: Gateway, user: Wallet
) -> None:
    ecash = await user.send_ecash(3_072)
    fid, notes = decode_notes(ecash)
    seen = await gateway.client.inspect_ecash(ecash)
    assert seen.federation_id == fid and seen.amount == Msat(3_072) and not seen.received
    reordered = await gateway.client.inspect_ecash(encode_notes(fid, list(reversed(notes))))
    assert reordered.fingerprint == seen.fingerprint  # one set of notes, one fingerprint
    await gateway.client.receive_ecash(ecash)
    assert (await gateway.client.inspect_ecash(ecash)).received
    other = await gateway.client.inspect_ecash(encode_notes("ab" * 32, notes))
    assert other.federation_id == "ab" * 32 and not other.received
    assert (await gateway.client.inspect_ecash(await user.send_ecash(1_024))).received is False
    with pytest.raises(InvalidInput):
        await gateway.client.inspect_ecash("devfednotes1garbage")


async def test_receive_ecash_refuses_bad_notes(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    with pytest.raises(InvalidInput):
        await client.receive_ecash("devfednotes1garbage")
    with pytest.raises(InvalidInput):
        await client.receive_ecash("cashuAeyJ0b2tlbiI6W119")
    _, notes = decode_notes(await user.send_ecash(1_000))
    with pytest.raises(InvalidInput, match=r"belong to federation"):
        await client.receive_ecash(encode_notes("ab" * 32, notes))
    spent = await user.send_ecash(2_000)
    await user.receive_ecash(spent)  # the user spends them first
    with pytest.raises(FederationRejected, match="double_spend"):
        await client.receive_ecash(spent)
    assert await client.balance() == Msat(0)
    with pytest.raises(InsufficientFunds):
        await client.spend_ecash(Msat(1), "too-much")


async def test_a_note_spent_elsewhere_is_retired_not_recycled(gateway: Gateway, user: Wallet) -> None:
    """Notes the gateway holds but the federation already saw spent: the refusal names one, the
    gateway marks it spent, and keeps the others spendable."""
    client = gateway.client
    from fedimint_gw.federation.devfed.notes_format import decode_notes as gateway_notes

    ecash = await user.send_ecash(3_072)  # notes of 2048 + 1024 msat
    _, notes = gateway_notes(ecash)
    await gateway.wallet.add_notes(notes)  # the gateway holds them...
    await user.receive_ecash(ecash)  # ...but someone else spent them first
    assert await client.balance() == Msat(3_072)
    with pytest.raises(FederationRejected, match="double_spend"):
        await client.spend_ecash(Msat(3_072), "uses-a-dead-note")
    after = (await client.balance()).value
    assert after < 3_072  # the note named in the refusal is out of the pool
    for attempt in range(3):  # each refusal retires one more dead note, never the same twice
        if after == 0:
            break
        with pytest.raises(FederationRejected, match="double_spend"):
            await client.spend_ecash(Msat(after), f"retry-{attempt}")
        assert (await client.balance()).value < after
        after = (await client.balance()).value
    assert after == 0


# ---- outgoing --------------------------------------------------------------------------------
async def test_claim_outgoing_with_preimage(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    cid, preimage = await outgoing(user, gateway, 20_000)
    contract = await client.verify_outgoing(cid)
    assert contract.state is OutgoingState.FUNDED and contract.gateway_key_matches
    assert contract.amount == Msat(20_000) and contract.payment_hash == hashlib.sha256(preimage).hexdigest()
    assert contract.timelock_height > await client.block_height()
    with pytest.raises(InvalidInput, match="preimage"):
        await client.claim_outgoing(cid, os.urandom(32))
    assert await client.claim_outgoing(cid, preimage) == Msat(20_000)
    assert await client.claim_outgoing(cid, preimage) == Msat(20_000)  # retry: no second claim
    assert await client.balance() == Msat(20_000)
    assert (await client.verify_outgoing(cid)).state is OutgoingState.CLAIMED
    view = await user.client.contract(cid)
    assert view["preimage"] == preimage.hex()  # the user learns the preimage


async def test_unknown_and_foreign_contracts(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    with pytest.raises(NotFound):
        await client.verify_outgoing("ee" * 32)
    with pytest.raises(InvalidInput):
        await client.verify_outgoing("not-a-contract-id")
    other = PrivateKey().public_key.format().hex()
    cid, preimage = await outgoing(user, gateway, 5_000, key=other)
    assert not (await client.verify_outgoing(cid)).gateway_key_matches
    with pytest.raises(InvalidInput, match="not locked"):
        await client.claim_outgoing(cid, preimage)
    assert await client.balance() == Msat(0)


async def test_cancel_or_forfeit_lets_the_user_refund(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    before = user.balance_msat()
    cid, _ = await outgoing(user, gateway, 30_000)
    assert user.balance_msat() == before - 30_000
    result = await client.cancel_outgoing(cid)
    assert result.contract_id == cid
    if Feature.CANCEL_OUTGOING in client.features:
        assert result.forfeit_signature is None
        assert (await client.verify_outgoing(cid)).state is OutgoingState.CANCELLED
    else:
        assert result.forfeit_signature and (await client.verify_outgoing(cid)).state is OutgoingState.FUNDED
    assert await client.cancel_outgoing(cid) == result  # repeatable
    await wallet_ln.refund_outgoing(user, cid, result.forfeit_signature)
    assert user.balance_msat() == before
    assert (await client.verify_outgoing(cid)).state is OutgoingState.REFUNDED


# ---- incoming --------------------------------------------------------------------------------
async def test_receive_fund_and_await_preimage(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    receive = await new_receive(gateway, user, 40_000)
    cid = await client.fund_incoming(receive.request, "pay-1")
    assert cid == receive.request.contract_id
    await balance_becomes(client, 60_000)
    outcome = await client.await_preimage(cid, 10.0)
    assert outcome.state is IncomingState.PREIMAGE and outcome.preimage == receive.preimage
    assert await client.fund_incoming(receive.request, "pay-1") == cid  # retry: funded once
    await balance_becomes(client, 60_000)
    other = await new_receive(gateway, user, 1_000)
    with pytest.raises(InvalidInput, match="already used"):
        await client.fund_incoming(other.request, "pay-1")  # an operation id names one transaction
    concurrent = await asyncio.gather(*(client.fund_incoming(other.request, "pay-2") for _ in range(3)))
    assert set(concurrent) == {other.request.contract_id}
    await balance_becomes(client, 59_000)
    assert (await client.await_preimage(cid, 1.0)).preimage == receive.preimage
    before = user.balance_msat()
    assert await wallet_ln.claim_incoming(user, cid, receive.claim_key) == 40_000
    assert user.balance_msat() == before + 40_000
    assert (await client.await_preimage(cid, 1.0)).preimage == receive.preimage  # also once claimed


async def test_invalid_preimage_is_refunded_to_the_gateway(gateway: Gateway, user: Wallet) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    receive = await new_receive(gateway, user, 40_000, valid=False)
    cid = await client.fund_incoming(receive.request, "pay-bad")
    await balance_becomes(client, 60_000)
    outcome = await client.await_preimage(cid, 10.0)
    assert outcome.state is IncomingState.REFUNDED and outcome.preimage is None
    await balance_becomes(client, 100_000)
    assert (await client.await_preimage(cid, 1.0)).state is IncomingState.REFUNDED  # repeatable
    await balance_becomes(client, 100_000)
    with pytest.raises(DevfedError, match="contract_state"):
        await wallet_ln.claim_incoming(user, cid, receive.claim_key)


async def test_fund_incoming_without_ecash(gateway: Gateway, user: Wallet) -> None:
    receive = await new_receive(gateway, user, 10_000)
    with pytest.raises(InsufficientFunds):
        await gateway.client.fund_incoming(receive.request, "pay-poor")


async def test_lookup_of_unknown_hash(gateway: Gateway) -> None:
    assert await gateway.client.lookup_incoming("ab" * 32) is None
    with pytest.raises(InvalidInput):
        await gateway.client.lookup_incoming("xyz")


async def test_accept_incoming_contract_checks(
    gateway: Gateway, user: Wallet, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    height = await client.block_height()
    preimage, key = os.urandom(32), PrivateKey()

    def contract(
        refund: str = client.gateway_pubkey, amount: int = 9_000, expires: int = height + 50
    ) -> dict:
        return wallet_ln.build_v2_contract(user, amount, preimage, key, refund, expires)

    if Feature.INVOICE_BY_GATEWAY not in client.features:
        with pytest.raises(InvalidInput, match="v1"):
            await client.accept_incoming_contract(contract(), Msat(9_000))
        return
    good = contract()
    assert (await client.accept_incoming_contract(good, Msat(9_000))).contract_id == object_id(good)
    with pytest.raises(InvalidInput, match="refund_pubkey"):
        await client.accept_incoming_contract(
            contract(refund=PrivateKey().public_key.format().hex()), Msat(9_000)
        )
    with pytest.raises(InvalidInput, match="msat"):
        await client.accept_incoming_contract(good, Msat(9_001))
    with pytest.raises(InvalidInput, match="expired"):
        await client.accept_incoming_contract(contract(expires=height), Msat(9_000))
    tampered = dict(good, amount_msat=8_000)  # the ciphertext is bound to the original contract
    with pytest.raises(InvalidInput, match="encrypted"):
        await client.accept_incoming_contract(tampered, Msat(8_000))
    with pytest.raises(InvalidInput):
        await client.accept_incoming_contract(dict(good, kind="incoming_contract_v1"), Msat(9_000))
    with pytest.raises(InvalidInput):
        await client.accept_incoming_contract(dict(good, extra=1), Msat(9_000))
    with pytest.raises(InvalidInput):
        await client.accept_incoming_contract(dict(good, encrypted_preimage={"R": "00"}), Msat(9_000))


# ---- crash safety ----------------------------------------------------------------------------
class Crash(Exception):
    """A simulated process death at a chosen point."""


class CrashingWallet(NoteWallet):
    """A NoteWallet that 'dies' right after a step has been persisted."""

    def __init__(self, db: Database, federation_id: str, after: str) -> None:
        super().__init__(db, federation_id, SystemClock())
        self.after = after

    async def prepare(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        op = await super().prepare(*args, **kwargs)
        if self.after == "prepare":
            raise Crash("after prepare, before submit")
        return op

    async def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.after == "submit":
            raise Crash("after the federation accepted, before the notes were stored")
        await super().complete(*args, **kwargs)

    async def note_accepted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.after == "submit":  # a funding stores its acceptance, then finishes its notes
            await super().note_accepted(*args, **kwargs)
            raise Crash("after the acceptance was stored, before the notes were stored")
        await super().note_accepted(*args, **kwargs)


@pytest.mark.parametrize("crash_after", ["prepare", "submit"])
async def test_fund_retry_after_a_crash_has_one_effect(
    gateway: Gateway, user: Wallet, db: Database, fed: RunningFederation, crash_after: str
) -> None:
    await fund_gateway(user, gateway.client, 100_000)
    receive = await new_receive(gateway, user, 25_000)
    crashing = CrashingWallet(db, fed.federation_id, crash_after)
    with pytest.raises(Crash):
        await gateway.rebuilt(crashing).fund_incoming(receive.request, "pay-crash")
    restarted = gateway.rebuilt(NoteWallet(db, fed.federation_id, SystemClock()))
    assert await restarted.balance() < Msat(100_000)  # the inputs stay reserved
    cid = await restarted.fund_incoming(receive.request, "pay-crash")
    assert cid == receive.request.contract_id
    await balance_becomes(restarted, 75_000)
    assert (await restarted.await_preimage(cid, 10.0)).preimage == receive.preimage


async def test_resume_operations_finishes_a_crashed_claim(
    gateway: Gateway, user: Wallet, db: Database, fed: RunningFederation
) -> None:
    cid, preimage = await outgoing(user, gateway, 7_000)
    crashing = CrashingWallet(db, fed.federation_id, "prepare")
    with pytest.raises(Crash):
        await gateway.rebuilt(crashing).claim_outgoing(cid, preimage)
    restarted = gateway.rebuilt(NoteWallet(db, fed.federation_id, SystemClock()))
    assert await restarted.resume_operations() == 1  # type: ignore[attr-defined]
    assert await restarted.balance() == Msat(7_000)
    assert await restarted.claim_outgoing(cid, preimage) == Msat(7_000)
    assert await restarted.balance() == Msat(7_000)


# ---- guardian faults -------------------------------------------------------------------------
async def test_one_guardian_offline_is_tolerated(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await set_fault(session, fed, 0, "offline")
    client = gateway.client
    assert await fund_gateway(user, client, 80_000) == Msat(80_000)
    cid, preimage = await outgoing(user, gateway, 10_000)
    assert await client.claim_outgoing(cid, preimage) == Msat(10_000)
    receive = await new_receive(gateway, user, 30_000)
    cid = await client.fund_incoming(receive.request, "pay-offline")
    assert (await client.await_preimage(cid, 10.0)).preimage == receive.preimage
    notes = await client.spend_ecash(Msat(1_000), "out-offline")
    assert await user.receive_ecash(notes.notes) == 1_000
    await balance_becomes(client, 80_000 + 10_000 - 30_000 - 1_000)


async def test_byzantine_guardian_is_detected_and_ignored(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    await set_fault(session, fed, 1, "byzantine")
    client = gateway.client
    assert await fund_gateway(user, client, 80_000) == Msat(80_000)
    receive = await new_receive(gateway, user, 30_000)
    cid = await client.fund_incoming(receive.request, "pay-byz")
    assert (await client.await_preimage(cid, 10.0)).preimage == receive.preimage
    assert 1 in client.misbehaving_guardians  # type: ignore[attr-defined]
    await balance_becomes(client, 50_000)


async def test_too_many_byzantine_guardians_then_retry(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    cid, preimage = await outgoing(user, gateway, 9_000)
    await set_fault(session, fed, 2, "byzantine")
    await set_fault(session, fed, 3, "byzantine")
    with pytest.raises(FederationUnreachable, match=r"invalid shares from guardian"):
        await asyncio.wait_for(gateway.client.claim_outgoing(cid, preimage), HANG_GUARD)
    assert {2, 3} <= gateway.client.misbehaving_guardians  # type: ignore[attr-defined]
    await set_fault(session, fed, 2, "honest")
    assert await gateway.client.claim_outgoing(cid, preimage) == Msat(9_000)  # the retry finishes it
    assert await gateway.client.balance() == Msat(9_000)


@pytest.mark.parametrize("how", ["stopped", "offline", "slow"])
async def test_federation_down_gives_a_typed_error(
    make_gateway: GatewayFactory,
    start_fed: FedFactory,
    make_user: UserFactory,
    session: aiohttp.ClientSession,
    major: int,
    how: str,
) -> None:
    fed = await start_fed("down")
    user = await make_user(fed)
    await user.faucet(50_000)
    gw = await make_gateway(fed, major, timeout=0.3)
    client = gw.client
    await fund_gateway(user, client, 20_000)
    cid, preimage = await outgoing(user, gw, 5_000)
    ecash = await user.send_ecash(1_000)
    if how == "stopped":
        await fed.stop()
    else:
        for peer in range(4):
            await set_fault(session, fed, peer, how, delay_ms=1_500)
    calls = [
        lambda: client.claim_outgoing(cid, preimage),
        lambda: client.receive_ecash(ecash),
        lambda: client.spend_ecash(Msat(1_000), "down"),
    ]
    if how != "slow":  # each costs n x timeout when every guardian is slow: fewer calls there
        calls += [
            client.info,
            client.block_height,
            lambda: client.verify_outgoing(cid),
            lambda: client.await_preimage(cid, 0.2),
            lambda: client.register(_registration()),
        ]
    for call in calls:
        with pytest.raises(FederationUnreachable):
            await asyncio.wait_for(call(), HANG_GUARD)
    assert await client.balance() <= Msat(19_000)  # the spend's inputs stay reserved for a retry
    if how != "stopped":
        for peer in range(4):
            await set_fault(session, fed, peer, "honest")
        assert await client.claim_outgoing(cid, preimage) == Msat(5_000)
        assert (await client.spend_ecash(Msat(1_000), "down")).amount == Msat(1_000)
        assert await client.balance() == Msat(24_000)


# ---- fees and negotiation --------------------------------------------------------------------
async def test_transaction_fees_are_accounted(
    make_gateway: GatewayFactory, start_fed: FedFactory, make_user: UserFactory, major: int
) -> None:
    fed = await start_fed("fees", tx_fee_msat=10)
    user = await make_user(fed)
    await user.faucet(200_000)
    gw = await make_gateway(fed, major)
    client = gw.client
    assert await fund_gateway(user, client, 50_000) == Msat(49_990)
    cid, preimage = await outgoing(user, gw, 20_000)
    assert await client.claim_outgoing(cid, preimage) == Msat(19_990)
    notes = await client.spend_ecash(Msat(5_000), "fee-out")
    assert await client.balance() == Msat(49_990 + 19_990 - 5_010)
    assert notes.fee == Msat(10)  # what the spend really cost, on top of the notes
    assert await client.ecash_fees(Msat(5_000)) == EcashFees(spend=Msat(10), reissue=Msat(10))
    assert await user.receive_ecash(notes.notes) == 4_990
    receive = await new_receive(gw, user, 10_000, valid=False)
    await client.fund_incoming(receive.request, "fee-in")
    assert (await client.await_preimage(receive.request.contract_id, 10.0)).state is IncomingState.REFUNDED
    assert await client.balance() == Msat(49_990 + 19_990 - 5_010 - 10 - 10)


async def test_negotiation_with_real_federations(
    start_fed: FedFactory, make_gateway: GatewayFactory, session: aiohttp.ClientSession
) -> None:
    from fedimint_gw.federation.builtin import builtin_adapters
    from fedimint_gw.federation.registry import discover_adapters, fetch_versions, negotiate

    adapters = discover_adapters(builtin_adapters())
    for name, majors, expected in [("only1", (1,), 1), ("only2", (2,), 2), ("both", (1, 2), 2)]:
        fed = await start_fed(name, majors=majors)
        answers = await fetch_versions(session, fed.guardian_urls, 2.0)
        version = negotiate(answers, PARAMS.threshold, adapters)
        assert version.major == expected, name
        gw = await make_gateway(fed, version.major)
        info = await gw.client.info()
        assert info.api_version.major == expected and info.federation_id.hex == fed.federation_id
