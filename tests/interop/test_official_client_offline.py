"""The official client as an offline oracle: invite codes and bolt11 invoices, no federation."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey

from contrib.official_client.driver import OfficialClient, OfficialClientError
from fedimint_gw.lightning import bolt11

# fedimint-core/src/invite_code/tests.rs (upstream vector).
UPSTREAM_INVITE = (
    "fed11qgqpu8rhwden5te0vejkg6tdd9h8gepwd4cxcumxv4jzuen0duhsqqfqh6nl7sgk72caxfx8khtfnn8y436q3nhyrkev3q"
    "p8ugdhdllnh86qmp42pm"
)
UPSTREAM_FEDERATION_ID = "bea7ff4116f2b1d324c7b5d699cce4ac7408cee41db2c88027e21b76fff3b9f4"
UPSTREAM_URL = "wss://fedimintd.mplsfed.foo/"
PAYEE_KEY = PrivateKey(bytes.fromhex("11" * 32))


def corrupt(text: str) -> str:
    """Change the last character: the bech32 checksum no longer matches."""
    return text[:-1] + ("q" if text[-1] != "q" else "p")


def our_invoice(
    *, amount_msat: int | None, description: str | None, expiry: int = 600, currency: str = "bcrt"
) -> tuple[str, bolt11.InvoiceContent]:
    content = bolt11.InvoiceContent(
        currency=currency,
        amount_msat=amount_msat,
        timestamp=1_700_000_000,
        payment_hash=hashlib.sha256(b"interop preimage").digest(),
        payment_secret=bytes([0x42]) * 32,
        description=description,
        description_hash=None if description is not None else hashlib.sha256(b"long text").digest(),
        expiry=expiry,
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PAYEE_KEY), content


async def test_parses_the_upstream_invite_vector(official_client: OfficialClient) -> None:
    parsed = await official_client.parse_invite_code(UPSTREAM_INVITE)
    assert parsed == {"federation_id": UPSTREAM_FEDERATION_ID, "url": UPSTREAM_URL}


@pytest.mark.parametrize(
    "invite",
    [
        pytest.param(corrupt(UPSTREAM_INVITE), id="bad-checksum"),
        pytest.param(UPSTREAM_INVITE.replace("fed1", "fedx", 1), id="wrong-hrp"),
        pytest.param(UPSTREAM_INVITE[:40], id="truncated"),
        pytest.param("fed11", id="only-prefix"),
    ],
)
async def test_rejects_a_corrupted_invite(official_client: OfficialClient, invite: str) -> None:
    with pytest.raises(OfficialClientError) as error:
        await official_client.parse_invite_code(invite)
    assert error.value.message


async def test_agrees_with_our_bolt11_encoder(official_client: OfficialClient) -> None:
    invoice, content = our_invoice(amount_msat=1_234_567, description="coffee ☕ for the gateway")
    ours = bolt11.decode(invoice)
    parsed = await official_client.parse_bolt11_invoice(invoice)
    # The client reports the amount in sat as a JSON number (msat / 1000) and no payment hash.
    assert parsed == {"amount": 1234.567, "expiry": 600, "memo": "coffee ☕ for the gateway"}
    assert round(parsed["amount"] * 1000) == ours.amount_msat == content.amount_msat
    assert ours.payment_hash == content.payment_hash


async def test_reads_an_amountless_invoice_with_a_description_hash(official_client: OfficialClient) -> None:
    invoice, _ = our_invoice(amount_msat=None, description=None, expiry=3600, currency="bc")
    parsed = await official_client.parse_bolt11_invoice(invoice)
    assert parsed == {"amount": 0, "expiry": 3600, "memo": "Description hash only"}


async def test_rejects_our_invoice_once_corrupted(official_client: OfficialClient) -> None:
    invoice, _ = our_invoice(amount_msat=5_000, description="x")
    with pytest.raises(OfficialClientError, match="invalid checksum"):
        await official_client.parse_bolt11_invoice(corrupt(invoice))


async def test_driver_reports_unknown_ops_and_bad_fields(official_client: OfficialClient) -> None:
    with pytest.raises(OfficialClientError, match="unknown op"):
        await official_client.request("no_such_op")
    with pytest.raises(OfficialClientError, match='missing string field "invite"'):
        await official_client.request("parse_invite_code")
    with pytest.raises(OfficialClientError, match="no open client"):
        await official_client.rpc("", "get_balance")
    assert await official_client.request("ping") == "pong"
