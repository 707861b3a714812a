"""devfed's Fedimint family, driven by our own mint client over Fedimint's wire protocol."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import dealer, tbs
from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion
from fedimint_gw.fedimint.encoding import Err, Ok, Reader, decode_whole
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code
from fedimint_gw.fedimint.mint_api import collect_notes, submit_transaction
from fedimint_gw.fedimint.mint_client import (
    FinishedNote,
    build_transaction,
    check_note,
    exact_outputs,
    greedy_outputs,
    note_nonce,
    plan_reissue,
    represent_amount,
)
from fedimint_gw.fedimint.mint_errors import SharesInsufficient
from fedimint_gw.fedimint.mint_types import MintClientConfig, SpendableNote
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import Transaction, TransactionError

ZERO_FEES = FedimintParams(name="test-fm")
WITH_FEES = FedimintParams(name="test-fm-fees", fee_base_msat=100, fee_ppm=1000)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def started(path: Path, params: FedimintParams) -> RunningFedimint:
    return await start_fedimint(path, params)


@pytest.fixture
async def fm(tmp_path: Path) -> AsyncIterator[RunningFedimint]:
    running = await started(tmp_path / "fm", ZERO_FEES)
    yield running
    await running.stop()


@pytest.fixture
async def api(fm: RunningFedimint, session: aiohttp.ClientSession) -> AsyncIterator[FederationApi]:
    federation_api = FederationApi.from_config(fm.federation.client_config, session)
    yield federation_api
    await federation_api.close()


def mint_of(config: ClientConfig) -> MintClientConfig:
    return MintClientConfig.from_bytes(config.modules[MINT_INSTANCE_ID].raw)


def inputs_of(notes: tuple[FinishedNote, ...] | list[FinishedNote]) -> list[tuple[int, SpendableNote]]:
    return [(n.amount, n.note) for n in notes]


async def reissue(
    fm: RunningFedimint, api: FederationApi, inputs: list[tuple[int, SpendableNote]], overpay: bool = True
) -> tuple[Transaction, list[FinishedNote]]:
    config = fm.federation.client_config
    plan = plan_reissue(inputs, mint_of(config), overpay=overpay)
    outputs = [fresh_secrets(a) for a in plan.outputs]
    tx = build_transaction(MINT_INSTANCE_ID, inputs, outputs, secrets.token_bytes(8))
    outcome = await submit_transaction(api, tx)
    assert outcome.result == Ok(tx.txid())
    return tx, await collect_notes(api, MINT_INSTANCE_ID, mint_of(config), tx.txid(), outputs)


def refusal(result: Ok[bytes] | Err[TransactionError]) -> TransactionError:
    assert isinstance(result, Err), result
    return result.error


def module_error_variant(error: TransactionError) -> int:
    """The module's own error variant inside an Input/Output transaction error."""

    def read(r: Reader) -> int:
        _instance, body = r.dyn()
        return body.varint()

    return decode_whole(error.data, read)


async def test_invite_bootstraps_the_config_and_keys_interpolate(
    fm: RunningFedimint, session: aiohttp.ClientSession
) -> None:
    invite = parse_invite_code(fm.invite_code)
    assert fm.invite_code.startswith("fed11")
    config = await bootstrap_client_config(invite, session)
    assert config.federation_id() == fm.federation_id == invite.federation_id
    assert [m.kind for m in config.modules.values()] == ["mint"]
    mint = mint_of(config)
    assert sorted(mint.peer_tbs_pks) == [0, 1, 2, 3]
    # Any threshold (3) of the guardians' public key shares interpolates to the tier's key:
    # one polynomial per tier, each guardian holding its own point.
    for tier in (1, 1024, 2**40):
        for peers in ((0, 1, 2), (1, 2, 3), (0, 2, 3)):
            shares = {p: tbs.PublicKeyShare.decode(mint.peer_tbs_pks[p][tier]) for p in peers}
            assert tbs.aggregate_public_key_shares(shares).encode() == mint.tbs_pks[tier]
    assert len({mint.peer_tbs_pks[p][8] for p in range(4)}) == 4


async def test_faucet_notes_are_signed_by_the_federation(
    fm: RunningFedimint, session: aiohttp.ClientSession
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 1234)
    assert got.total_msat == 1234 == got.oob.total_msat
    assert sorted(n.amount for n in got.notes) == [2, 16, 64, 128, 1024]
    for note in got.notes:
        check_note(note.amount, note.note, mint_of(fm.federation.client_config))
        assert note.bad_peers == ()


async def test_reissue_then_double_spend_is_refused(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 3000)
    tx, fresh = await reissue(fm, api, inputs_of(got.notes))
    assert sum(n.amount for n in fresh) == 3000
    assert fm.federation.store.count_spent() == len(got.notes)
    # The same transaction again is the same transaction: accepted, nothing changes.
    assert (await submit_transaction(api, tx)).result == Ok(tx.txid())
    assert fm.federation.store.count_spent() == len(got.notes)
    # A different transaction spending one of the same notes is refused: SpentCoin (0).
    spent = inputs_of(got.notes)[:1]
    again = build_transaction(MINT_INSTANCE_ID, spent, [fresh_secrets(spent[0][0])], b"\x01" * 8)
    error = refusal((await submit_transaction(api, again)).result)
    assert (error.variant, module_error_variant(error)) == (4, 0)
    sessions = fm.federation.store.session_count()
    assert fm.federation.store.count_spent() == len(got.notes) and sessions == 2


async def test_a_note_signed_with_another_key_is_refused(fm: RunningFedimint, api: FederationApi) -> None:
    other = tbs.dealer_keys(dealer.random_coefficients(1), 1)
    secret = fresh_secrets(64)
    forged = tbs.unblind_signature(
        tbs.BlindingKey(secret.blinding_key),
        tbs.BlindedSignature(tbs.sign_message(secret.blinded(), other.secret_key_shares[0]).point),
    )
    note = SpendableNote(forged.encode(), secret.spend_key)
    tx = build_transaction(MINT_INSTANCE_ID, [(64, note)], [fresh_secrets(64)], b"\x02" * 8)
    error = refusal((await submit_transaction(api, tx)).result)
    assert (error.variant, module_error_variant(error)) == (4, 2)
    assert fm.federation.store.count_spent() == 0
    assert fm.federation.store.session_count() == 0


async def test_wrong_transaction_signature_is_refused_and_the_note_stays_spendable(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 8)
    (note,) = got.notes
    outputs = [fresh_secrets(8)]
    honest = build_transaction(MINT_INSTANCE_ID, [(8, note.note)], outputs, b"\x03" * 8)
    stranger = secrets.token_bytes(32)
    forged = Transaction.signed(honest.inputs, honest.outputs, honest.nonce, [stranger])
    error = refusal((await submit_transaction(api, forged)).result)
    assert error.variant == 1
    assert fm.federation.store.count_spent() == 0
    assert (await submit_transaction(api, honest)).accepted


@pytest.mark.parametrize(
    ("core", "overpay_accepted"),
    [(ConsensusVersion(2, 0), False), (ConsensusVersion(2, 1), True)],
)
async def test_fees_are_charged_per_note_and_balance_is_enforced(
    tmp_path: Path, session: aiohttp.ClientSession, core: ConsensusVersion, overpay_accepted: bool
) -> None:
    params = FedimintParams(name="fees", fee_base_msat=100, fee_ppm=1000, core_consensus=core)
    running = await started(tmp_path / "fees", params)
    api = FederationApi.from_config(running.federation.client_config, session)
    try:
        got = await faucet_notes(session, running.admin_url, running.federation.client_config, 20_000)
        inputs = inputs_of(got.notes)
        fee_in = sum(100 + a * 1000 // 1_000_000 for a, _ in inputs)
        # Exactly balanced (our client's choice): accepted under both rules.
        _tx, fresh = await reissue(running, api, inputs, overpay=False)
        fee_out = sum(100 + n.amount * 1000 // 1_000_000 for n in fresh)
        assert sum(n.amount for n in fresh) + fee_in + fee_out == 20_000
        total = sum(n.amount for n in fresh)
        spend = inputs_of(fresh)
        fees = sum(100 + a * 1000 // 1_000_000 for a, _ in spend)
        # Outputs worth what the inputs are worth after input fees leave nothing for the output
        # fees: refused under both rules (UnbalancedTransaction, variant 0).
        mint = mint_of(running.federation.client_config)
        tight = [fresh_secrets(a) for a in represent_amount(total - fees, mint.denominations)]
        short = build_transaction(MINT_INSTANCE_ID, spend, tight, b"\x05" * 8)
        assert refusal((await submit_transaction(api, short)).result).variant == 0
        # Overpaying (leaving at least 1 msat to the federation): only consensus >= 2.1 accepts it.
        target = total - fees - 1
        outs = [fresh_secrets(a) for a in _cheapest(target, running)]
        tx = build_transaction(MINT_INSTANCE_ID, spend, outs, b"\x04" * 8)
        outcome = await submit_transaction(api, tx)
        assert outcome.accepted is overpay_accepted
        if not overpay_accepted:
            assert refusal(outcome.result).variant == 0
    finally:
        await api.close()
        await running.stop()


def _cheapest(target: int, running: RunningFedimint) -> list[int]:
    """Outputs whose amounts plus fees are at most `target`, leaving at least 1 msat over."""
    fee = mint_of(running.federation.client_config).fee_consensus
    tiers = mint_of(running.federation.client_config).denominations
    found = exact_outputs(target, fee, tiers)
    return found if found is not None else greedy_outputs(target, fee, tiers)


async def test_a_byzantine_guardian_is_named_and_outvoted(
    fm: RunningFedimint, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{fm.admin_url}/admin/guardians/2/fault", json={"mode": "byzantine"}) as r:
        assert r.status == 200
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 5)
    assert {n.bad_peers for n in got.notes} == {(2,)}
    for note in got.notes:
        check_note(note.amount, note.note, mint_of(fm.federation.client_config))
    async with session.post(f"{fm.admin_url}/admin/guardians/3/fault", json={"mode": "byzantine"}) as r:
        assert r.status == 200
    with pytest.raises(SharesInsufficient, match=r"guardian\(s\) \[2, 3\]"):
        await faucet_notes(session, fm.admin_url, fm.federation.client_config, 5)


async def test_state_survives_a_restart(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    first = await started(tmp_path / "fm", ZERO_FEES)
    got = await faucet_notes(session, first.admin_url, first.federation.client_config, 40)
    api = FederationApi.from_config(first.federation.client_config, session)
    try:
        await reissue(first, api, inputs_of(got.notes))
    finally:
        await api.close()
    invite = first.invite_code
    await first.stop()
    second = await started(tmp_path / "fm", FedimintParams(name="ignored on restart", guardians=7))
    api = FederationApi.from_config(second.federation.client_config, session)
    try:
        assert second.invite_code == invite
        assert second.federation.client_config.num_peers == 4
        spent = inputs_of(got.notes)[:1]
        tx = build_transaction(MINT_INSTANCE_ID, spent, [fresh_secrets(spent[0][0])], b"\x06" * 8)
        assert module_error_variant(refusal((await submit_transaction(api, tx)).result)) == 0
    finally:
        await api.close()
        await second.stop()


async def raw_call(
    session: aiohttp.ClientSession, url: str, method: str, params: object
) -> dict[str, object]:
    async with session.ws_connect(url) as ws:
        await ws.send_str(
            json.dumps(
                {"jsonrpc": "2.0", "id": 7, "method": method, "params": [{"auth": None, "params": params}]}
            )
        )
        answer = json.loads((await ws.receive(timeout=10)).data)
    assert isinstance(answer, dict)
    return answer


async def test_unserved_methods_are_logged_loudly(
    fm: RunningFedimint, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="devfed.fedimint"):
        answer = await raw_call(session, fm.guardian_urls[1], "module_1_no_such_endpoint", {"x": 1})
    assert answer["id"] == 7 and answer["error"] == {
        "code": -32601,
        "message": "Method not found: module_1_no_such_endpoint",
    }
    assert fm.federation.unserved == ["module_1_no_such_endpoint"]
    assert any("UNSERVED" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param("00", id="bare-hex-not-serde"),
        pytest.param(["zz"], id="not-hex"),
        pytest.param(["0401020304"], id="not-a-transaction"),
        pytest.param(None, id="null"),
    ],
)
async def test_bad_submissions_get_a_typed_error_and_change_nothing(
    fm: RunningFedimint, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, params: object
) -> None:
    with caplog.at_level(logging.INFO, logger="devfed.fedimint"):
        answer = await raw_call(session, fm.guardian_urls[0], "submit_transaction", params)
    error = answer["error"]
    assert isinstance(error, dict) and error["code"] == -32602 and error["message"]
    assert fm.federation.store.session_count() == 0
    assert all(r.levelno < logging.WARNING for r in caplog.records)


async def test_an_internal_failure_is_answered_not_left_hanging(
    fm: RunningFedimint, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 1)
    txid = fm.federation.store.session_transaction(1)
    assert txid is not None

    def broken(amount: int, blind_nonce: bytes) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fm.federation.guardians[0], "sign", broken)
    answer = await raw_call(
        session, fm.guardian_urls[0], "await_output_outcome", {"txid": txid.hex(), "out_idx": 0}
    )
    assert answer["error"] == {"code": -32603, "message": "internal error in await_output_outcome"}
    assert got.total_msat == 1


async def test_mint_endpoints_tell_spent_nonces_and_used_blind_nonces(
    fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 4)
    nonce = note_nonce(got.notes[0].note).hex()
    assert await api.request_peer(0, "module_1_note_spent", nonce) is False
    tx, _fresh = await reissue(fm, api, inputs_of(got.notes))
    assert await api.request_peer(3, "module_1_note_spent", nonce) is True
    blind = tx.outputs[0].data[-48:].hex()
    assert await api.request_peer(2, "module_1_blind_nonce_used", blind) is True
    assert await api.request_peer(2, "module_1_blind_nonce_used", "00" * 48) is False
