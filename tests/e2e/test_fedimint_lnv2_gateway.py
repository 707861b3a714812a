"""The gateway's LNv2 side (federation/fedimint/lnv2.py) against devfed's LNv2 module, with our
own LNv2 user wallet on the other side: receive (fund, decrypt, refund), send (check, claim,
forfeit), refusals that change nothing, and replay after a crash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.mint import FaultMode
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationRejected, InvalidInput, NotFound
from fedimint_gw.federation.client import IncomingState
from fedimint_gw.federation.fedimint.lnv2 import CLAIM, FUND, KINDS, Lnv2Gateway
from fedimint_gw.federation.fedimint.mint import MintClient
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOpState
from fedimint_gw.fedimint.config import ConsensusVersion
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.lnv2.transactions import lnv2_input, lnv2_output
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint
from fedimint_gw.fedimint.transport import TransportSettings
from fedimint_gw.store.db import Database
from tests.e2e.conftest import wait_until
from tests.support.lnv2_wallet import Lnv2Wallet

PARAMS = FedimintParams(
    name="e2e-lnv2",
    lnv2=True,
    lnv2_fee_base_msat=10,
    lnv2_fee_ppm=1000,
    core_consensus=ConsensusVersion(2, 0),
)
FAST = TransportSettings(call_timeout=5.0, connect_timeout=2.0, reconnect_delay=0.05, max_reconnect_delay=0.1)
AMOUNT = 20_000
FEE = 10 + AMOUNT * 1000 // 1_000_000


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
    federation_api = FederationApi.from_config(fm.federation.client_config, session, FAST)
    yield federation_api
    await federation_api.close()


@pytest.fixture
def user(fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession) -> Lnv2Wallet:
    return Lnv2Wallet(fm, api, session)


MakeGateway = Callable[[str], Awaitable[Lnv2Gateway]]
GATEWAY_SECRET = bytes([7]) * 32
ROOT = bytes([9]) * 32


@pytest.fixture
async def make_gateway(tmp_path: Path, fm: RunningFedimint, api: FederationApi) -> AsyncIterator[MakeGateway]:
    """make(name): a gateway on database `name` (the same name again: a restarted gateway)."""
    dbs: list[Database] = []

    async def make(name: str) -> Lnv2Gateway:
        db = await Database.open(str(tmp_path / f"{name}.sqlite"))
        dbs.append(db)
        config = fm.federation.client_config
        notes = FedimintNotes(
            db, fm.federation_id, MINT_INSTANCE_ID, fm.federation.mint_config, ROOT, SystemClock()
        )
        apis = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
        mint = MintClient(notes, api, apis, accept_check_timeout=1.0)
        lnv2 = Lnv2ClientConfig.from_bytes(config.modules[LNV2_INSTANCE_ID].raw)
        return Lnv2Gateway(notes, mint, api, LNV2_INSTANCE_ID, lnv2, GATEWAY_SECRET, SystemClock())

    yield make
    for db in dbs:
        await db.close()


async def funded_gateway(
    make: MakeGateway, fm: RunningFedimint, session: aiohttp.ClientSession
) -> Lnv2Gateway:
    gw = await make("gw")
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 100_000)
    await gw._mint.receive(got.oob)
    return gw


async def balance(gw: Lnv2Gateway) -> int:
    return (await gw._notes.balance()).value


def incoming(
    user: Lnv2Wallet, gw: Lnv2Wallet | Lnv2Gateway, preimage: bytes, **kw: object
) -> IncomingContract:
    key = gw.module_public_key if isinstance(gw, Lnv2Gateway) else gw.public_key
    expiration = kw.pop("expiration", int(time.time()) + 3600)
    return user.incoming_contract(key, AMOUNT, int(expiration), preimage, **kw)  # type: ignore[arg-type]


async def test_receive_funds_decrypts_and_the_user_claims(
    fm: RunningFedimint,
    api: FederationApi,
    session: aiohttp.ClientSession,
    user: Lnv2Wallet,
    make_gateway: MakeGateway,
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    before = await balance(gw)
    preimage = secrets.token_bytes(32)
    contract = incoming(user, gw, preimage)
    gw.check_incoming(contract, Msat(AMOUNT))
    outpoint = await gw.fund_incoming(contract, "recv-1")
    # the gateway paid the contract amount plus LNv2's output fee, nothing else (mint fees are 0);
    # the change notes are finished after the funding is accepted

    async def exact() -> bool:
        return before - await balance(gw) == AMOUNT + FEE

    await wait_until(exact)
    assert (
        await lnv2_api.await_incoming_contract(api, LNV2_INSTANCE_ID, contract.contract_id(), 2**40)
        == outpoint
    )
    # the same operation again funds nothing more
    assert await gw.fund_incoming(contract, "recv-1") == outpoint
    assert before - await balance(gw) == AMOUNT + FEE
    fm.federation.guardians[1].fault = FaultMode.BYZANTINE
    outcome = await gw.incoming_outcome(contract, outpoint, "recv-1-refund")
    assert outcome.state is IncomingState.PREIMAGE and outcome.preimage == preimage
    agg = await lnv2_api.aggregate_decryption_key(api, LNV2_INSTANCE_ID, user.config, contract, outpoint)
    assert (await user.spend(items.IncomingInput(outpoint, agg), AMOUNT)).accepted


async def test_two_byzantine_guardians_keep_the_receive_pending(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    contract = incoming(user, gw, secrets.token_bytes(32))
    outpoint = await gw.fund_incoming(contract, "recv-2")
    fm.federation.guardians[0].fault = FaultMode.BYZANTINE
    fm.federation.guardians[2].fault = FaultMode.BYZANTINE
    assert (await gw.incoming_outcome(contract, outpoint, "recv-2-refund")).state is IncomingState.PENDING
    fm.federation.guardians[2].fault = FaultMode.HONEST
    assert (await gw.incoming_outcome(contract, outpoint, "recv-2-refund")).state is IncomingState.PREIMAGE


async def test_an_invalid_ciphertext_is_refunded_to_the_gateway(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    before = await balance(gw)
    contract = incoming(user, gw, secrets.token_bytes(32), encrypted=secrets.token_bytes(32))
    gw.check_incoming(contract, Msat(AMOUNT))  # it verifies: only decryption can tell
    outpoint = await gw.fund_incoming(contract, "recv-3")
    outcome = await gw.incoming_outcome(contract, outpoint, "recv-3-refund")
    assert outcome.state is IncomingState.REFUNDED and outcome.preimage is None
    # back: the amount less LNv2's input fee; lost: both LNv2 fees
    assert before - await balance(gw) == 2 * FEE
    again = await gw.incoming_outcome(contract, outpoint, "recv-3-refund")
    assert again.state is IncomingState.REFUNDED
    assert before - await balance(gw) == 2 * FEE


async def test_contracts_the_gateway_must_not_fund_are_refused_and_change_nothing(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    good = incoming(user, gw, secrets.token_bytes(32))
    not_ours = incoming(user, user, secrets.token_bytes(32))
    expired = incoming(user, gw, secrets.token_bytes(32), expiration=int(time.time()) - 1)
    other = incoming(user, gw, secrets.token_bytes(32), expiration=int(time.time()) + 7200)
    moved = IncomingContract(other.commitment, good.ciphertext)
    nothing = user.incoming_contract(
        gw.module_public_key, 0, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    cases = ((not_ours, AMOUNT), (expired, AMOUNT), (moved, AMOUNT), (good, AMOUNT - 1), (nothing, AMOUNT))
    before = await balance(gw)
    for bad, amount in cases:
        with pytest.raises(InvalidInput):
            gw.check_incoming(bad, Msat(amount))
    assert await balance(gw) == before
    assert await gw._notes.unfinished(KINDS) == []


async def test_a_funding_prepared_before_a_crash_is_left_to_its_flow_on_restart(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    before = await balance(gw)
    contract = incoming(user, gw, secrets.token_bytes(32))
    # state first: the operation is stored, then the process dies before submitting it
    op = await gw._notes.prepare_fund(
        "recv-4", FUND, Msat(AMOUNT), Msat(FEE), lnv2_output(LNV2_INSTANCE_ID, contract)
    )
    sessions = fm.federation.store.session_count()
    restarted = await make_gateway("gw")
    # never accepted: not submitted at restart (its HTLC may be gone); the receive flow decides
    assert await restarted.resume() == []
    assert fm.federation.store.session_count() == sessions
    stored = await restarted._notes.get("recv-4")
    assert stored is not None and stored.state is MintOpState.PREPARED
    # the flow still holds the HTLC: it drives the funding itself
    outpoint = await restarted.fund_incoming(contract, "recv-4")
    assert outpoint == OutPoint(op.tx.txid(), len(op.outputs))
    assert fm.federation.store.session_count() == sessions + 1

    async def finished() -> bool:
        done = await restarted._notes.get("recv-4")
        return done is not None and done.state is MintOpState.DONE

    await wait_until(finished)
    assert before - await balance(restarted) == AMOUNT + FEE


async def test_send_checks_the_contract_and_claims_with_the_preimage(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    before = await balance(gw)
    preimage = secrets.token_bytes(32)
    await user.admin({"block_count": 100})
    contract = user.outgoing_contract(gw.module_public_key, AMOUNT, 200, hashlib.sha256(preimage).digest())
    submitted, outpoint = await user.fund(contract, AMOUNT)
    assert submitted.accepted
    checked = await gw.check_outgoing(outpoint, contract)
    assert checked.blocks_left == 100
    bolt11 = "lnbcrt200n1pexample"
    auth = items.invoice_auth_message(bolt11)
    assert gw.send_auth_valid(contract, bolt11, sign_schnorr(user.key, auth))
    assert not gw.send_auth_valid(contract, bolt11 + "x", sign_schnorr(user.key, auth))
    assert not gw.send_auth_valid(contract, bolt11, sign_schnorr(GATEWAY_SECRET, auth))
    with pytest.raises(InvalidInput):
        await gw.claim_outgoing(checked, secrets.token_bytes(32), "send-1")
    gained = await gw.claim_outgoing(checked, preimage, "send-1")
    assert gained.value == AMOUNT - FEE == await balance(gw) - before
    assert (await gw.claim_outgoing(checked, preimage, "send-1")).value == AMOUNT - FEE
    assert await balance(gw) - before == AMOUNT - FEE
    with pytest.raises(NotFound):  # spent now
        await gw.check_outgoing(outpoint, contract)


async def test_outgoing_contracts_the_gateway_must_not_take(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    hash_ = secrets.token_bytes(32)
    mine = user.outgoing_contract(gw.module_public_key, AMOUNT, 100, hash_)
    _, outpoint = await user.fund(mine, AMOUNT)
    other = user.outgoing_contract(gw.module_public_key, AMOUNT, 100, secrets.token_bytes(32))
    with pytest.raises(InvalidInput):  # the out point holds another contract
        await gw.check_outgoing(outpoint, other)
    foreign = user.outgoing_contract(user.public_key, AMOUNT, 100, hash_)
    _, foreign_outpoint = await user.fund(foreign, AMOUNT)
    with pytest.raises(InvalidInput):  # keyed to another gateway
        await gw.check_outgoing(foreign_outpoint, foreign)
    soon = user.outgoing_contract(gw.module_public_key, AMOUNT, 5, hash_)
    _, soon_outpoint = await user.fund(soon, AMOUNT)
    with pytest.raises(InvalidInput):  # 5 blocks left, 6 needed
        await gw.check_outgoing(soon_outpoint, soon)
    with pytest.raises(NotFound):
        await gw.check_outgoing(OutPoint(bytes(32), 0), mine)


async def test_forfeit_lets_the_user_cancel_and_then_the_gateway_cannot_claim(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    preimage = secrets.token_bytes(32)
    contract = user.outgoing_contract(gw.module_public_key, AMOUNT, 100, hashlib.sha256(preimage).digest())
    _, outpoint = await user.fund(contract, AMOUNT)
    checked = await gw.check_outgoing(outpoint, contract)
    forfeit = gw.forfeit_signature(contract)
    assert contract.verify_forfeit_signature(forfeit)
    cancel = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, forfeit))
    assert (await user.spend(cancel, AMOUNT)).accepted
    before = await balance(gw)
    with pytest.raises(FederationRejected):
        await gw.claim_outgoing(checked, preimage, "send-3")
    assert await balance(gw) == before


async def test_a_claim_cut_short_is_finished_on_restart_once(
    fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet, make_gateway: MakeGateway
) -> None:
    gw = await funded_gateway(make_gateway, fm, session)
    before = await balance(gw)
    preimage = secrets.token_bytes(32)
    await user.admin({"block_count": 100})
    contract = user.outgoing_contract(gw.module_public_key, AMOUNT, 200, hashlib.sha256(preimage).digest())
    submitted, outpoint = await user.fund(contract, AMOUNT)
    assert submitted.accepted
    witness = items.OutgoingWitness(items.WitnessKind.CLAIM, preimage)
    item, key = lnv2_input(LNV2_INSTANCE_ID, items.OutgoingInput(outpoint, witness), GATEWAY_SECRET)
    # the send decided to claim: stored, then the process died before sending it
    await gw._notes.prepare_claim("send-9", CLAIM, item, key, Msat(AMOUNT), Msat(FEE))
    restarted = await make_gateway("gw")
    assert await restarted.resume() == ["send-9"]
    assert await balance(restarted) - before == AMOUNT - FEE
    checked_again = await restarted._notes.get("send-9")
    assert checked_again is not None and checked_again.state is MintOpState.DONE
    assert await restarted.resume() == []
    with pytest.raises(NotFound):  # spent by the claim
        await restarted.check_outgoing(outpoint, contract)
    assert await balance(restarted) - before == AMOUNT - FEE
