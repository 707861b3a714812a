"""What the official client asks a federation for, and what it accepts: against a fake guardian.

These pin the wire facts devfed's Fedimint-protocol server must meet (see docs/official-client.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from coincurve import PublicKeyXOnly

from contrib.official_client.driver import OfficialClient, OfficialClientError
from tests.interop import fedimint_testenc as enc
from tests.interop import tbs_vectors
from tests.interop.fake_guardian import (
    MINT_INSTANCE,
    FakeFederation,
    RpcFailure,
    mint_module,
    module_api_versions,
)

EMPTY_REQUEST = [{"auth": None, "params": None}]
SPEND_1000 = {
    "amount": 1000,
    "try_cancel_after": {"secs": 3600, "nanos": 0},
    "include_invite": False,
    "extra_meta": {},
}
NOTES = [
    enc.SpendableNote(1024, tbs_vectors.NOTE_1G.signature, tbs_vectors.NOTE_1G.spend_secret),
    enc.SpendableNote(2048, tbs_vectors.NOTE_2G.signature, tbs_vectors.NOTE_2G.spend_secret),
]


async def started(federation: FakeFederation) -> FakeFederation:
    await federation.start()
    return federation


@pytest.fixture
async def federation() -> AsyncIterator[FakeFederation]:
    fed = await started(FakeFederation(peers=1))
    try:
        yield fed
    finally:
        await fed.stop()


@pytest.fixture
async def federation4() -> AsyncIterator[FakeFederation]:
    fed = await started(FakeFederation(peers=4))
    try:
        yield fed
    finally:
        await fed.stop()


async def joined(client: OfficialClient, fed: FakeFederation, name: str = "probe") -> None:
    await client.join(name, fed.invite_code())


# ---- preview -------------------------------------------------------------------------------------


async def test_preview_downloads_the_config_twice(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    preview = await official_client.preview_federation(federation.invite_code())

    assert [(c.peer, c.method, c.params) for c in federation.calls] == [
        (0, "client_config", EMPTY_REQUEST),
        (0, "client_config", EMPTY_REQUEST),
    ]
    assert preview["federation_id"] == federation.federation_id.hex()
    # The preview answers the config in its "JSON" form: global fields nested under "global".
    config = preview["config"]
    assert config["global"]["api_endpoints"] == {
        "0": {"name": "guardian-0", "url": federation.guardians[0].url}
    }
    assert config["global"]["broadcast_public_keys"] is None
    assert config["global"]["consensus_version"] == {"major": 2, "minor": 0}
    assert config["global"]["meta"] == {"federation_name": federation.name}
    assert config["modules"][str(MINT_INSTANCE)]["kind"] == "mint"


async def test_preview_asks_the_invite_peer_first_then_every_peer(
    federation4: FakeFederation, official_client: OfficialClient
) -> None:
    await official_client.preview_federation(federation4.invite_code(peer=2))

    calls = [(c.peer, c.method) for c in federation4.calls]
    assert calls[0] == (2, "client_config")
    assert sorted(calls[1:]) == [(peer, "client_config") for peer in range(4)]


async def test_preview_never_accepts_the_config_of_another_federation(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    wrong_id = enc.encode_invite({0: federation.guardians[0].url}, bytes(32))
    preview = asyncio.create_task(official_client.preview_federation(wrong_id, timeout=60))
    try:
        # It retries with backoff rather than failing at once; it never answers in the meantime.
        await federation.wait_for_calls("client_config", 3)
        assert not preview.done()
    finally:
        preview.cancel()


async def test_preview_reads_the_global_fields_at_the_top_level_only(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    """A config with the global fields nested under "global" (the preview's output form) is refused."""
    flat = federation.client_config
    federation.handlers["client_config"] = lambda _peer, _params: {
        "global": {k: v for k, v in flat().items() if k != "modules"},
        "modules": flat()["modules"],
    }
    preview = asyncio.create_task(official_client.preview_federation(federation.invite_code(), timeout=60))
    try:
        await federation.wait_for_calls("client_config", 3)
        assert not preview.done()
    finally:
        preview.cancel()


# ---- join ----------------------------------------------------------------------------------------


async def test_join_downloads_the_config_then_asks_for_api_versions(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    await joined(official_client, federation)

    methods = [c.method for c in federation.calls]
    assert methods[:3] == ["client_config", "client_config", "version"]
    assert all(c.params == EMPTY_REQUEST for c in federation.calls)
    assert await official_client.rpc_one("", "get_federation_id") == federation.federation_id.hex()
    assert await official_client.rpc_one("", "get_balance") == 0
    assert await official_client.rpc_one("mint", "note_counts_by_denomination") == {}
    config = await official_client.rpc_one("", "get_config")
    assert config["api_endpoints"] == federation.client_config()["api_endpoints"]
    assert config["modules"] == federation.client_config()["modules"]


async def test_join_asks_every_guardian_for_api_versions(
    federation4: FakeFederation, official_client: OfficialClient
) -> None:
    await joined(official_client, federation4)
    await federation4.wait_for_calls("version", 4)

    assert sorted(c.peer for c in federation4.calls_to("version")) == [0, 1, 2, 3]
    assert await official_client.rpc_one("", "get_balance") == 0


async def test_spend_without_funds_reports_the_balance(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    await joined(official_client, federation)
    with pytest.raises(OfficialClientError, match="Insufficient balance: requested 1000 msat but only 0"):
        await official_client.rpc("mint", "spend_notes", SPEND_1000)


@pytest.mark.parametrize(
    ("versions", "active"),
    [
        pytest.param(module_api_versions(api=(0, 0)), True, id="api-0.0"),
        pytest.param(module_api_versions(module=(2, 7)), True, id="module-minor-differs"),
        pytest.param(module_api_versions(api=(1, 0)), False, id="api-major-1"),
        pytest.param(module_api_versions(module=(3, 0)), False, id="module-major-differs"),
        pytest.param(module_api_versions(core=(3, 0)), False, id="core-major-differs"),
    ],
)
async def test_a_module_without_a_common_api_version_is_skipped_silently(
    official_client: OfficialClient, versions: dict[str, object], active: bool
) -> None:
    fed = await started(FakeFederation(peers=1, module_versions={MINT_INSTANCE: versions}))
    try:
        await joined(official_client, fed)  # the join itself succeeds either way
        expected = "Insufficient balance" if active else "No modules found of kind mint"
        with pytest.raises(OfficialClientError, match=expected):
            await official_client.rpc("mint", "spend_notes", SPEND_1000)
    finally:
        await fed.stop()


async def test_a_failing_version_endpoint_leaves_the_client_without_modules(
    official_client: OfficialClient,
) -> None:
    def refuse(_peer: int, _params: object) -> object:
        raise RpcFailure("not today")

    fed = await started(FakeFederation(peers=1, handlers={"version": refuse}))
    try:
        # The client waits for API version discovery (about 15 s), then joins with every module skipped.
        await official_client.join("probe", fed.invite_code(), timeout=40)
        with pytest.raises(OfficialClientError, match="No modules found of kind mint"):
            await official_client.rpc("mint", "spend_notes", SPEND_1000)
    finally:
        await fed.stop()


async def test_the_mint_must_be_module_instance_1(official_client: OfficialClient) -> None:
    """The WASM client's primary module is instance 1: with the mint elsewhere, get_balance traps."""
    fed = FakeFederation(
        peers=1,
        with_mint=False,
        modules={0: mint_module(instance_id=0)},
        module_versions={0: module_api_versions()},
    )
    await started(fed)
    try:
        await joined(official_client, fed)
        assert await official_client.rpc_one("mint", "note_counts_by_denomination") == {}
        balance = asyncio.create_task(official_client.rpc("", "get_balance", timeout=30))
        try:
            event = await official_client.wait_for_event("uncaught")
            assert event["error"] == "unreachable"  # a Rust panic ("primary module must be present")
            assert not balance.done()
        finally:
            balance.cancel()
    finally:
        await fed.stop()


# ---- e-cash ----------------------------------------------------------------------------------------


async def test_validate_notes_checks_our_notes(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    await joined(official_client, federation)
    fed_id = federation.federation_id
    forged = enc.SpendableNote(1024, tbs_vectors.NOTE_2G.signature, tbs_vectors.NOTE_1G.spend_secret)
    odd_tier = enc.SpendableNote(3, tbs_vectors.NOTE_1G.signature, tbs_vectors.NOTE_1G.spend_secret)

    assert (
        await official_client.rpc_one("mint", "validate_notes", {"oob_notes": enc.oob_notes(NOTES, fed_id)})
        == 3072
    )
    with_invite = enc.oob_notes(NOTES, fed_id, {0: federation.guardians[0].url})
    assert await official_client.rpc_one("mint", "validate_notes", {"oob_notes": with_invite}) == 3072
    for notes, error in [
        (enc.oob_notes([forged], fed_id), "Note 0 has an invalid federation signature"),
        (enc.oob_notes(NOTES, bytes(32)), "Federation ID does not match"),
        (enc.oob_notes([odd_tier], fed_id), "Note 0 uses an invalid amount tier 3 msat"),
        ("AAAA", "No e-cash notes were found in OOBNotes data"),
    ]:
        with pytest.raises(OfficialClientError, match=error):
            await official_client.rpc("mint", "validate_notes", {"oob_notes": notes})
    # Validation is offline: no guardian call beyond the join's.
    assert "submit_transaction" not in federation.methods_called()


async def test_reissue_submits_a_transaction_spending_our_notes(
    federation: FakeFederation, official_client: OfficialClient
) -> None:
    await joined(official_client, federation)
    oob = enc.oob_notes(NOTES, federation.federation_id)

    operation_id = await official_client.rpc_one(
        "mint", "reissue_external_notes", {"oob_notes": oob, "extra_meta": {}}
    )
    submitted = (await federation.wait_for_calls("submit_transaction"))[0]
    awaited = (await federation.wait_for_calls("await_output_outcome"))[0]

    assert isinstance(operation_id, str) and len(bytes.fromhex(operation_id)) == 32
    # params: [{"auth": null, "params": ["<hex>"]}], hex = varint length + Transaction encoding.
    [hex_tx] = submitted.inner
    tx = enc.decode_transaction(enc.decode_serde_module_encoding(hex_tx))
    inputs = [item.variant() for item in tx.inputs]
    assert [item.instance_id for item in tx.inputs] == [MINT_INSTANCE, MINT_INSTANCE]
    # MintInput::V0{amount, note{nonce, signature}}
    assert [fields for variant, fields in inputs if variant == 0] == [
        enc.varint(n.amount_msat) + nonce + n.signature
        for n, nonce in zip(NOTES, [tbs_vectors.NOTE_1G.nonce, tbs_vectors.NOTE_2G.nonce], strict=True)
    ]
    # MintOutput::V0{amount, blind_nonce (48-byte G1)}; zero fees: outputs sum to the inputs.
    outputs = [item.variant() for item in tx.outputs]
    assert all(item.instance_id == MINT_INSTANCE for item in tx.outputs)
    assert all(variant == 0 and len(fields) - len(enc.varint(0)) >= 48 for variant, fields in outputs)
    assert sum(enc.read_varint(fields, 0)[0] for _, fields in outputs) == 3072
    # One BIP-340 signature per input, by the note's spend key, over the txid.
    assert len(tx.signatures) == 2
    for signature, note in zip(tx.signatures, [tbs_vectors.NOTE_1G, tbs_vectors.NOTE_2G], strict=True):
        assert PublicKeyXOnly(note.nonce[1:]).verify(signature, tx.txid)
    # It then awaits the first output's outcome by OutPoint.
    assert awaited.inner == {"txid": tx.txid.hex(), "out_idx": 0}
