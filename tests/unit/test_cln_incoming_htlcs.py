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
