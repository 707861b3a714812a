"""devfed's LNv2 module, driven by our own LNv2 client code (tests/support/lnv2_wallet.py):
receive (fund an incoming contract, collect and verify every guardian's decryption key share,
aggregate a threshold, decrypt; an invalid ciphertext is refunded) and send (fund an outgoing
contract; claim with the preimage, cancel with the gateway's forfeit signature, refund after
expiry), with every refusal the module owes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.mint import FaultMode
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import tpe
from fedimint_gw.fedimint.encoding import Err, Reader, decode_whole
from fedimint_gw.fedimint.errors import ThresholdNotReached
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint, TransactionSubmissionOutcome
from tests.support.lnv2_wallet import Lnv2Wallet

PARAMS = FedimintParams(name="test-lnv2", lnv2=True)
AMOUNT = 10_000
INSTANCE = LNV2_INSTANCE_ID


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fm(tmp_path: Path) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(tmp_path / "fm", PARAMS)
    yield running
    await running.stop()


@pytest.fixture
async def api(fm: RunningFedimint, session: aiohttp.ClientSession) -> AsyncIterator[FederationApi]:
    federation_api = FederationApi.from_config(fm.federation.client_config, session)
    yield federation_api
    await federation_api.close()


@pytest.fixture
def user(fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession) -> Lnv2Wallet:
    return Lnv2Wallet(fm, api, session)


@pytest.fixture
def gateway(fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession) -> Lnv2Wallet:
    return Lnv2Wallet(fm, api, session)


def module_error(outcome: TransactionSubmissionOutcome) -> int:
    """The LNv2 error variant inside a refused transaction's Input/Output error."""
    assert isinstance(outcome.result, Err), outcome.result
    assert outcome.result.error.variant in (4, 5), outcome.result  # Input / Output error

    def read(r: Reader) -> int:
        instance, body = r.dyn()
        assert instance == INSTANCE
        return body.varint()

    return decode_whole(outcome.result.error.data, read)


async def funded_incoming(
    user: Lnv2Wallet, gateway: Lnv2Wallet, preimage: bytes, encrypted: bytes | None = None
) -> tuple[IncomingContract, OutPoint]:
    contract = user.incoming_contract(
        gateway.public_key, AMOUNT, int(time.time()) + 3600, preimage, encrypted
    )
    submitted, outpoint = await gateway.fund(contract, AMOUNT)
    assert submitted.accepted, submitted.outcome
    return contract, outpoint


async def test_config_and_module_endpoints(fm: RunningFedimint, api: FederationApi, user: Lnv2Wallet) -> None:
    config = fm.federation.client_config
    assert {m.kind for m in config.modules.values()} == {"mint", "lnv2"}
    assert config.modules[1].kind == "mint" and config.modules[INSTANCE].kind == "lnv2"
    # any threshold of the guardians' tpe key shares interpolates to the aggregate key
    assert sorted(user.config.tpe_pks) == [0, 1, 2, 3]
    assert len({pk.encode() for pk in user.config.tpe_pks.values()}) == 4
    assert await lnv2_api.consensus_block_count(api, INSTANCE) == 0
    assert await lnv2_api.gateways(api, INSTANCE) == []
    await user.admin({"add_gateway": "http://gw.example/"})
    assert await lnv2_api.gateways(api, INSTANCE) == ["http://gw.example/"]
    await user.admin({"remove_gateway": "http://gw.example/"})
    assert await lnv2_api.gateways(api, INSTANCE) == []
    await user.admin({"block_count": 7})
    assert await lnv2_api.consensus_block_count(api, INSTANCE) == 7


async def test_receive_decrypts_with_a_threshold_and_the_user_claims(
    fm: RunningFedimint, api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    preimage = secrets.token_bytes(32)
    contract, outpoint = await funded_incoming(user, gateway, preimage)
    found = await lnv2_api.await_incoming_contract(api, INSTANCE, contract.contract_id(), 2**40)
    assert found == outpoint
    # one byzantine guardian: its share fails the check, the other three make the threshold
    fm.federation.guardians[2].fault = FaultMode.BYZANTINE
    agg = await lnv2_api.aggregate_decryption_key(api, INSTANCE, user.config, contract, outpoint)
    assert contract.decrypt(agg) == preimage
    # the receiver claims with the aggregate key and its claim key: notes worth the amount
    claim = items.IncomingInput(outpoint, agg)
    assert (await user.spend(claim, AMOUNT)).accepted
    # twice is refused: the contract is spent (UnknownContract)
    again = await user.spend(claim, AMOUNT)
    assert module_error(again.outcome) == 1


async def test_two_byzantine_guardians_leave_no_threshold(
    fm: RunningFedimint, api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    contract, outpoint = await funded_incoming(user, gateway, secrets.token_bytes(32))
    fm.federation.guardians[0].fault = FaultMode.BYZANTINE
    fm.federation.guardians[3].fault = FaultMode.BYZANTINE
    with pytest.raises(ThresholdNotReached):
        await lnv2_api.aggregate_decryption_key(api, INSTANCE, user.config, contract, outpoint)


async def test_claim_needs_the_claim_key_and_a_valid_aggregate_key(
    api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    contract, outpoint = await funded_incoming(user, gateway, secrets.token_bytes(32))
    agg = await lnv2_api.aggregate_decryption_key(api, INSTANCE, user.config, contract, outpoint)
    # the gateway's refund key cannot take a contract that decrypts: the signature is refused
    stolen = await gateway.spend(items.IncomingInput(outpoint, agg), AMOUNT)
    assert tx_error(stolen.outcome) == 1  # InvalidSignature
    # a wrong key (another point on G1) is InvalidDecryptionKey
    wrong = tpe.AggregateDecryptionKey(tpe.derive_public_key_share(tpe.SecretKeyShare(5)).point)
    refused = await user.spend(items.IncomingInput(outpoint, wrong), AMOUNT)
    assert module_error(refused.outcome) == 5
    assert (await user.spend(items.IncomingInput(outpoint, agg), AMOUNT)).accepted


def tx_error(outcome: TransactionSubmissionOutcome) -> int:
    """The TransactionError variant of a refused transaction (1 is InvalidSignature)."""
    assert isinstance(outcome.result, Err), outcome.result
    return outcome.result.error.variant


async def test_an_invalid_ciphertext_is_refunded_to_the_gateway(
    api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    preimage = secrets.token_bytes(32)
    # the user encrypts something that is not the preimage of the payment hash
    contract, outpoint = await funded_incoming(user, gateway, preimage, encrypted=secrets.token_bytes(32))
    agg = await lnv2_api.aggregate_decryption_key(api, INSTANCE, user.config, contract, outpoint)
    assert contract.decrypt(agg) is None
    # so the user cannot claim it, and the gateway takes its funding back with the refund key
    assert tx_error((await user.spend(items.IncomingInput(outpoint, agg), AMOUNT)).outcome) == 1
    assert (await gateway.spend(items.IncomingInput(outpoint, agg), AMOUNT)).accepted


async def test_a_ciphertext_bound_to_another_commitment_cannot_be_funded(
    user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    good = user.incoming_contract(
        gateway.public_key, AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    other = user.incoming_contract(gateway.public_key, AMOUNT + 1, int(time.time()) + 3600, bytes(32))
    moved = IncomingContract(other.commitment, good.ciphertext)
    submitted, _ = await gateway.fund(moved, AMOUNT + 1)
    assert module_error(submitted.outcome) == 1  # InvalidContract
    expired = user.incoming_contract(gateway.public_key, AMOUNT, int(time.time()) - 1, bytes(32))
    submitted, _ = await gateway.fund(expired, AMOUNT)
    assert module_error(submitted.outcome) == 2  # ContractExpired


async def test_send_claim_with_the_preimage(
    api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    preimage = secrets.token_bytes(32)
    contract = user.outgoing_contract(gateway.public_key, AMOUNT, 10, hashlib.sha256(preimage).digest())
    submitted, outpoint = await user.fund(contract, AMOUNT)
    assert submitted.accepted
    assert await lnv2_api.outgoing_contract_expiration(api, INSTANCE, outpoint) == (
        contract.contract_id(),
        10,
    )
    wrong = items.OutgoingWitness(items.WitnessKind.CLAIM, secrets.token_bytes(32))
    refused = await gateway.spend(items.OutgoingInput(outpoint, wrong), AMOUNT)
    assert module_error(refused.outcome) == 2  # InvalidPreimage
    claim = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CLAIM, preimage))
    # the user cannot claim it for itself: claim_pk is the gateway's
    assert tx_error((await user.spend(claim, AMOUNT)).outcome) == 1
    assert (await gateway.spend(claim, AMOUNT)).accepted
    image = contract.payment_image
    assert await lnv2_api.await_preimage(api, INSTANCE, outpoint, 10, image) == preimage
    assert await lnv2_api.outgoing_contract_expiration(api, INSTANCE, outpoint) is None


async def test_send_cancel_with_the_forfeit_signature(user: Lnv2Wallet, gateway: Lnv2Wallet) -> None:
    contract = user.outgoing_contract(gateway.public_key, AMOUNT, 10, secrets.token_bytes(32))
    _, outpoint = await user.fund(contract, AMOUNT)
    bogus = sign_schnorr(user.key, contract.forfeit_message())  # not the claim key's
    refused = await user.spend(
        items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, bogus)), AMOUNT
    )
    assert module_error(refused.outcome) == 6  # InvalidForfeitSignature
    forfeit = sign_schnorr(gateway.key, contract.forfeit_message())
    assert contract.verify_forfeit_signature(forfeit)
    cancel = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, forfeit))
    assert (await user.spend(cancel, AMOUNT)).accepted


async def test_send_refund_only_after_expiry(
    api: FederationApi, user: Lnv2Wallet, gateway: Lnv2Wallet
) -> None:
    preimage = secrets.token_bytes(32)
    contract = user.outgoing_contract(gateway.public_key, AMOUNT, 10, hashlib.sha256(preimage).digest())
    _, outpoint = await user.fund(contract, AMOUNT)
    refund = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.REFUND))
    assert module_error((await user.spend(refund, AMOUNT)).outcome) == 4  # NotExpired
    await user.admin({"block_count": 10})
    claim = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CLAIM, preimage))
    assert module_error((await gateway.spend(claim, AMOUNT)).outcome) == 3  # Expired
    assert await lnv2_api.await_preimage(api, INSTANCE, outpoint, 10, contract.payment_image) is None
    assert (await user.spend(refund, AMOUNT)).accepted


async def test_unbalanced_lnv2_spend_is_refused(user: Lnv2Wallet, gateway: Lnv2Wallet) -> None:
    contract = user.outgoing_contract(gateway.public_key, AMOUNT, 10, secrets.token_bytes(32))
    _, outpoint = await user.fund(contract, AMOUNT)
    forfeit = sign_schnorr(gateway.key, contract.forfeit_message())
    cancel = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, forfeit))
    greedy = await user.spend(cancel, AMOUNT + 1)
    assert tx_error(greedy.outcome) == 0  # UnbalancedTransaction
    assert (await user.spend(cancel, AMOUNT)).accepted
