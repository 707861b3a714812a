"""How `ClnNode` reads xpay's answers and lightningd's parts: an error is not a failure while
any part can still succeed (issue 14, finding 1)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time

from coincurve import PrivateKey

from fedimint_gw.domain.amount import Msat
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning.cln import XPAY_RETRY_FOR
from fedimint_gw.lightning.node import PaymentStatus
from tests.support.fake_node import FakeLightningd, cln_node_on


def _invoice() -> tuple[str, str]:
    payment_hash = hashlib.sha256(secrets.token_bytes(32)).digest()
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=50_000,
        timestamp=int(time.time()),
        payment_hash=payment_hash,
        payment_secret=secrets.token_bytes(32),
        description="mpp",
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey()), payment_hash.hex()


async def test_an_xpay_error_with_a_part_still_held_is_not_a_failure() -> None:
    # The payee fails one part with incorrect_or_unknown_payment_details (xpay answers 203 at
    # once) while it still holds the other; it may settle it later.
    lightningd = FakeLightningd(xpay_error=(203, "Destination said it doesn't know invoice"))
    invoice, payment_hash = _invoice()
    now = int(time.time())
    lightningd.add_part(payment_hash, "failed", now)
    lightningd.add_part(payment_hash, "pending", now)
    node = cln_node_on(lightningd)
    outcome = await node.pay(invoice, Msat(1000), 100)
    assert outcome.status is PaymentStatus.PENDING
    # The held part settles: the payment succeeded.
    lightningd.parts[payment_hash][1].update(status="complete", payment_preimage="11" * 32)
    assert (await node.payment_status(payment_hash)).status is PaymentStatus.SUCCEEDED


async def test_a_timeout_with_parts_in_flight_is_not_a_failure() -> None:
    lightningd = FakeLightningd(xpay_error=(209, "Timed out"))
    invoice, payment_hash = _invoice()
    lightningd.add_part(payment_hash, "pending", int(time.time()))
    assert (await cln_node_on(lightningd).pay(invoice, Msat(1000), 100)).status is PaymentStatus.PENDING


async def test_failed_parts_during_xpay_retry_window_are_not_a_failure_after_a_restart() -> None:
    # After a plugin restart only listsendpays is left; every part so far failed, but the xpay
    # command may still be between two attempts.
    lightningd = FakeLightningd()
    _invoice_str, payment_hash = _invoice()
    lightningd.add_part(payment_hash, "failed", int(time.time()) - 5)
    node = cln_node_on(lightningd)
    assert (await node.payment_status(payment_hash)).status is PaymentStatus.PENDING
    # Once xpay's retry window has certainly passed, failed parts are a failure.
    old = int(time.time()) - 3 * XPAY_RETRY_FOR
    lightningd.parts[payment_hash][0]["created_at"] = old
    outcome = await node.payment_status(payment_hash)
    assert outcome.status is PaymentStatus.FAILED and outcome.attempts == 1


async def test_failed_parts_of_an_xpay_known_gone_are_a_failure_at_once() -> None:
    # The xpay that sent them died with an earlier lightningd (the caller knows: another plugin
    # process called it): nothing can send another part, so waiting out its window refunds late.
    lightningd = FakeLightningd()
    _invoice_str, payment_hash = _invoice()
    lightningd.add_part(payment_hash, "failed", int(time.time()) - 5)
    node = cln_node_on(lightningd)
    outcome = await node.payment_status(payment_hash, xpay_gone=True)
    assert outcome.status is PaymentStatus.FAILED and outcome.attempts == 1
    lightningd.add_part(payment_hash, "pending", int(time.time()))  # a part in flight still is
    assert (await node.payment_status(payment_hash, xpay_gone=True)).status is PaymentStatus.PENDING


async def test_an_xpay_error_with_every_part_final_and_failed_is_a_failure() -> None:
    lightningd = FakeLightningd(xpay_error=(203, "Destination said it doesn't know invoice"))
    invoice, payment_hash = _invoice()
    lightningd.add_part(payment_hash, "failed", int(time.time()))
    outcome = await cln_node_on(lightningd).pay(invoice, Msat(1000), 100)
    assert outcome.status is PaymentStatus.FAILED and "know invoice" in outcome.reason
    no_route = FakeLightningd(xpay_error=(205, "No path found"))
    assert (await cln_node_on(no_route).pay(invoice, Msat(1000), 100)).status is PaymentStatus.FAILED


async def test_slow_mode_is_read_from_listconfigs() -> None:
    assert await cln_node_on(FakeLightningd(slow_mode=True)).xpay_waits_for_all_parts() is True
    assert await cln_node_on(FakeLightningd(slow_mode=False)).xpay_waits_for_all_parts() is False
    assert await cln_node_on(FakeLightningd(slow_mode=None)).xpay_waits_for_all_parts() is False


async def test_payments_in_flight_never_starve_the_short_calls() -> None:
    """Finding 5: with every RPC thread blocked in a long xpay, a held HTLC could not even read
    the block height, and was held past its deadline."""
    release = threading.Event()
    lightningd = FakeLightningd(xpay_error=(205, "No path found"), xpay_release=release)
    node = cln_node_on(lightningd)
    invoice, _hash = _invoice()
    payments = [asyncio.ensure_future(node.pay(invoice, Msat(1000), 100)) for _ in range(40)]
    try:
        info = await asyncio.wait_for(node.info(), 20)  # a deadlock detector, not a timing
        assert info.block_height == 200
    finally:
        release.set()
        await asyncio.gather(*payments)


async def test_every_name_of_a_channel_is_known() -> None:
    """Finding 7: an HTLC delivered under the local alias is replayed under the real scid."""
    lightningd = FakeLightningd(
        channels=[
            {"short_channel_id": "103x1x0", "alias": {"local": "15000000x1x1", "remote": "16000000x2x2"}},
            {"alias": {"local": "17000000x3x3"}},  # not confirmed yet: aliases only
        ]
    )
    node = cln_node_on(lightningd)
    names = {"103x1x0", "15000000x1x1", "16000000x2x2"}
    assert await node.channel_names("15000000x1x1") == names
    assert await node.channel_names("103x1x0") == names
    assert await node.channel_names("17000000x3x3") == {"17000000x3x3"}
    assert await node.channel_names("999x1x0") == {"999x1x0"}
