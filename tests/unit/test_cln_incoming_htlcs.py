"""Which incoming HTLCs `ClnNode` counts as still held by lightningd (the receive flow's
reconcile after a plugin crash relies on it)."""

from __future__ import annotations

from tests.support.fake_node import FakeLightningd, cln_node_on


async def test_an_htlc_lightningd_is_already_removing_is_not_held() -> None:
    # Seen in the Fedimint crash matrix (lightningd v26.06.6): the plugin died holding HTLC 3;
    # lightningd answered the hook `continue`, the forward to the fake scid failed, and the
    # failure waits in SENT_REMOVE_HTLC until the payer reconnects. lightningd will never
    # replay it, so the gateway must not wait for a replay.
    lightningd = FakeLightningd()
    lightningd.channels.append(
        {
            "short_channel_id": "103x1x0",
            "alias": {"local": "5x6x7", "remote": "8x9x10"},
            "htlcs": [
                {"direction": "in", "id": 2, "state": "RCVD_ADD_ACK_REVOCATION"},
                {"direction": "in", "id": 3, "state": "SENT_REMOVE_HTLC"},
                {"direction": "in", "id": 4, "state": "SENT_REMOVE_ACK_REVOCATION"},
                {"direction": "out", "id": 5, "state": "SENT_ADD_ACK_REVOCATION"},
            ],
        }
    )
    held = await cln_node_on(lightningd).incoming_htlcs()
    assert held == {("103x1x0", 2), ("5x6x7", 2), ("8x9x10", 2)}


HASH = "ab" * 32


def _removed_htlc(lightningd: FakeLightningd) -> None:
    lightningd.channels.append({"short_channel_id": "103x1x0", "alias": {"local": "5x6x7"}, "htlcs": []})
    # Only the real scid is known to listhtlcs here; the alias the HTLC came under is not.
    lightningd.htlcs["103x1x0"] = [
        {"direction": "in", "id": 4, "payment_hash": HASH, "state": "SENT_REMOVE_ACK_REVOCATION"},
        {"direction": "in", "id": 5, "payment_hash": "cd" * 32, "state": "SENT_REMOVE_ACK_REVOCATION"},
    ]


async def test_the_fate_of_a_resolved_htlc_is_read_from_its_channel_and_the_moves_since_the_answer() -> None:
    """The receive's follower asks this for every receive: it must read one channel's HTLCs
    (not every HTLC of every channel) and only the channel moves made after the answer."""
    from fedimint_gw.lightning.node import HtlcFate

    lightningd = FakeLightningd()
    _removed_htlc(lightningd)
    lightningd.moves = [
        {"created_index": 1, "payment_hash": HASH, "credit_msat": 0, "debit_msat": 7},
        {"created_index": 2, "payment_hash": "cd" * 32, "credit_msat": 9000},
    ]
    node = cln_node_on(lightningd)
    assert await node.channel_moves_index() == 2
    assert await node.incoming_htlc_fate("5x6x7", 4, HASH, moves_from=3) is HtlcFate.FAILED
    lightningd.moves.append({"created_index": 3, "payment_hash": HASH, "credit_msat": 50_000})
    assert await node.incoming_htlc_fate("5x6x7", 4, HASH, moves_from=3) is HtlcFate.FULFILLED
    asked = [p for m, p in lightningd.params if m == "listhtlcs"]
    assert asked and all("id" in p for p in asked)  # never the whole node's HTLC history
    assert [p for m, p in lightningd.params if m == "listchannelmoves"][-1] == {
        "index": "created",
        "start": 3,
    }


async def test_an_htlc_not_removed_yet_is_pending_and_one_never_seen_is_unknown() -> None:
    from fedimint_gw.lightning.node import HtlcFate

    lightningd = FakeLightningd()
    _removed_htlc(lightningd)
    lightningd.htlcs["103x1x0"][0]["state"] = "SENT_REMOVE_HTLC"
    node = cln_node_on(lightningd)
    assert await node.incoming_htlc_fate("103x1x0", 4, HASH) is HtlcFate.PENDING
    assert await node.incoming_htlc_fate("103x1x0", 9, HASH) is HtlcFate.UNKNOWN
    assert "listchannelmoves" not in lightningd.calls
