"""The official client reissues and spends e-cash against fake guardians that blind-sign its outputs.

This is the check that our reading of the mint wire protocol (transaction and outcome encodings,
blind signature shares, their peer indices) is what the real client accepts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contrib.official_client.driver import OfficialClient
from tests.interop import fedimint_testenc as enc
from tests.interop import tbs_vectors
from tests.interop.fake_guardian import FakeFederation
from tests.interop.fake_mint import FakeMint

NOTES = [
    enc.SpendableNote(1024, tbs_vectors.NOTE_1G.signature, tbs_vectors.NOTE_1G.spend_secret),
    enc.SpendableNote(2048, tbs_vectors.NOTE_2G.signature, tbs_vectors.NOTE_2G.spend_secret),
]
TOTAL = 3072


@pytest.fixture(params=[1, 4], ids=["1-guardian", "4-guardians"])
async def minting(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FakeFederation, FakeMint]]:
    fed = FakeFederation(peers=request.param)
    await fed.start()
    try:
        yield fed, FakeMint(fed).install()
    finally:
        await fed.stop()


async def reissue(client: OfficialClient, fed: FakeFederation) -> str:
    await client.join("probe", fed.invite_code())
    oob = enc.oob_notes(NOTES, fed.federation_id)
    operation_id = await client.rpc_one(
        "mint", "reissue_external_notes", {"oob_notes": oob, "extra_meta": {}}
    )
    updates = await client.rpc("mint", "subscribe_reissue_external_notes", {"operation_id": operation_id})
    assert updates == ["Created", "Issuing", "Done"]
    return str(operation_id)


async def test_reissue_completes_with_our_blind_signature_shares(
    minting: tuple[FakeFederation, FakeMint], official_client: OfficialClient
) -> None:
    fed, mint = minting
    await reissue(official_client, fed)

    assert await official_client.rpc_one("", "get_balance") == TOTAL
    counts = await official_client.rpc_one("mint", "note_counts_by_denomination")
    assert sum(int(amount) * n for amount, n in counts.items()) == TOTAL
    [tx] = mint.transactions.values()
    assert len(fed.calls_to("submit_transaction")) >= 1
    assert [c.inner for c in fed.calls_to("await_transaction")][:1] == [tx.txid.hex()]
    asked = {
        (c.peer, c.inner["out_idx"]) for c in fed.calls_to("await_output_outcome") if c.answered == "result"
    }
    # Every output's outcome was fetched, from at least a threshold of guardians.
    threshold = 1 if fed.peers == 1 else 3
    for index in range(len(tx.outputs)):
        assert len({peer for peer, out in asked if out == index}) >= threshold


async def test_spend_after_reissue_gives_notes_the_client_validates(
    minting: tuple[FakeFederation, FakeMint], official_client: OfficialClient
) -> None:
    fed, _mint = minting
    await reissue(official_client, fed)

    spend = {
        "amount": 1000,
        "try_cancel_after": {"secs": 3600, "nanos": 0},
        "include_invite": False,
        "extra_meta": {},
    }
    operation_id, oob = await official_client.rpc_one("mint", "spend_notes", spend)
    assert len(bytes.fromhex(operation_id)) == 32
    value = await official_client.rpc_one("mint", "validate_notes", {"oob_notes": oob})
    assert value >= 1000
    assert await official_client.rpc_one("", "get_balance") == TOTAL - value
    # The client writes padded base64url: the FederationIdPrefix part first, then the notes.
    decoded = enc.decode_oob_notes(oob)
    assert decoded.part_order == (1, 0)
    assert decoded.federation_id_prefix == fed.federation_id[:4]
    assert sum(note.amount_msat for note in decoded.notes) == value


async def test_reissue_completes_with_one_of_four_guardians_offline(official_client: OfficialClient) -> None:
    fed = FakeFederation(peers=4)
    await fed.start()
    FakeMint(fed).install()
    await fed.take_offline(3)
    try:
        await reissue(official_client, fed)
        assert await official_client.rpc_one("", "get_balance") == TOTAL
        assert {c.peer for c in fed.calls} == {0, 1, 2}
    finally:
        await fed.stop()


async def test_reissue_survives_one_byzantine_guardian(official_client: OfficialClient) -> None:
    fed = FakeFederation(peers=4)
    await fed.start()
    FakeMint(fed, wrong_share_peers=frozenset({3})).install()
    try:
        await reissue(official_client, fed)
        assert await official_client.rpc_one("", "get_balance") == TOTAL
    finally:
        await fed.stop()


async def test_reissue_never_completes_without_a_threshold_of_valid_shares(
    official_client: OfficialClient,
) -> None:
    """Two wrong shares of four: the client verifies shares and issues nothing (it stays "Issuing")."""
    fed = FakeFederation(peers=4)
    await fed.start()
    FakeMint(fed, wrong_share_peers=frozenset({2, 3})).install()
    try:
        await official_client.join("probe", fed.invite_code())
        oob = enc.oob_notes(NOTES, fed.federation_id)
        operation_id = await official_client.rpc_one(
            "mint", "reissue_external_notes", {"oob_notes": oob, "extra_meta": {}}
        )
        subscription = {"operation_id": operation_id}
        updates = await official_client.rpc(
            "mint", "subscribe_reissue_external_notes", subscription, max_items=2
        )
        assert updates == ["Created", "Issuing"]
        # Every guardian has answered the first output's outcome (two of them wrongly)...
        while len({c.peer for c in fed.calls_to("await_output_outcome") if c.answered == "result"}) < 4:
            await fed.wait_for_calls("await_output_outcome", len(fed.calls_to("await_output_outcome")) + 1)
        # ...and still no "Done" (a bounded negative wait: a good run is done within a second).
        with pytest.raises(TimeoutError):
            await official_client.rpc(
                "mint", "subscribe_reissue_external_notes", subscription, max_items=3, timeout=3
            )
        assert await official_client.rpc_one("", "get_balance") == 0
    finally:
        await fed.stop()
