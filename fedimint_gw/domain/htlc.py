"""The htlc_accepted hook payload, parsed, and the hook's three possible answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.ids import ShortChannelId

# BOLT #4 failure codes the gateway answers with (hex of the 2-byte code, plus data).
TEMPORARY_NODE_FAILURE = "2002"
UNKNOWN_NEXT_PEER = "400a"
INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS = "400f"


def _msat(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.endswith("msat") and raw[:-4].isdigit():
        return int(raw[:-4])
    raise ValueError(f"not an msat amount: {raw!r}")


@dataclass(frozen=True)
class HtlcEvent:
    """The fields of an accepted HTLC that the gateway routes and checks on."""

    incoming_scid: str
    htlc_id: int
    amount_msat: int
    cltv_expiry: int
    cltv_expiry_relative: int
    payment_hash: str
    forward_scid: ShortChannelId | None
    forward_msat: int | None
    outgoing_cltv: int | None
    payment_secret: str | None
    total_msat: int | None

    @property
    def key(self) -> tuple[str, int]:
        """(incoming scid, htlc id): unique per HTLC, stable across lightningd's replays."""
        return (self.incoming_scid, self.htlc_id)

    @classmethod
    def from_hook(cls, onion: dict[str, Any], htlc: dict[str, Any]) -> HtlcEvent:
        """Parse the hook's `onion` and `htlc` objects (unknown extra fields are ignored)."""
        fwd = onion.get("short_channel_id")
        forward_msat = onion.get("forward_msat")
        outgoing_cltv = onion.get("outgoing_cltv_value")
        total = onion.get("total_msat")
        return cls(
            incoming_scid=str(htlc.get("short_channel_id", "")),
            htlc_id=int(htlc["id"]),
            amount_msat=_msat(htlc["amount_msat"]),
            cltv_expiry=int(htlc["cltv_expiry"]),
            cltv_expiry_relative=int(htlc["cltv_expiry_relative"]),
            payment_hash=str(htlc["payment_hash"]).lower(),
            forward_scid=ShortChannelId.parse(fwd) if fwd else None,
            forward_msat=_msat(forward_msat) if forward_msat is not None else None,
            outgoing_cltv=int(outgoing_cltv) if outgoing_cltv is not None else None,
            payment_secret=onion.get("payment_secret"),
            total_msat=_msat(total) if total is not None else None,
        )


def answer_continue() -> dict[str, Any]:
    return {"result": "continue"}


def answer_resolve(preimage: bytes) -> dict[str, Any]:
    return {"result": "resolve", "payment_key": preimage.hex()}


def answer_fail(code_hex: str, data_hex: str = "") -> dict[str, Any]:
    return {"result": "fail", "failure_message": code_hex + data_hex}


def answer_unknown_payment(amount_msat: int, block_height: int) -> dict[str, Any]:
    """incorrect_or_unknown_payment_details with the HTLC amount and our block height."""
    return answer_fail(
        INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
        amount_msat.to_bytes(8, "big").hex() + block_height.to_bytes(4, "big").hex(),
    )
