from __future__ import annotations

from fedimint_gw.domain.htlc import HtlcEvent
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.services.htlc_router import HtlcOwner, HtlcRouter

FED_A = FederationId("aa" * 32)
FED_B = FederationId("bb" * 32)


def _event(forward_scid: str | None, payment_hash: str = "11" * 32) -> HtlcEvent:
    onion: dict[str, object] = {"payload": "00"}
    if forward_scid:
        onion.update(short_channel_id=forward_scid, forward_msat=1000, outgoing_cltv_value=100)
    htlc = {
        "short_channel_id": "1x1x0",
        "id": 0,
        "amount_msat": 1000,
        "cltv_expiry": 150,
        "cltv_expiry_relative": 50,
        "payment_hash": payment_hash,
    }
    return HtlcEvent.from_hook(onion, htlc)


def test_unrelated_forward_and_final_hop_are_unrelated() -> None:
    router = HtlcRouter()
    router.add_scid(ShortChannelId(0, 0, 1), FED_A)
    assert router.classify(_event("105x1x0")).owner is HtlcOwner.UNRELATED
    assert router.classify(_event(None)).owner is HtlcOwner.UNRELATED


def test_fake_scid_routes_to_its_federation() -> None:
    router = HtlcRouter()
    router.set_scids([(ShortChannelId(0, 0, 1), FED_A), (ShortChannelId(0, 0, 2), FED_B)])
    decision = router.classify(_event("0x0x2"))
    assert decision.owner is HtlcOwner.FEDERATION_SCID and decision.federation_id == FED_B


def test_registered_hash_wins_and_can_be_removed() -> None:
    router = HtlcRouter()
    router.add_hash("22" * 32, FED_A)
    assert router.classify(_event(None, "22" * 32)).owner is HtlcOwner.REGISTERED_HASH
    router.remove_hash("22" * 32)
    assert router.classify(_event(None, "22" * 32)).owner is HtlcOwner.UNRELATED


def test_leaving_a_federation_drops_its_scids_and_hashes() -> None:
    router = HtlcRouter()
    router.add_scid(ShortChannelId(0, 0, 1), FED_A)
    router.add_hash("33" * 32, FED_A)
    router.add_hash("44" * 32, FED_B)
    router.remove_federation(FED_A)
    assert router.classify(_event("0x0x1")).owner is HtlcOwner.UNRELATED
    assert router.classify(_event(None, "33" * 32)).owner is HtlcOwner.UNRELATED
    assert router.classify(_event(None, "44" * 32)).federation_id == FED_B


def test_a_registered_hash_never_claims_a_forward() -> None:
    """Registering the hash of someone else's payment must not capture it as it passes through
    this node, nor an HTLC for a federation's fake scid (issue 15, finding 1)."""
    router = HtlcRouter()
    router.add_scid(ShortChannelId(0, 0, 1), FED_A)
    router.add_hash("55" * 32, FED_B)
    assert router.classify(_event("105x1x0", "55" * 32)).owner is HtlcOwner.UNRELATED
    decision = router.classify(_event("0x0x1", "55" * 32))
    assert decision.owner is HtlcOwner.FEDERATION_SCID and decision.federation_id == FED_A
    assert router.classify(_event(None, "55" * 32)).owner is HtlcOwner.REGISTERED_HASH


def test_hash_updates_do_not_copy_the_table() -> None:
    """Adding or removing one hash changes one entry of one table (O(1)); before, every change
    copied every registered hash, so loading n registrations at start took O(n²)."""
    router = HtlcRouter()
    router.add_hashes((f"{i:064x}", FED_A) for i in range(20_000))
    table = router._hashes
    router.add_hash("66" * 32, FED_A)
    router.remove_hash(f"{7:064x}")
    assert router._hashes is table and router.hash_count() == 20_000
